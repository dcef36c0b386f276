"""A service given a cluster's nodes (`SCORE_NATS_URL=nats://n1,nats://n2`) connects to one that
answers, whichever is down, and moves to another when its own goes."""

from __future__ import annotations

import asyncio

import pytest

from score_chassis.jetstream import NatsConnection, redacted, servers
from score_cli.nats_server import NatsServer, free_port
from score_testing.nats import AuthenticatedNats

pytestmark = pytest.mark.nats


def test_a_url_names_each_server_of_a_cluster() -> None:
    assert servers("nats://a:4222, nats://b:4222,") == ["nats://a:4222", "nats://b:4222"]
    assert servers("nats://a:4222") == ["nats://a:4222"]


def test_no_password_of_any_server_is_logged() -> None:
    shown = redacted("nats://u:secret@a:4222,nats://u:secret@b:4222")
    assert shown == "nats://u:***@a:4222,nats://u:***@b:4222"


async def test_the_connection_takes_the_server_that_answers(nats_server: NatsServer) -> None:
    down = f"nats://127.0.0.1:{free_port()}"  # nobody listens there
    connection = NatsConnection(f"{down},{nats_server.url}", name="test-servers")
    connection.start()
    try:
        async with asyncio.timeout(15):
            await connection.ready.wait()
        assert connection.connected
        assert connection.client.connected_url is not None
        assert connection.client.connected_url.port == nats_server.port
    finally:
        await connection.close()


async def test_the_credentials_of_the_first_server_log_in_to_the_others(
    authenticated_nats: AuthenticatedNats,
) -> None:
    """`nats://user:password@n1,nats://n2`, as `score_cli` adds the operator's to a URL."""
    password = authenticated_nats.passwords["enrolment"]
    down = f"nats://enrolment:{password}@127.0.0.1:{free_port()}"
    connection = NatsConnection(f"{down},{authenticated_nats.url()}", name="test-servers")
    connection.start()
    try:
        async with asyncio.timeout(15):
            await connection.ready.wait()
        assert connection.user == "enrolment"
        # As enrolment: its own stream's info is allowed (another user's would be refused).
        await connection.jetstream.add_stream(
            name="SCORE_ENROLMENT", subjects=["score.*.*.enrolment.>"]
        )
    finally:
        await connection.close()
