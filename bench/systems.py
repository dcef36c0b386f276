"""What the HTTP scenarios load: SCORE Cases as `score up` runs it, and the peer.

Both run as processes of their own, on free ports, with their data under the run's work
folder, and are stopped when the scenario is done.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
from sqlalchemy.engine import make_url

from score_cli.broker_config import operator_url
from score_cli.nats_server import LOOPBACK, free_port
from score_cli.up import SERVICES, Service, StartFailed, System, free_port_base

ROOT = Path(__file__).parent.parent


class _System(System):
    """`System`, with the enrolment service's database elsewhere than the data folder, and
    settings of the harness's added to the environment the services start in."""

    def __init__(
        self,
        data_dir: Path,
        *,
        enrolment_database: str | None,
        services: Sequence[Service],
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(
            data_dir, nats_port=free_port(), port_base=free_port_base(), services=services
        )
        self.enrolment_database = enrolment_database
        self.environment = dict(environment)

    def database_url(self, service: Service) -> str:
        if service.name == "enrolment" and self.enrolment_database is not None:
            return self.enrolment_database
        return super().database_url(service)

    def _launch(self, service: Service) -> tuple[subprocess.Popen[bytes], int]:
        # `score up` passes its environment through to each service: so does this, with the
        # harness's settings in it (a restart too), and leaves its own as it was.
        saved = {name: os.environ.get(name) for name in self.environment}
        os.environ.update(self.environment)
        try:
            return super()._launch(service)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


class Ours:
    """nats-server and the services, each its own process, as `score up` starts them.

    `enrolment_database` puts the enrolment service on another database (PostgreSQL, for
    B2); `services` names the services to start (all by default); `environment` adds to the
    environment they start in (B7's receiver on 127.0.0.1 needs
    `SCORE_WEBHOOK_ALLOWED_HOSTS`).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        enrolment_database: str | None = None,
        services: Sequence[str] | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.enrolment_database = enrolment_database
        self.environment = dict(environment or {})
        self.services = tuple(s for s in SERVICES if services is None or s.name in services)
        self.system: System | None = None

    def __enter__(self) -> Self:
        try:
            self.system = self._started()
        except StartFailed as failure:
            # A free port can be taken between the check and the bind: once, take others.
            print(f"score up did not start ({failure}); trying other ports", file=sys.stderr)
            self.system = self._started()
        return self

    def _started(self) -> System:
        system = _System(
            self.data_dir,
            enrolment_database=self.enrolment_database,
            services=self.services,
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
        if self.system is not None:
            self.system.stop()

    @property
    def running(self) -> System:
        if self.system is None:
            raise RuntimeError("not started")
        return self.system

    def url(self, service: str) -> str:
        return self.running.url(service)

    @property
    def token(self) -> str:
        """An admin token, signed with the data folder's key as `score up` prints it."""
        return self.running.admin_token()

    @property
    def nats_url(self) -> str:
        """The broker's URL with the operator's credentials (the bench publishes history)."""
        return operator_url(self.running.nats_url, self.running.data_dir)

    @property
    def pids(self) -> dict[str, int]:
        return {running.name: running.pid for running in self.running.services}


class Peer:
    """The FastAPI + `eventsourcing` peer (`bench/peers/eventsourcing_peer.py`), served by
    uvicorn with one worker, on a SQLite file or on the PostgreSQL database `postgres` (a
    SQLAlchemy URL)."""

    def __init__(self, workdir: Path, *, postgres: str | None = None) -> None:
        self.workdir = workdir
        self.postgres = postgres
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def _environment(self) -> dict[str, str]:
        environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.postgres is None:
            return {
                **environment,
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.workdir / "peer.db"),
            }
        url = make_url(self.postgres)
        return {
            **environment,
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.database or "",
            "POSTGRES_HOST": url.host or LOOPBACK,
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": url.username or "postgres",
            "POSTGRES_PASSWORD": url.password or "",
        }

    def __enter__(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.peers.eventsourcing_peer:app",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--workers",
            "1",
            # As ours: no line per request (its services run uvicorn with access_log=False).
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        with (self.workdir / "peer.log").open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_until_ready(self, within: float = 30.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + within
        with httpx.Client(trust_env=False, timeout=1.0) as client:
            while True:
                if self.process.poll() is not None:
                    log = (self.workdir / "peer.log").read_text(errors="replace")
                    raise RuntimeError(f"the peer exited while starting:\n{log[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the peer was not up within {within:g} s")
                time.sleep(0.1)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid
