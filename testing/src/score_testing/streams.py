"""Reading what JetStream holds, for tests that assert what reached a stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nats
from nats.js.errors import NotFoundError


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
