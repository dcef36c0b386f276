"""`score up`: the whole system on one machine.

A nats-server with JetStream and each service as its own process, with the JetStream store,
the services' SQLite files and their logs under one data folder, so that a second run on
the same folder finds everything as it was. `System` does the supervising and is what other
commands (`score demo`) start the system with.

A child that crashes is restarted, after a pause that doubles with each crash in a row, so
that one crash is not an outage: while nats-server is away the services keep taking writes
into their outboxes, and while a service is away the others keep serving. A child that will
not start at all is given up on, and the rest keeps running without it. Only a stop signal
stops the whole system.
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Literal, Self

import httpx

from score_cli.broker_config import (
    SERVER_NAME,
    config_file,
    passwords,
    pid_file,
    reload,
    write_config,
)
from score_cli.datadir import (
    admin_token,
    auth_secret,
    database_url,
    forget_system,
    notifications_key,
    write_system,
)
from score_cli.nats_server import LOOPBACK, NatsServer, NatsServerError, port_is_free

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

    @property
    def how(self) -> str:
        """How it ended, as a sentence's verb: "was killed by SIGKILL", "exited with code 1"."""
        if self.returncode < 0:  # subprocess's way of saying "ended by signal N"
            with contextlib.suppress(ValueError):
                return f"was killed by {signal.Signals(-self.returncode).name}"
        return f"exited with code {self.returncode}"

    def __str__(self) -> str:
        tail = "".join(f"\n    {line}" for line in self.log_tail.splitlines())
        return f"{self.name} {self.how} (log {self.log_file}); its last lines:{tail or ' none'}"


@dataclass(frozen=True)
class RestartPolicy:
    """When a crashed child is restarted, and when the supervisor stops trying."""

    first_delay: float = 0.5
    """Seconds before the first restart; each crash in a row doubles it."""
    max_delay: float = 30.0
    stable_after: float = 60.0
    """A child up this long has recovered: its next crash starts from `first_delay` again."""
    give_up_after: int = 5
    """Crashes in a row before the child was ever ready: it will not start, and trying again
    only fills its log."""

    def delay(self, crashes_in_a_row: int) -> float:
        return min(self.first_delay * 2.0 ** max(crashes_in_a_row - 1, 0), self.max_delay)


ChildState = Literal["running", "restarting", "given up"]


@dataclass
class ChildRecord:
    """What the supervisor knows of one child (a service or nats-server) over the system's
    life: what the backoff and the giving up are decided from, and what `score doctor` shows."""

    name: str
    log_file: Path
    state: ChildState = "running"
    restarts: int = 0
    last_exit: str | None = None
    """How the child last ended ("was killed by SIGKILL"), if it ever did."""
    last_exit_at: dt.datetime | None = None
    crashes_in_a_row: int = 0
    """Crashes since it last stayed up `stable_after`: the backoff grows with these."""
    failed_starts: int = 0
    """Crashes in a row before it became ready: it is given up on at `give_up_after`."""
    started_at: float = 0.0
    """When its current run began (monotonic clock)."""
    ready: bool = False
    """Its current run has answered ready."""
    restart_due: float | None = None
    """When it is to be restarted (monotonic clock), while it is `restarting`."""

    def began(self, now: float) -> None:
        self.state, self.started_at, self.ready, self.restart_due = "running", now, False, None

    def became_ready(self) -> None:
        self.ready, self.failed_starts = True, 0

    def crashed(self, how: str, now: float, policy: RestartPolicy) -> float | None:
        """Record that the child ended; the seconds until its restart, or None: given up."""
        if now - self.started_at >= policy.stable_after:
            self.crashes_in_a_row = 0
        self.crashes_in_a_row += 1
        if not self.ready:
            self.failed_starts += 1
        self.last_exit, self.last_exit_at = how, dt.datetime.now(dt.UTC)
        if self.failed_starts >= policy.give_up_after:
            self.state, self.restart_due = "given up", None
            return None
        delay = policy.delay(self.crashes_in_a_row)
        self.state, self.restart_due = "restarting", now + delay
        return delay

    def as_json(self) -> dict[str, object]:
        """The record as `system.json` keeps it for `score doctor`."""
        return {
            "state": self.state,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "last_exit_at": self.last_exit_at.isoformat() if self.last_exit_at else None,
            "failed_starts": self.failed_starts,
            "log": str(self.log_file),
        }


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


NATS_SERVER = "nats-server"
"""The name nats-server goes by among the children, in the output and in `system.json`."""
READERS_CHECK_SECONDS = 30.0
"""How often `score up` looks for readers whose credentials have expired."""
TAIL_LINES = 10
"""Lines of a crashed child's log shown with the news of its crash."""


def _say_on_stderr(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {line}", file=sys.stderr, flush=True)


class System:
    """nats-server and the services, started together, kept running, and stopped together.

    ```
    with System(Path(".score")) as system:
        httpx.get(f"{system.url('enrolment')}/readyz")
        system.supervise()  # until request_stop(): restarts what crashes
    ```

    Every child runs in its own session: a Ctrl-C in the terminal reaches only the
    supervisor, which then stops the services first and nats-server last, so no service
    sees NATS vanish under it during a normal shutdown.

    A child that ends while the system runs is restarted after a pause (`RestartPolicy`),
    nats-server on the same port and store; one that keeps crashing before it is ready is
    given up on, and the rest keeps running without it. Every crash, restart and giving up is
    said through `report` (stderr by default) and recorded in the data folder's
    `system.json`, where `score doctor` finds it.

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
        restart_policy: RestartPolicy | None = None,
        report: Callable[[str], None] = _say_on_stderr,
        environment: Mapping[str, Mapping[str, str | None]] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port_base = port_base
        wanted = SERVICES if services is None else tuple(services)
        self.to_start = installed_services(wanted)
        self.not_installed = tuple(s for s in wanted if s not in self.to_start)
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.restart_policy = restart_policy or RestartPolicy()
        self.report = report
        self.environment = dict(environment or {})
        """More environment for a service's process, by service name, over what it is given
        otherwise (`score demo` points the notifications at its sinks); None leaves a
        variable out."""
        if nats_port is None and port_is_free(DEFAULT_NATS_PORT):
            nats_port = DEFAULT_NATS_PORT
        self.nats = NatsServer(
            self.data_dir / "nats",
            port=nats_port,
            name=SERVER_NAME,
            config_file=config_file(self.data_dir),
            log_file=self.logs_dir / "nats.log",
            start_timeout=ready_timeout,
            stop_timeout=stop_timeout,
        )
        self.services: list[ServiceProcess] = []
        self.children: dict[str, ChildRecord] = {}
        """Every child by name, nats-server first: their restarts, crashes and state."""
        self._lock: IO[str] | None = None
        self._stop_requested = False
        self.stop_reason: str | None = None
        self._started = False
        self._http: httpx.Client | None = None
        self._readers_checked = 0.0

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def nats_url(self) -> str:
        return self.nats.url

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    @property
    def given_up(self) -> tuple[str, ...]:
        """The children the supervisor stopped restarting."""
        return tuple(name for name, child in self.children.items() if child.state == "given up")

    def url(self, service_name: str) -> str:
        """The base URL of a running service."""
        for running in self.services:
            if running.name == service_name:
                return running.url
        raise KeyError(f"{service_name} is not running")

    def database_url(self, service: Service) -> str:
        return database_url(self.data_dir, service.name)

    def request_stop(self, reason: str | None = None) -> None:
        """Ask `start()` and `supervise()` to return early; safe from a signal handler.

        `reason` (the signal, say) is what the stop is announced with.
        """
        self._stop_requested = True
        self.stop_reason = self.stop_reason or reason

    def start(self) -> None:
        """Start nats-server, then the services; return when every service is ready or has
        been given up on (restarting those that crash meanwhile).

        Raises StartFailed (nats-server did not start, a port is taken, no service started,
        or one is not ready within `ready_timeout`), or StopRequested. What did start is left
        running: call `stop()` (the context manager does).
        """
        self.services, self.children, self._started = [], {}, False
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._lock_data_dir()
        busy = [s for s in self.to_start if not port_is_free(s.port(self.port_base), LOOPBACK)]
        if busy:
            taken = ", ".join(f"{s.name} {s.port(self.port_base)}" for s in busy)
            raise StartFailed(
                f"ports already in use ({taken}): is another `score up` running? "
                "Choose other ports with --port-base."
            )
        nats = self.children[NATS_SERVER] = ChildRecord(NATS_SERVER, self.nats.log_file)
        # The broker's users and permissions (ADR 021); expired readers are left out.
        write_config(self.data_dir)
        self._readers_checked = time.monotonic()
        try:
            self.nats.start()
        except NatsServerError as error:
            raise StartFailed(str(error)) from error
        nats.began(time.monotonic())
        nats.became_ready()
        for service in self.to_start:
            self._check_stop_requested()
            running = self._spawn(service)
            self.services.append(running)
            self.children[service.name] = ChildRecord(service.name, running.log_file)
            self.children[service.name].began(time.monotonic())
        self._wait_until_ready()
        if self.services and all(s.name in self.given_up for s in self.services):
            raise StartFailed(f"no service would start (logs in {self.logs_dir})")
        self._started = True
        self._record()

    def admin_token(self, ttl: dt.timedelta = dt.timedelta(days=1)) -> str:
        """A token for the operator at the keyboard."""
        return admin_token(self.data_dir, ttl=ttl, subject="operator")

    def supervise(self, poll_interval: float = 0.1) -> None:
        """Look after the children until a stop is requested: restart what crashes, give up
        on what will not start. Returns sooner only if every child has been given up on."""
        while not self._stop_requested:
            self.look_after_children()
            if all(child.state == "given up" for child in self.children.values()):
                return
            time.sleep(poll_interval)

    def look_after_children(self) -> None:
        """One round of supervision: notice the children that ended, restart those whose
        pause is over, and see which restarted ones are ready again."""
        now = time.monotonic()
        if now - self._readers_checked >= READERS_CHECK_SECONDS:
            self._readers_checked = now
            self._expire_readers()
        changed = self._look_after_nats(now)
        for running in self.services:
            changed = self._look_after_service(running, now) or changed
        if changed and self._started:
            self._record()

    def stop(self) -> None:
        """Stop the services (SIGTERM, SIGKILL after `stop_timeout`), then nats-server.

        A child waiting for its restart has no process: it simply is not restarted.
        """
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
        if self._lock is not None:
            pid_file(self.data_dir).unlink(missing_ok=True)
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._lock is not None:  # only the holder speaks for the data folder
            forget_system(self.data_dir)
            self._lock.close()
            self._lock = None

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

    def _expire_readers(self) -> None:
        """Drop the readers whose credentials have expired, and have the server reload."""
        dropped = write_config(self.data_dir)
        if dropped and self.nats.running and reload(self.data_dir):
            self.report(f"NATS credentials expired and removed: {', '.join(dropped)}")

    def _spawn(self, service: Service) -> ServiceProcess:
        port = service.port(self.port_base)
        log_file = self.logs_dir / f"{service.name}.log"
        process, log_offset = self._launch(service)
        return ServiceProcess(service, f"http://{LOOPBACK}:{port}", log_file, process, log_offset)

    def _launch(self, service: Service) -> tuple[subprocess.Popen[bytes], int]:
        """Start the service's process; it and where this run's lines begin in its log."""
        # A service of the broker's model connects as its own user (ADR 021).
        password = passwords(self.data_dir).get(service.name)
        environment = {
            **os.environ,
            **(
                {"SCORE_NATS_USER": service.name, "SCORE_NATS_PASSWORD": password}
                if password
                else {}
            ),
            "SCORE_SERVICE_NAME": service.name,
            "SCORE_DATABASE_URL": self.database_url(service),
            "SCORE_NATS_URL": self.nats.url,
            "SCORE_AUTH_SECRET": auth_secret(self.data_dir),
            "SCORE_HTTP_HOST": LOOPBACK,
            "SCORE_HTTP_PORT": str(service.port(self.port_base)),
            # Log lines should reach the file as they happen, not when a buffer fills.
            "PYTHONUNBUFFERED": "1",
        }
        if service.name == "notifications":
            # Its own key for the webhooks' secrets, unless the operator gives one. The
            # allowed hosts and the SMTP settings come through from the environment as given.
            environment.setdefault(
                "SCORE_NOTIFICATIONS_SECRET_KEY", notifications_key(self.data_dir)
            )
        for name, value in self.environment.get(service.name, {}).items():
            if value is None:
                environment.pop(name, None)
            else:
                environment[name] = value
        with (self.logs_dir / f"{service.name}.log").open("ab") as log:
            log_offset = log.tell()
            process = subprocess.Popen(
                [sys.executable, "-m", service.module],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
            )
        return process, log_offset

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            self._check_stop_requested()
            self.look_after_children()
            pending = [
                running.name
                for running in self.services
                if not self.children[running.name].ready
                and self.children[running.name].state != "given up"
            ]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise StartFailed(
                    f"not ready within {self.ready_timeout:g}s: {', '.join(pending)} "
                    f"(logs in {self.logs_dir})"
                )
            time.sleep(0.1)

    def _look_after_service(self, running: ServiceProcess, now: float) -> bool:
        """Whether anything about the service changed."""
        child = self.children[running.name]
        if child.state == "given up":
            return False
        if child.state == "restarting":
            if child.restart_due is not None and now < child.restart_due:
                return False
            child.restarts += 1
            running.process, running.log_offset = self._launch(running.service)
            child.began(time.monotonic())
            return True
        code = running.process.poll()
        if code is not None:
            tail = _log_tail(running.log_file, running.log_offset, TAIL_LINES)
            self._crashed(child, ProcessEnded(running.name, code, running.log_file, tail), now)
            return True
        if not child.ready and _ready(self._client(), running):
            child.became_ready()
            if child.restarts:
                self.report(f"{running.name} is ready again (restart {child.restarts})")
            return True
        return False

    def _look_after_nats(self, now: float) -> bool:
        """Whether anything about nats-server changed."""
        child = self.children.get(NATS_SERVER)
        if child is None or child.state == "given up":
            return False
        if child.state == "restarting":
            if child.restart_due is not None and now < child.restart_due:
                return False
            child.restarts += 1
            child.began(time.monotonic())
            try:
                self.nats.start()  # the same port, monitor port and store as before
            except NatsServerError:
                self._crashed(child, self._nats_ended(), time.monotonic())
                return True
            child.became_ready()
            self.report(
                f"nats-server is running again at {self.nats_url}, on the same store "
                f"(restart {child.restarts}); the services reconnect by themselves"
            )
            return True
        if self.nats.returncode is not None:
            self._crashed(child, self._nats_ended(), now)
            return True
        return False

    def _nats_ended(self) -> ProcessEnded:
        code = self.nats.returncode
        return ProcessEnded(
            NATS_SERVER,
            -1 if code is None else code,
            self.nats.log_file,
            self.nats.log_tail(TAIL_LINES),
        )

    def _crashed(self, child: ChildRecord, ended: ProcessEnded, now: float) -> None:
        delay = child.crashed(ended.how, now, self.restart_policy)
        self.report(str(ended))
        if delay is None:
            self.report(
                f"{child.name} {ended.how} before it was ready, {child.failed_starts} times in "
                f"a row: not restarting it again. The rest of the system keeps running without "
                f"it; read {child.log_file}, fix what it says and start `score up` again."
            )
            return
        self.report(f"restarting {child.name} in {delay:g}s (restart {child.restarts + 1})")
        if child.name == NATS_SERVER:
            self.report("meanwhile the services keep taking writes, which wait in their outboxes")

    def _client(self) -> httpx.Client:
        if self._http is None:
            # trust_env=False: the services are on loopback, never behind a proxy.
            self._http = httpx.Client(timeout=1.0, trust_env=False)
        return self._http

    def _record(self) -> None:
        write_system(
            self.data_dir,
            nats_url=self.nats_url,
            services={running.name: running.url for running in self.services},
            children={name: child.as_json() for name, child in self.children.items()},
        )

    def _check_stop_requested(self) -> None:
        if self._stop_requested:
            raise StopRequested


def _ready(http: httpx.Client, running: ServiceProcess) -> bool:
    """Whether the service is up: ready, or unready only because it is catching a view up
    (a fresh or emptied database reading its streams again), which is not a failed start."""
    try:
        response = http.get(f"{running.url}/readyz")
    except httpx.HTTPError:
        return False
    if response.status_code == 200:
        return True
    try:
        checks = response.json().get("checks", {})
    except ValueError:
        return False
    return bool(checks.get("rebuilding")) and checks.get("database") == "ok"


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
        "processes, with all data under one folder. A process that crashes is restarted, "
        "after a pause that doubles with each crash in a row (0.5 s up to 30 s); one that "
        "crashes 5 times in a row before it is ready is given up on, and the rest keeps "
        "running. Ctrl-C (or SIGTERM, SIGHUP) stops everything.",
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
    """Start the system, run `after_start`, and look after it until a stop signal."""

    def stop_requested(signum: int, frame: FrameType | None) -> None:
        system.request_stop(signal.Signals(signum).name)

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
    system.supervise()
    if system.stop_requested:
        print(f"\nStopping ({system.stop_reason or 'asked to'})…", flush=True)
        return 0
    print("score up: every process was given up on; stopping.", file=sys.stderr, flush=True)
    return 1


def _print_summary(system: System) -> None:
    url_width = max(len(running.url) for running in system.services) if system.services else 0
    rows = [("nats", system.nats_url)]
    for running in system.services:
        child = system.children[running.name]
        if child.state == "given up":
            rows.append((running.name, f"given up: it {child.last_exit} at every start"))
        else:
            rows.append((running.name, f"{running.url:<{url_width}}  docs {running.docs_url}"))
    token = system.admin_token()
    dashboard = next((r for r in system.services if r.name == "indicators"), None)
    if dashboard is not None and system.children[dashboard.name].state != "given up":
        rows.append(("dashboard", f"{dashboard.url}/?token={token}"))
    if system.not_installed:
        rows.append(("not installed", ", ".join(s.name for s in system.not_installed)))
    rows.append(("data", f"{system.data_dir}  (logs in {system.logs_dir})"))
    rows.append(("admin token", f"{token}  (valid 24 h)"))
    name_width = max(len(name) for name, _ in rows)
    print("\nSCORE Cases is running.\n")
    for name, value in rows:
        print(f"  {name:<{name_width}}  {value}")
    print("\nCtrl-C to stop.", flush=True)
