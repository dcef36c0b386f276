"""The supervisor keeps the system running: a crashed child is restarted, nats-server on its
own port and store; one that will not start is given up on while the rest keeps running; and
`score doctor` shows what happened."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from score_cli.broker_config import operator_url
from score_cli.datadir import running_system
from score_cli.doctor import FAIL, WARN, diagnose
from score_cli.nats_server import free_port
from score_cli.up import RestartPolicy, Service, System, free_port_base

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(120),
    pytest.mark.skipif(not Service("enrolment", 1).installed, reason="needs the enrolment service"),
]

ENROLMENT = Service("enrolment", 1)
PROBE_STREAM = "SUPERVISOR_PROBE"


def eventually(probe: Callable[[], Any], *, within: float = 30.0) -> Any:
    deadline = time.monotonic() + within
    while not (value := probe()):
        assert time.monotonic() < deadline, f"not true within {within} s"
        time.sleep(0.05)
    return value


def readiness(url: str) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"{url}/readyz", timeout=2, trust_env=False)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def children(system: System) -> dict[str, dict[str, Any]]:
    running = running_system(system.data_dir)
    assert running is not None
    recorded: dict[str, dict[str, Any]] = running["children"]  # type: ignore[assignment]
    return recorded


@contextmanager
def supervised(system: System) -> Iterator[System]:
    """The system started, with `supervise()` looking after it on a thread of its own."""
    with system:
        thread = threading.Thread(target=system.supervise, kwargs={"poll_interval": 0.05})
        thread.start()
        try:
            yield system
        finally:
            system.request_stop()
            thread.join(timeout=30)


def a_system(
    tmp_path: Path, *services: Service, policy: RestartPolicy | None = None
) -> tuple[System, list[str]]:
    """A system on free ports (never NATS' usual 4222), and the lines it will say."""
    said: list[str] = []
    system = System(
        tmp_path / "score-data",
        nats_port=free_port(),
        port_base=free_port_base(),
        services=services or (ENROLMENT,),
        restart_policy=policy,
        report=said.append,
    )
    return system, said


@pytest.fixture
def crashing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Service:
    """A service whose process exits at once, every time, as a broken install would."""
    packages = tmp_path / "packages"
    package = packages / "score_crashing"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(
        "import sys\nprint('crashing: cannot start', flush=True)\nsys.exit(3)\n"
    )
    monkeypatch.syspath_prepend(str(packages))  # for Service.installed, here
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(packages), os.environ.get("PYTHONPATH", "")])
    )
    service = Service("crashing", 4)
    assert service.installed
    return service


def test_a_killed_service_is_restarted_and_doctor_says_so(tmp_path: Path) -> None:
    system, said = a_system(tmp_path)
    with supervised(system):
        enrolment = system.services[0]
        killed = enrolment.pid
        os.kill(killed, signal.SIGKILL)

        eventually(lambda: enrolment.pid != killed and readiness(enrolment.url))
        output = "\n".join(said)  # what the supervisor said, for any failure below
        assert "enrolment was killed by SIGKILL" in output
        assert "restarting enrolment in 0.5s (restart 1)" in output

        def restarted() -> dict[str, Any] | None:
            recorded = children(system)["enrolment"]
            return recorded if recorded["state"] == "running" else None

        recorded = eventually(restarted)
        assert recorded["restarts"] == 1, output
        assert recorded["last_exit"] == "was killed by SIGKILL", output

        findings = diagnose(running_system(system.data_dir) or {})
        warnings = [message for level, message in findings if level == WARN]
        assert any(m.startswith("enrolment: restarted once by `score up`") for m in warnings)
        assert not [message for level, message in findings if level == FAIL], findings


async def _probe(url: str, publish: bool) -> bytes | None:
    client = await nats.connect(url, max_reconnect_attempts=1)
    try:
        js = client.jetstream()
        if publish:
            await js.add_stream(name=PROBE_STREAM, subjects=["supervisor-probe.>"])
            await js.publish("supervisor-probe.written", b"before the crash")
            return None
        return (await js.get_msg(PROBE_STREAM, 1)).data
    finally:
        await client.close()


def test_a_killed_nats_server_comes_back_on_its_port_and_store_and_the_services_reconnect(
    tmp_path: Path,
) -> None:
    system, said = a_system(tmp_path)
    with supervised(system):
        url, killed = system.nats_url, system.nats.pid
        operator = operator_url(url, system.data_dir)  # no one gets in without credentials
        asyncio.run(_probe(operator, publish=True))
        assert killed is not None
        os.kill(killed, signal.SIGKILL)

        eventually(lambda: system.nats.pid != killed and system.nats.running)
        assert system.nats_url == url
        assert asyncio.run(_probe(operator, publish=False)) == b"before the crash"
        enrolment = system.url("enrolment")
        eventually(lambda: (readiness(enrolment) or {}).get("checks", {}).get("nats") == "ok")

        # The relay publishes again: a new trainer reaches the stream.
        headers = {"Authorization": f"Bearer {system.admin_token()}"}
        trainer = {"name": "Ana Quispe", "sex": "female", "region": "la_paz", "organisation": "CNI"}
        answer = httpx.post(
            f"{enrolment}/v1/trainers", json=trainer, headers=headers, trust_env=False
        )
        assert answer.status_code == 201, answer.text

        def published() -> bool:
            stream = (readiness(enrolment) or {}).get("checks", {}).get("stream") or {}
            return stream.get("state") == "ok" and stream.get("in_stream") == 1

        eventually(published)
        output = "\n".join(said)
        assert "nats-server was killed by SIGKILL" in output
        assert f"nats-server is running again at {url}" in output
        assert children(system)["nats-server"]["restarts"] == 1
        findings = diagnose(running_system(system.data_dir) or {})
        assert any(
            level == WARN and message.startswith("nats-server: restarted once")
            for level, message in findings
        ), findings


def test_a_service_that_keeps_crashing_at_start_is_given_up_on_and_the_rest_keeps_running(
    tmp_path: Path, crashing: Service
) -> None:
    policy = RestartPolicy(first_delay=0.05, give_up_after=3)
    system, said = a_system(tmp_path, ENROLMENT, crashing, policy=policy)
    with supervised(system):
        assert system.given_up == ("crashing",)
        assert readiness(system.url("enrolment"))
        output = "\n".join(said)
        assert output.count("crashing exited with code 3 (log") == 3
        assert "crashing: cannot start" in output  # its log's last lines are shown
        assert "restarting crashing in 0.05s (restart 1)" in output
        assert "restarting crashing in 0.1s (restart 2)" in output
        assert "not restarting it again. The rest of the system keeps running" in output

        time.sleep(0.5)  # and it stays given up on
        assert "\n".join(said).count("crashing exited with code 3 (log") == 3
        recorded = children(system)["crashing"]
        assert (recorded["state"], recorded["restarts"]) == ("given up", 2)

        findings = diagnose(running_system(system.data_dir) or {})
        failures = [message for level, message in findings if level == FAIL]
        assert len(failures) == 1, findings
        assert failures[0].startswith("crashing: given up after it exited with code 3 3 times")
        assert "crashing.log" in failures[0]
