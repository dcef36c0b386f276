"""`score doctor` on a running system, and on a data folder where nothing runs."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from score_cli.datadir import running_system
from score_cli.doctor import FAIL, OK, diagnose, run
from score_cli.up import System

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_a_running_system_is_found_well(system: System) -> None:
    running = running_system(system.data_dir)
    assert running is not None
    findings = diagnose(running)
    assert not [message for level, message in findings if level == FAIL], findings
    for service in system.services:
        assert (OK, f"{service.name}: ready at {service.url}") in findings
    assert any(level == OK and message.startswith("NATS: reachable") for level, message in findings)


def test_a_folder_where_nothing_runs_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argparse.Namespace(data_dir=tmp_path)) == 1
    assert "nothing is running" in capsys.readouterr().out
