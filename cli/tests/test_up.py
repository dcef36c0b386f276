"""`score up` as a person runs it: a real process tree, stopped by a signal, data kept."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import nats
import pytest

from score_cli.broker_config import operator_url
from score_cli.nats_server import free_port, port_is_free
from score_cli.up import Service, free_port_base, installed_services

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree"),
]

STARTUP_SECONDS = 90.0
SHUTDOWN_SECONDS = 30.0
PROBE_STREAM = "UP_PROBE"


SCORE_UP = (sys.executable, "-m", "score_cli.main", "up")


class ScoreUp:
    """One `score up` process, its output in files so that no pipe can fill and block it."""

    def __init__(self, workdir: Path, *args: str, command: Sequence[str] = SCORE_UP) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.stdout = workdir / "stdout.txt"
        self.stderr = workdir / "stderr.txt"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [*command, *args],
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        self.children: dict[int, str] = {}
        """The processes under it when last looked at, with their start times."""

    def output(self) -> str:
        return f"{self.stdout.read_text()}\n--- stderr ---\n{self.stderr.read_text()}"

    def wait_until_running(self) -> dict[str, str]:
        """Wait for the summary, then return the URLs it printed, by name."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while "Ctrl-C to stop" not in self.stdout.read_text():
            assert self.process.poll() is None, f"score up exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"score up not running in time:\n{self.output()}"
            time.sleep(0.1)
        self.children = _descendants(self.process.pid)
        return dict(re.findall(r"^  (\w+)\s+((?:nats|http)://\S+)", self.stdout.read_text(), re.M))

    def stop(self, signum: signal.Signals) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=SHUTDOWN_SECONDS)

    def kill_everything(self) -> None:
        # Only reached when a test failed half-way: leave nothing running for the next one.
        if self.process.poll() is None:
            self.process.kill()
        for pid, started in self.children.items():
            if _alive(pid, started):  # and not a stranger that got the number since
                os.kill(pid, signal.SIGKILL)
        self.process.wait()

    def still_running(self) -> list[int]:
        """Those of `children` that are still running."""
        return [pid for pid, started in self.children.items() if _alive(pid, started)]


@contextmanager
def score_up(workdir: Path, *args: str, command: Sequence[str] = SCORE_UP) -> Iterator[ScoreUp]:
    up = ScoreUp(workdir, *args, command=command)
    try:
        yield up
    finally:
        up.kill_everything()


def _descendants(pid: int) -> dict[int, str]:
    """The processes under `pid`, with their start times.

    Process ids come round again, fast on a busy machine: a process is this one only if it
    also started when this one did.
    """
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = _stat_fields(stat.read_text())
        except OSError:  # the process ended while we looked
            continue
        child = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(child)
        started[child] = fields[_START_TIME]
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in found:
                found[child] = started[child]
                frontier.append(child)
    return found


_START_TIME = 19  # field 22 of /proc/<pid>/stat, counted from the state (field 3)


def _stat_fields(stat: str) -> list[str]:
    # The command name in parentheses may contain spaces; the fields after it do not.
    return stat[stat.rindex(")") + 2 :].split()


def _alive(pid: int, started: str) -> bool:
    try:
        fields = _stat_fields(Path(f"/proc/{pid}/stat").read_text())
    except OSError:
        return False
    return fields[0] != "Z" and fields[_START_TIME] == started


def _command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


async def _publish_probe(nats_url: str) -> None:
    client = await nats.connect(nats_url, max_reconnect_attempts=1)
    try:
        js = client.jetstream()
        await js.add_stream(name=PROBE_STREAM, subjects=["up-probe.>"])
        await js.publish("up-probe.written", b"before restart")
    finally:
        await client.close()


async def _read_probe(nats_url: str) -> bytes:
    client = await nats.connect(nats_url, max_reconnect_attempts=1)
    try:
        stored = await client.jetstream().get_msg(PROBE_STREAM, 1)
        assert stored.data is not None
        return stored.data
    finally:
        await client.close()


