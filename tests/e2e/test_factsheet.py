"""The Bolivia factsheet (October 2017), reproduced from events sent through the public API."""

from __future__ import annotations

import io

import pytest

from score_cli.demo import load_scenario, phase_targets, print_targets
from score_cli.up import System

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def test_the_demo_scenario_reproduces_the_factsheet(system: System) -> None:
    urls = {running.name: running.url for running in system.services}
    values = load_scenario(urls, system.admin_token(), out=io.StringIO())
    assert values["enterprises_trained"] == 63
    assert values["participants_trained"] > 530
    assert values["employees_benefited"] > 11_800
    assert values["trainers_trained"] == 31
    assert round(values["women_share_trainers"]) == 42
    assert values["trainers_certified"] == 22
    assert values["regions_active"] == 3
    assert values["enterprises_trained_direct"] == 63
    assert values["modules_completed_m1"] == 63
    assert values["modules_completed_m5"] == 54
    assert values["case_studies_published"] == 3
    assert values["visits_completed"] == 3
    assert values["improvements_recorded"] == 3

    again = load_scenario(urls, system.admin_token(), out=io.StringIO())
    assert again == values  # loading twice changes nothing

    # And the demo shows Phase III's targets beside what the scenario reached of them.
    targets = phase_targets(urls["indicators"], system.admin_token())
    actual = {t["key"]: t["actual"] for t in targets["targets"]}
    assert list(actual) == [
        "enterprises_trained_direct",
        "enterprises_trained_partner",
        "trainers_trained",
        "new_regions",
        "new_chambers",
        "case_studies_published",
        "cost_recovery_pct",
    ]
    printed = io.StringIO()
    print_targets(targets, out=printed)
    assert "Phase III (2017-11-01 – 2019-11-30): targets" in printed.getvalue()
    assert all(key in printed.getvalue() for key in actual)
