"""A service stops, whatever its background tasks do with a cancellation: one that loses it
(nats-py's `asyncio.wait_for` can, on Python 3.11) is cancelled again until it ends."""

from __future__ import annotations

import asyncio
from pathlib import Path

from score_chassis.runtime import Runtime
from score_chassis.settings import ServiceSettings
from score_chassis.tasks import cancel_until_done
from score_testing.nats import free_port
from score_testing.service import TEST_SECRET


async def losing_one_cancellation(ended: asyncio.Event) -> None:
    """A task like one whose request took its cancellation for NATS being away: it logs,
    waits a moment and tries again."""
    lost = False
    try:
        while True:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                if lost:
                    raise
                lost = True  # taken for a timeout: try again
    finally:
        ended.set()


async def test_a_task_that_loses_a_cancellation_is_cancelled_until_it_ends() -> None:
    ended = asyncio.Event()
    task = asyncio.create_task(losing_one_cancellation(ended))
    await asyncio.sleep(0.01)
    stopping = asyncio.create_task(cancel_until_done(task, every=0.1))
    await asyncio.wait([stopping], timeout=10)
    assert stopping.done() and ended.is_set() and task.cancelled()


async def test_a_service_stops_though_a_task_alongside_loses_a_cancellation(
    tmp_path: Path,
) -> None:
    settings = ServiceSettings(
        service_name="enrolment",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'service.db'}",
        nats_url=f"nats://127.0.0.1:{free_port()}",  # nobody there: the service starts anyway
        auth_secret=TEST_SECRET,
        log_format="console",
    )
    runtime = Runtime(settings, context="enrolment")
    ended = asyncio.Event()
    runtime.alongside.append(lambda: losing_one_cancellation(ended))
    await runtime.start()
    await asyncio.sleep(0.1)
    stopping = asyncio.create_task(runtime.stop())
    await asyncio.wait([stopping], timeout=10)  # it waited for ever before
    assert stopping.done() and ended.is_set()
