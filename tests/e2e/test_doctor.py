"""`score doctor` on a running system, on one whose broker lost its store, and on a data
folder where nothing runs."""

from __future__ import annotations

import argparse
import shlex
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from score_cli.datadir import running_system
from score_cli.doctor import FAIL, OK, diagnose, run
from score_cli.main import main
from score_cli.nats_server import free_port
from score_cli.up import Service, System, free_port_base

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
    assert run(argparse.Namespace(data_dir=tmp_path, json=False)) == 1
    assert "nothing is running" in capsys.readouterr().out


def _readiness(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/readyz", timeout=5, trust_env=False)
    assert response.status_code == 200, response.text
    checks: dict[str, Any] = response.json()["checks"]
    return checks


def _eventually(probe: Callable[[], Any], *, within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while not (value := probe()):
        assert time.monotonic() < deadline, f"not true within {within} s"
        time.sleep(0.05)
    return value


def test_a_broker_that_lost_its_store_is_found_out_and_the_command_given_repairs_it(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "score-data"
    enrolment = Service("enrolment", 1)
    if not enrolment.installed:
        pytest.skip("needs the enrolment service")

    def enrolment_alone() -> System:
        return System(
            data_dir, nats_port=free_port(), port_base=free_port_base(), services=[enrolment]
        )

    with enrolment_alone() as system:
        url, token = system.url("enrolment"), system.admin_token()
        for name in ("Ana Quispe", "Rosa Mamani", "Juan Condori"):
            answer = httpx.post(
                f"{url}/v1/trainers",
                json={"name": name, "sex": "female", "region": "oruro", "organisation": "CEPB"},
                headers={"Authorization": f"Bearer {token}"},
                trust_env=False,
            )
            assert answer.status_code == 201, answer.text
        _eventually(lambda: _readiness(url)["stream"]["in_stream"] == 3)

    shutil.rmtree(data_dir / "nats")  # the broker's store is lost while the system is down

    with enrolment_alone() as system:
        url = system.url("enrolment")

        def behind() -> dict[str, Any] | None:
            stream: dict[str, Any] = _readiness(url)["stream"]
            return stream if stream["state"] == "behind" else None

        stream = _eventually(behind)
        assert (stream["stored"], stream["in_stream"], stream["missing"]) == (3, 0, 3)
        running = running_system(data_dir)
        assert running is not None

        failures = [m for level, m in diagnose(running, data_dir=data_dir) if level == FAIL]
        command = f"score republish enrolment --from 1 --data-dir {data_dir}"
        assert failures == [
            f"stream SCORE_ENROLMENT holds 0 events, the enrolment store 3: run `{command}`"
        ]

        assert main(shlex.split(command)[1:]) == 0

        findings = diagnose(running, data_dir=data_dir)
        assert not [m for level, m in findings if level == FAIL], findings
        assert (OK, "stream SCORE_ENROLMENT: 3 events, the enrolment store 3") in findings
