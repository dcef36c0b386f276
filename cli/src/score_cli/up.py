"""`score up`: the whole system on one machine.

A nats-server with JetStream and each service as its own process, with the JetStream store,
the services' SQLite files and their logs under one data folder, so that a second run on
the same folder finds everything as it was. `System` does the supervising and is what other
commands (`score demo`) start the system with.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import importlib.util
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Self

import httpx

from score_chassis.nats_server import LOOPBACK, NatsServer, NatsServerError, port_is_free
from score_cli.datadir import admin_token, auth_secret, database_url, forget_system, write_system

DEFAULT_DATA_DIR = Path(".score")
DEFAULT_PORT_BASE = 8100
DEFAULT_NATS_PORT = 4222


@dataclass(frozen=True)
class Service:
    """A service of the system: its name, and its HTTP port relative to the port base."""

    name: str
    port_offset: int

    @property
    def module(self) -> str:
        return f"score_{self.name}"

    @property
    def installed(self) -> bool:
        """Whether `python -m score_<name>` can run in this environment."""
        # Look for `__main__.py` rather than importing the package: the supervisor has no
        # business running a service's import-time code.
        spec = importlib.util.find_spec(self.module)
        if spec is None or spec.submodule_search_locations is None:
            return False
        return any(
            (Path(location) / "__main__.py").is_file()
            for location in spec.submodule_search_locations
        )

    def port(self, port_base: int) -> int:
        return port_base + self.port_offset


SERVICES: tuple[Service, ...] = (
    Service("enrolment", 1),
    Service("visits", 2),
    Service("indicators", 3),
    Service("notifications", 4),
)


def free_port_base() -> int:
    """A base B whose ports B+1 … B+4 are all free, for a system beside any other."""
    for _ in range(100):
        base = random.randrange(20000, 60000, 10)
        if all(port_is_free(service.port(base)) for service in SERVICES):
            return base
    raise RuntimeError("no free block of ports")


def installed_services(services: Sequence[Service] = SERVICES) -> tuple[Service, ...]:
    return tuple(service for service in services if service.installed)


class StartFailed(RuntimeError):
    """The system could not be brought up; the message says which part and why."""


class StopRequested(Exception):
    """`request_stop()` was called while the system was starting."""


@dataclass(frozen=True)
class ProcessEnded:
    """A process of the system that ended while it should have been running."""

    name: str
    returncode: int
    log_file: Path
    log_tail: str

    def __str__(self) -> str:
        how = f"exited with code {self.returncode}"
        if self.returncode < 0:  # subprocess's way of saying "ended by signal N"
            with contextlib.suppress(ValueError):
                how = f"was killed by {signal.Signals(-self.returncode).name}"
        return f"{self.name} {how} (log {self.log_file}):\n{self.log_tail}"


@dataclass
class ServiceProcess:
    """A service started by `System`, and where it answers."""

    service: Service
    url: str
    log_file: Path
    process: subprocess.Popen[bytes]
    log_offset: int

    @property
    def name(self) -> str:
        return self.service.name

    @property
    def docs_url(self) -> str:
        return f"{self.url}/docs"

    @property
    def pid(self) -> int:
        return self.process.pid


class System:
    """nats-server and the services, started together and stopped together.

    ```
    with System(Path(".score")) as system:
        httpx.get(f"{system.url('enrolment')}/readyz")
    ```

    Every child runs in its own session: a Ctrl-C in the terminal reaches only the
    supervisor, which then stops the services first and nats-server last, so no service
    sees NATS vanish under it during a normal shutdown.

    A signal handler should call `request_stop()` rather than raise: an exception landing
    between starting a child and recording it would leave that child running unseen.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        nats_port: int | None = None,
        port_base: int = DEFAULT_PORT_BASE,
        services: Sequence[Service] | None = None,
        ready_timeout: float = 60.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port_base = port_base
        wanted = SERVICES if services is None else tuple(services)
        self.to_start = installed_services(wanted)
        self.not_installed = tuple(s for s in wanted if s not in self.to_start)
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        if nats_port is None and port_is_free(DEFAULT_NATS_PORT):
            nats_port = DEFAULT_NATS_PORT
        self.nats = NatsServer(
            self.data_dir / "nats",
            port=nats_port,
            name="score",
            log_file=self.logs_dir / "nats.log",
            start_timeout=ready_timeout,
            stop_timeout=stop_timeout,
        )
        self.services: list[ServiceProcess] = []
        self._lock: IO[str] | None = None
        self._stop_requested = False

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def nats_url(self) -> str:
        return self.nats.url

    def url(self, service_name: str) -> str:
        """The base URL of a running service."""
        for running in self.services:
            if running.name == service_name:
                return running.url
        raise KeyError(f"{service_name} is not running")

    def database_url(self, service: Service) -> str:
        return database_url(self.data_dir, service.name)

    def request_stop(self) -> None:
        """Ask `start()` and `wait()` to return early; safe to call from a signal handler."""
        self._stop_requested = True

    def start(self) -> None:
        """Start nats-server, then the services; return when every service is ready.

        Raises StartFailed, or StopRequested. What did start is left running: call `stop()`
        (the context manager does).
        """
        self.services = []
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._lock_data_dir()
        busy = [s for s in self.to_start if not port_is_free(s.port(self.port_base), LOOPBACK)]
        if busy:
            taken = ", ".join(f"{s.name} {s.port(self.port_base)}" for s in busy)
            raise StartFailed(
                f"ports already in use ({taken}): is another `score up` running? "
                "Choose other ports with --port-base."
            )
        try:
            self.nats.start()
        except NatsServerError as error:
            raise StartFailed(str(error)) from error
        for service in self.to_start:
            self._check_stop_requested()
            self.services.append(self._spawn(service))
        self._wait_until_ready()
        write_system(
            self.data_dir,
            nats_url=self.nats_url,
            services={running.name: running.url for running in self.services},
        )

    def admin_token(self, ttl: dt.timedelta = dt.timedelta(days=1)) -> str:
        """A token for the operator at the keyboard."""
        return admin_token(self.data_dir, ttl=ttl, subject="operator")

    def stop(self) -> None:
        """Stop the services (SIGTERM, SIGKILL after `stop_timeout`), then nats-server."""
        for running in reversed(self.services):
            _signal_group(running.process, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for running in self.services:
            try:
                running.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(running.process, signal.SIGKILL)
                running.process.wait()
        self.nats.stop()
        if self._lock is not None:  # only the holder speaks for the data folder
            forget_system(self.data_dir)
            self._lock.close()
            self._lock = None

    def ended(self) -> ProcessEnded | None:
        """The first process of the system found to have exited, if any."""
        for running in self.services:
            code = running.process.poll()
            if code is not None:
                tail = _log_tail(running.log_file, running.log_offset)
                return ProcessEnded(running.name, code, running.log_file, tail)
        code = self.nats.returncode
        if code is not None:
            return ProcessEnded("nats-server", code, self.nats.log_file, self.nats.log_tail())
        return None

    def wait(self, poll_interval: float = 0.1) -> ProcessEnded | None:
        """Block until a process of the system exits (say which) or a stop is requested."""
        while not self._stop_requested:
            if (ended := self.ended()) is not None:
                return ended
            time.sleep(poll_interval)
        return None

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _lock_data_dir(self) -> None:
        # Two supervisors on one folder would run two nats-servers on one JetStream store.
        # flock is released by the kernel when the holder dies, so no stale lock survives.
        lock = (self.data_dir / ".score-up.lock").open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise StartFailed(f"another `score up` is using {self.data_dir}") from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock

    def _spawn(self, service: Service) -> ServiceProcess:
        port = service.port(self.port_base)
        environment = {
            **os.environ,
            "SCORE_SERVICE_NAME": service.name,
            "SCORE_DATABASE_URL": self.database_url(service),
            "SCORE_NATS_URL": self.nats.url,
            "SCORE_AUTH_SECRET": auth_secret(self.data_dir),
            "SCORE_HTTP_HOST": LOOPBACK,
            "SCORE_HTTP_PORT": str(port),
            # Log lines should reach the file as they happen, not when a buffer fills.
            "PYTHONUNBUFFERED": "1",
        }
        log_file = self.logs_dir / f"{service.name}.log"
        with log_file.open("ab") as log:
            log_offset = log.tell()
            process = subprocess.Popen(
                [sys.executable, "-m", service.module],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
            )
        return ServiceProcess(service, f"http://{LOOPBACK}:{port}", log_file, process, log_offset)

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        pending = list(self.services)
        # trust_env=False: the services are on loopback, never behind the environment's proxy.
        with httpx.Client(timeout=1.0, trust_env=False) as http:
            while pending:
                self._check_stop_requested()
                if (ended := self.ended()) is not None:
                    raise StartFailed(f"while starting, {ended}")
                pending = [running for running in pending if not _ready(http, running)]
                if pending and time.monotonic() > deadline:
                    names = ", ".join(running.name for running in pending)
                    raise StartFailed(
                        f"not ready within {self.ready_timeout:g}s: {names} "
                        f"(logs in {self.logs_dir})"
                    )
                if pending:
                    time.sleep(0.1)

    def _check_stop_requested(self) -> None:
        if self._stop_requested:
            raise StopRequested


def _ready(http: httpx.Client, running: ServiceProcess) -> bool:
    try:
        return http.get(f"{running.url}/readyz").status_code == 200
    except httpx.HTTPError:
        return False


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    # The whole process group, so anything a service started itself goes too.
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)