def _assert_services_answer(urls: dict[str, str]) -> None:
    with httpx.Client(timeout=5, trust_env=False) as http:
        for service in installed_services():
            assert service.name in urls, f"{service.name} missing from the summary"
            assert http.get(f"{urls[service.name]}/healthz").status_code == 200
            assert http.get(f"{urls[service.name]}/readyz").status_code == 200
        # The dashboard, with the admin token to open it by: a page of the indicators.
        assert urls["dashboard"].startswith(f"{urls['indicators']}/?token=ey")
        page = http.get(urls["dashboard"])
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_up_runs_the_system_stops_cleanly_and_keeps_its_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "score-data"
    base = free_port_base()
    expected = installed_services()

    nats_port = str(free_port())  # never NATS' usual 4222: it may be this machine's own
    ports = ("--data-dir", str(data_dir), "--port-base", str(base), "--nats-port", nats_port)
    with score_up(tmp_path / "first", *ports) as up:
        urls = up.wait_until_running()
        _assert_services_answer(urls)
        commands = [_command_line(pid) for pid in up.children]
        assert any("nats-server" in command for command in commands)
        for service in expected:
            assert urls[service.name] == f"http://127.0.0.1:{service.port(base)}"
            assert any(f"-m {service.module}" in command for command in commands)
        # As the operator: the broker lets no one in without credentials (ADR 021).
        asyncio.run(_publish_probe(operator_url(urls["nats"], data_dir)))

        # The data folder belongs to the running system; a second supervisor must not share it.
        intruder = subprocess.run(
            [sys.executable, "-m", "score_cli.main", "up", "--data-dir", str(data_dir),
             "--port-base", str(free_port_base()), "--nats-port", nats_port],
            capture_output=True, text=True, timeout=SHUTDOWN_SECONDS,
        )  # fmt: skip
        assert intruder.returncode == 1
        assert "another `score up`" in intruder.stderr
        assert (data_dir / "system.json").exists()  # the refused one left it as it was

        assert up.stop(signal.SIGTERM) == 0, up.output()
        assert up.still_running() == []
        assert "Stopped." in up.stdout.read_text()

    assert (data_dir / "nats" / "jetstream").is_dir()
    for service in expected:
        assert (data_dir / f"{service.name}.db").is_file()
        assert (data_dir / "logs" / f"{service.name}.log").is_file()

    with score_up(tmp_path / "second", *ports) as up:
        urls = up.wait_until_running()
        _assert_services_answer(urls)
        assert asyncio.run(_read_probe(operator_url(urls["nats"], data_dir))) == b"before restart"

        assert up.stop(signal.SIGINT) == 0, up.output()
        assert up.still_running() == []


def _ports(tmp_path: Path) -> tuple[str, ...]:
    # Never NATS' usual 4222: it may be this machine's own nats-server.
    return ("--data-dir", str(tmp_path / "score-data"), "--port-base", str(free_port_base()),
            "--nats-port", str(free_port()))  # fmt: skip


def _wait_for(text: str, path: Path, up: ScoreUp) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while text not in path.read_text():
        assert up.process.poll() is None, f"score up exited:\n{up.output()}"
        assert time.monotonic() < deadline, f"{text!r} not said in time:\n{up.output()}"
        time.sleep(0.05)


def test_up_restarts_a_killed_service_and_a_stop_still_stops_everything(tmp_path: Path) -> None:
    with score_up(tmp_path / "run", *_ports(tmp_path)) as up:
        urls = up.wait_until_running()
        expected = installed_services()
        victim = expected[0]
        killed = next(pid for pid in up.children if f"-m {victim.module}" in _command_line(pid))

        os.kill(killed, signal.SIGKILL)

        _wait_for(f"{victim.name} is ready again (restart 1)", up.stderr, up)
        said = up.stderr.read_text()
        assert f"{victim.name} was killed by SIGKILL" in said
        assert f"restarting {victim.name} in 0.5s (restart 1)" in said
        assert up.process.poll() is None  # the rest kept running meanwhile
        _assert_services_answer(urls)
        children = _descendants(up.process.pid)
        assert children.get(killed) != up.children[killed]  # a new process took its place
        up.children.update(children)

        assert up.stop(signal.SIGTERM) == 0, up.output()
        assert up.still_running() == []


# A supervisor whose restart pause is long enough to stop it during one.
_PATIENT_SUPERVISOR = """
import sys
from pathlib import Path
from score_cli.up import RestartPolicy, Service, System, serve_until_stopped

data_dir, port_base, nats_port = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
patient = RestartPolicy(first_delay=60, max_delay=60)
system = System(data_dir, port_base=port_base, nats_port=nats_port,
                services=[Service("enrolment", 1)], restart_policy=patient)
sys.exit(serve_until_stopped(system))
"""


@pytest.mark.skipif(not Service("enrolment", 1).installed, reason="needs the enrolment service")
def test_a_stop_during_a_restart_pause_leaves_no_process_behind(tmp_path: Path) -> None:
    base = free_port_base()
    patient = (sys.executable, "-c", _PATIENT_SUPERVISOR)
    arguments = (str(tmp_path / "score-data"), str(base), str(free_port()))
    with score_up(tmp_path / "run", *arguments, command=patient) as up:
        up.wait_until_running()
        killed = next(pid for pid in up.children if "-m score_enrolment" in _command_line(pid))
        os.kill(killed, signal.SIGKILL)
        _wait_for("restarting enrolment in 60s (restart 1)", up.stderr, up)

        stopping = time.monotonic()
        assert up.stop(signal.SIGTERM) == 0, up.output()
        assert time.monotonic() - stopping < SHUTDOWN_SECONDS / 2  # not after the pause
        assert up.still_running() == []
        assert "ready again" not in up.stderr.read_text()  # nothing was restarted
        assert port_is_free(Service("enrolment", 1).port(base))
        assert "Stopped." in up.stdout.read_text()
