"""Stopping a background task for certain.

A cancellation can be lost on Python 3.11: nats-py waits for its requests with
`asyncio.wait_for`, which may swallow a cancellation that comes as the request ends, or turn
it into a `TimeoutError` that a task's `except Exception` takes for NATS being away, and the
task then goes on for ever. So a task is cancelled again until it has ended.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_until_done(task: asyncio.Task[Any], *, every: float = 1.0) -> None:
    """Cancel `task`, again every `every` seconds until it ends; its outcome is taken (so
    that asyncio reports no exception), not raised."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=every)
    if not task.cancelled():
        task.exception()
