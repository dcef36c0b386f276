"""Publishing to JetStream as a service's relay does, and reading what it holds, for tests of
what consumers make of a stream and of what reached one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import nats
from nats.js.errors import NotFoundError

from score_chassis.jetstream import ensure_stream
from score_contracts.envelope import Envelope
from score_contracts.events import Event
from score_contracts.subjects import STREAMS, subject_for


async def publish_envelopes(
    url: str,
    envelopes: Iterable[Envelope[Event]],
    *,
    region: str | None = None,
    again: bool = False,
) -> None:
    """Publish each envelope on its event's subject, in its context's stream (made where
    missing, with the enrolment and visits streams), its id as `Nats-Msg-Id`, as a relay does.

    `region`: the subject's region token, for every event; by default the event's own, or
    `national`. `again` stores another copy of each, as a republish outside JetStream's
    duplicate window would: the consumers' inbox, not the stream, must drop it.
    """
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        for context in ("enrolment", "visits"):
            await ensure_stream(js, STREAMS[context])
        for envelope in envelopes:
            event = envelope.data
            if event.context not in ("enrolment", "visits"):
                await ensure_stream(js, STREAMS[event.context])
            subject = subject_for(event, "bo", region or getattr(event, "region", None))
            message_id = f"{envelope.id}-again" if again else envelope.id
            await js.publish(
                subject, envelope.model_dump_json().encode(), headers={"Nats-Msg-Id": message_id}
            )
    finally:
        await client.close()


async def stream_messages(url: str, stream: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """Every message of `stream` as (headers, CloudEvent body), in stream order."""
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        try:
            info = await js.stream_info(stream)
        except NotFoundError:
            return []
        if not info.state.messages:  # an empty stream's first and last sequences are 0
            return []
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                msg = await js.get_msg(stream, seq)
            except NotFoundError:
                continue
            out.append((dict(msg.headers or {}), json.loads(msg.data or b"{}")))
        return out
    finally:
        await client.close()


async def wait_for(condition: Any, *, within: float = 10.0, interval: float = 0.05) -> Any:
    """Poll an async or plain callable until it returns something truthy (bounded)."""
    async with asyncio.timeout(within):
        while True:
            value = condition()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(interval)
