"""A durable consumer's messages pulled ahead (`score_chassis.pull`), against a real nats-server:
each comes once and in order, at most a batch at a time; what was received and not taken is
given back at a stop, at once; a deleted durable ends the reading; a request lost with the
server is made again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig

from score_chassis.pull import ConsumerGone, Pull
from score_testing.nats import NatsServer

pytestmark = pytest.mark.nats

STREAM, DURABLE = "PULLED", "reader"


@pytest.fixture
async def client(nats_url: str) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    js = nc.jetstream()
    await js.add_stream(name=STREAM, subjects=["pulled.>"])
    # As the consumers' durables are: explicit acks, and a message not acknowledged comes
    # again only after ack_wait.
    config = ConsumerConfig(durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT, ack_wait=30)
    await js.add_consumer(STREAM, config)
    yield nc
    await nc.close()


async def publish(nc: Client, count: int, *, start: int = 0) -> None:
    js = nc.jetstream()
    for n in range(start, start + count):
        await js.publish("pulled.one", str(n).encode())


async def take_all(pull: Pull, count: int, *, within: float = 10.0) -> list[list[Msg]]:
    """The takes that bring `count` messages, each acknowledged."""
    takes: list[list[Msg]] = []
    async with asyncio.timeout(within):
        while sum(map(len, takes)) < count:
            try:
                taken = await pull.take(within=0.5)
            except TimeoutError:
                continue
            for msg in taken:
                await msg.ack()
            takes.append(taken)
    return takes


async def test_each_message_comes_once_in_order_at_most_a_batch_at_a_time(
    client: Client,
) -> None:
    pull = Pull(client, STREAM, DURABLE, batch=10)
    await pull.start()
    try:
        await publish(client, 25)
        takes = await take_all(pull, 25)
        await publish(client, 3, start=25)  # stored while the pull waits
        takes += await take_all(pull, 3)
    finally:
        await pull.stop()
    assert all(1 <= len(taken) <= 10 for taken in takes)
    assert [int(msg.data) for taken in takes for msg in taken] == list(range(28))


async def test_what_was_received_and_not_taken_comes_again_at_once_after_a_stop(
    client: Client,
) -> None:
    pull = Pull(client, STREAM, DURABLE, batch=2)
    await pull.start()
    await publish(client, 5)
    [first] = await take_all(pull, 2)
    await asyncio.sleep(0.5)  # the next batch arrives, and waits in the pull
    await pull.stop()

    again = Pull(client, STREAM, DURABLE, batch=10)
    await again.start()
    try:
        # ack_wait is 30 s: only a message given back comes again within 5.
        rest = await take_all(again, 3, within=5)
    finally:
        await again.stop()
    assert [int(msg.data) for msg in first] == [0, 1]
    assert sorted(int(msg.data) for taken in rest for msg in taken) == [2, 3, 4]


async def test_a_deleted_durable_ends_the_reading(client: Client) -> None:
    pull = Pull(client, STREAM, DURABLE, batch=10)
    await pull.start()
    try:
        await client.jetstream().delete_consumer(STREAM, DURABLE)
        with pytest.raises(ConsumerGone):
            async with asyncio.timeout(10):
                while True:
                    with contextlib.suppress(TimeoutError):
                        await pull.take(within=0.5)
    finally:
        await pull.stop()


async def test_a_request_lost_with_a_restarted_server_is_made_again(
    client: Client, nats_server: NatsServer
) -> None:
    pull = Pull(client, STREAM, DURABLE, batch=10, heartbeat=0.5)
    await pull.start()
    try:
        await publish(client, 1)
        await take_all(pull, 1)
        nats_server.restart()  # the stream and the durable are on disk; the request is not
        async with asyncio.timeout(15):
            while True:  # until the client is back and JetStream has its stream again
                try:
                    await publish(client, 1, start=1)
                    break
                except (nats.errors.Error, nats.js.errors.Error):
                    await asyncio.sleep(0.2)
        await publish(client, 1, start=2)
        again = await take_all(pull, 2, within=15)
    finally:
        await pull.stop()
    assert [int(msg.data) for taken in again for msg in taken] == [1, 2]


async def test_a_refused_request_is_asked_again_after_a_pause_not_in_a_loop(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A push consumer refuses every pull request at once (409), as a stream without a leader
    # would (503): asked again at once, the refusals would go round as fast as the network.
    js = client.jetstream()
    await js.delete_consumer(STREAM, DURABLE)
    push = ConsumerConfig(durable_name=DURABLE, deliver_subject="elsewhere")
    await js.add_consumer(STREAM, push)
    asked: list[str] = []
    publish = client.publish

    async def counting(subject: str, *args: Any, **options: Any) -> None:
        if ".CONSUMER.MSG.NEXT." in subject:
            asked.append(subject)
        await publish(subject, *args, **options)

    monkeypatch.setattr(client, "publish", counting)
    pull = Pull(client, STREAM, DURABLE, batch=10, heartbeat=1.0)
    await pull.start()
    try:
        await asyncio.sleep(2)
    finally:
        await pull.stop()
    assert 2 <= len(asked) <= 10, len(asked)