def _log_tail(log_file: Path, offset: int, lines: int = 20) -> str:
    try:
        with log_file.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# The command.

# SIGHUP too: closing the terminal should stop the system as cleanly as Ctrl-C does.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "up",
        help="run nats-server and the services on this machine",
        description="Run nats-server (JetStream) and every installed service as local "
        "processes, with all data under one folder. Ctrl-C stops everything.",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="JetStream store, SQLite files and logs (default: %(default)s)",
    )
    parser.add_argument(
        "--nats-port",
        type=int,
        default=None,
        help=f"nats-server client port (default: {DEFAULT_NATS_PORT} if free, else any free port)",
    )
    parser.add_argument(
        "--port-base",
        type=int,
        default=DEFAULT_PORT_BASE,
        help="services listen on BASE+1 (enrolment) to BASE+4 (notifications) "
        "(default: %(default)s)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    system = System(args.data_dir, nats_port=args.nats_port, port_base=args.port_base)
    return serve_until_stopped(system)


def serve_until_stopped(
    system: System, *, after_start: Callable[[System], None] | None = None
) -> int:
    """Start the system, run `after_start`, and keep it running until a stop signal."""

    def stop_requested(signum: int, frame: FrameType | None) -> None:
        system.request_stop()

    previous = {signum: signal.signal(signum, stop_requested) for signum in _STOP_SIGNALS}
    try:
        return _serve(system, after_start)
    finally:
        system.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        print("Stopped.", flush=True)


def _serve(system: System, after_start: Callable[[System], None] | None) -> int:
    print(f"Starting SCORE Cases in {system.data_dir} …", flush=True)
    try:
        system.start()
    except StopRequested:
        return 0
    except StartFailed as failure:
        print(f"score up: {failure}", file=sys.stderr, flush=True)
        return 1
    if after_start is not None:
        try:
            after_start(system)
        except Exception as error:
            print(f"score: {error}", file=sys.stderr, flush=True)
            return 1
    _print_summary(system)
    ended = system.wait()
    if ended is None:
        print("\nStopping…", flush=True)
        return 0
    print(f"score up: {ended}\nStopping everything.", file=sys.stderr, flush=True)
    return 1


def _print_summary(system: System) -> None:
    url_width = max(len(running.url) for running in system.services) if system.services else 0
    rows = [("nats", system.nats_url)]
    rows += [(s.name, f"{s.url:<{url_width}}  docs {s.docs_url}") for s in system.services]
    if system.not_installed:
        rows.append(("not installed", ", ".join(s.name for s in system.not_installed)))
    rows.append(("data", f"{system.data_dir}  (logs in {system.logs_dir})"))
    rows.append(("admin token", f"{system.admin_token()}  (valid 24 h)"))
    name_width = max(len(name) for name, _ in rows)
    print("\nSCORE Cases is running.\n")
    for name, value in rows:
        print(f"  {name:<{name_width}}  {value}")
    print("\nCtrl-C to stop.", flush=True)
