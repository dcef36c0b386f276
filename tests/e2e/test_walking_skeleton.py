"""End to end: enrolment → JetStream → indicators, each a process, driven over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from score_cli.broker_config import passwords
from score_cli.main import main
from score_cli.up import System

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def eventually(probe: Callable[[], Any], *, within: float = 20.0) -> Any:
    """Poll until `probe` returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"not true within {within} s"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def http(system: System) -> httpx.Client:
    token = system.admin_token()
    return httpx.Client(headers={"Authorization": f"Bearer {token}"}, trust_env=False, timeout=10)


def test_a_training_recorded_in_enrolment_shows_in_the_indicators(
    system: System, http: httpx.Client
) -> None:
    enrolment, indicators = system.url("enrolment"), system.url("indicators")
    before = http.get(f"{indicators}/v1/indicators").json()["indicators"]

    enterprise = http.post(
        f"{enrolment}/v1/enterprises",
        json={
            "name": "Boshami",
            "tax_id": "5544332211",
            "region": "cochabamba",
            "sector": "textiles",
            "chamber": "Cámara Departamental de Industria de Cochabamba",
            "workforce": {"women": 70, "men": 42},
        },
    )
    assert enterprise.status_code == 201, enterprise.text
    enterprise_id = enterprise.json()["id"]
    enrolled = http.post(
        f"{enrolment}/v1/enterprises/{enterprise_id}/enrolments",
        json={"module": 1, "delivery": "direct", "delivery_cost": {"amount": "4200"}},
    )
    assert enrolled.status_code == 201, enrolled.text
    trained = http.post(
        f"{enrolment}/v1/enterprises/{enterprise_id}/trainings",
        json={
            "enrolment_id": enrolled.json()["enrolment_id"],
            "managers": {"women": 2, "men": 1},
            "workers": {"women": 3, "men": 2},
        },
    )
    assert trained.status_code == 201, trained.text

    def trained_shows() -> dict[str, Any] | None:
        response = http.get(f"{indicators}/v1/indicators")
        if response.status_code == 503:  # its projection catching up: no partial counts
            return None
        now: dict[str, Any] = response.json()["indicators"]
        return now if now["enterprises_trained"] > before["enterprises_trained"] else None

    after = eventually(trained_shows)
    assert after["enterprises_trained"] == before["enterprises_trained"] + 1
    assert after["participants_trained"] == before["participants_trained"] + 8
    for key, added in {
        "managers_women": 2,
        "managers_men": 1,
        "workers_women": 3,
        "workers_men": 2,
        "employees_benefited": 112,
        "employees_benefited_women": 70,
        "employees_benefited_men": 42,
    }.items():
        assert after[key] == before[key] + added, key

    regional = http.get(f"{indicators}/v1/indicators", params={"region": "cochabamba"}).json()
    assert regional["region"] == "cochabamba"
    assert regional["indicators"]["enterprises_trained"] >= 1


def test_every_service_is_ready_and_reports_no_lag(system: System, http: httpx.Client) -> None:
    for running in system.services:
        ready = eventually(
            lambda url=running.url: (
                (r := http.get(f"{url}/readyz")).status_code == 200
                and r.json()["checks"]["nats"] == "ok"
                and r
            )
        )
        assert ready.json()["checks"]["database"] == "ok"


def test_the_services_ran_as_their_own_nats_users_and_nothing_they_did_was_refused(
    system: System,
) -> None:
    """Provisioning, relays, consumers and revocation watches all ran above under the
    broker's users (ADR 021): a refusal would be in the server's log. No password is in a log."""
    assert "Violation" not in (system.logs_dir / "nats.log").read_text()
    secrets = passwords(system.data_dir).values()
    for log in system.logs_dir.iterdir():
        text = log.read_text()
        assert not any(secret in text for secret in secrets), log


def test_a_token_revoked_by_the_operator_is_refused_by_the_services(system: System) -> None:
    token = system.admin_token()
    client = httpx.Client(headers={"Authorization": f"Bearer {token}"}, trust_env=False, timeout=10)
    asked = [
        f"{system.url('enrolment')}/v1/enterprises",
        f"{system.url('indicators')}/v1/indicators",
    ]
    assert all(client.get(url).status_code == 200 for url in asked)
    # `score tokens revoke`, as the operator, with the credentials of the data folder.
    assert main(["tokens", "revoke", token, "--data-dir", str(system.data_dir)]) == 0
    for url in asked:
        eventually(lambda url=url: client.get(url).status_code == 401)
