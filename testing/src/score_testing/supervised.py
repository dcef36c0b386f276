"""The system as `score up` runs it — nats-server and the services as processes, looked
after by its supervisor — for a test that kills its processes and watches it recover.

The supervisor runs in a thread of the test, as it runs in `score up`'s own process; what it
says (crashes, restarts) is kept, so a test can wait for "nats-server is running again" and
show that a crash was not an outage.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from score_cli.broker_config import operator_url
from score_cli.nats_server import free_port
from score_cli.up import NATS_SERVER, RestartPolicy, Service, StartFailed, System, free_port_base


class SupervisedSystem:
    """A `System` of `services`, started and supervised until the block ends.

    `environment` is more environment per service (a PostgreSQL `SCORE_DATABASE_URL`, a
    short retry schedule).
    """

    def __init__(
        self,
        data_dir: Path,
        services: Sequence[Service],
        *,
        environment: Mapping[str, Mapping[str, str | None]] | None = None,
        restart_policy: RestartPolicy | None = None,
        ready_timeout: float = 90.0,
    ) -> None:
        self.data_dir = data_dir
        self.services = tuple(services)
        self.environment = environment
        self.restart_policy = restart_policy
        self.ready_timeout = ready_timeout
        self.said: list[str] = []
        """Every line the supervisor said, in order."""
        self._lock = threading.Lock()
        self._system: System | None = None
        self._thread: threading.Thread | None = None
        self.kills: dict[str, int] = {}
        """SIGKILLs sent, by child name."""

    @property
    def system(self) -> System:
        assert self._system is not None, "not started"
        return self._system

    @property
    def nats_url(self) -> str:
        """The broker's URL with the operator's credentials: reads any stream."""
        return operator_url(self.system.nats_url, self.data_dir)

    def url(self, service: str) -> str:
        return self.system.url(service)

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.system.admin_token()}"}

    def _say(self, line: str) -> None:
        with self._lock:
            self.said.append(line)

    def has_said(self, text: str) -> bool:
        with self._lock:
            return any(text in line for line in self.said)

    def restarts(self, child: str) -> int:
        return self.system.children[child].restarts

    def kill(self, child: str) -> int:
        """SIGKILL a child (a service's whole process group, or nats-server); its pid."""
        if child == NATS_SERVER:
            pid = self.system.nats.pid
            assert pid is not None and self.system.nats.running, "nats-server is not running"
            os.kill(pid, signal.SIGKILL)
        else:
            [running] = [s for s in self.system.services if s.name == child]
            pid = running.pid
            os.killpg(pid, signal.SIGKILL)
        self.kills[child] = self.kills.get(child, 0) + 1
        return pid

    def wait_until_back(self, child: str, restart: int, *, within: float = 90.0) -> None:
        """Wait until the supervisor has restarted `child` for the `restart`th time and it is
        ready again."""
        deadline = time.monotonic() + within
        while True:
            record = self.system.children[child]
            if record.restarts >= restart and record.state == "running" and record.ready:
                return
            assert record.state != "given up", f"{child} was given up on: {self.said}"
            assert time.monotonic() < deadline, f"{child} not back within {within}s: {self.said}"
            time.sleep(0.05)

    def __enter__(self) -> Self:
        try:
            self._system = self._started()
        except StartFailed as failure:
            # A free port can be taken between the check and the bind: once, take others.
            print(f"the system failed to start ({failure}); trying other ports")
            self._system = self._started()
        self._thread = threading.Thread(
            target=self.system.supervise, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def _started(self) -> System:
        system = System(
            self.data_dir,
            nats_port=free_port(),
            port_base=free_port_base(),
            services=self.services,
            ready_timeout=self.ready_timeout,
            restart_policy=self.restart_policy,
            report=self._say,
            environment=self.environment,
        )
        system.__enter__()
        if system.given_up:
            system.stop()
            raise StartFailed(f"given up on {', '.join(system.given_up)}")
        return system

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._system is None:
            return
        self._system.request_stop("the test is over")
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._system.stop()
