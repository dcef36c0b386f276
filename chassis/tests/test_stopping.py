"""A service stops, whatever its background tasks do with a cancellation: one that loses it
(nats-py's `asyncio.wait_for` can, on Python 3.11) is cancelled again until it ends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from score_chassis import tokens
from score_chassis.runtime import Runtime
from score_chassis.settings import ServiceSettings
from score_chassis.tasks import cancel_until_done
from score_testing.nats import free_port
from score_testing.service import TEST_SECRET


def service_settings(tmp_path: Path, nats_url: str) -> ServiceSettings:
    return ServiceSettings(
        service_name="enrolment",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'service.db'}",
        nats_url=nats_url,
        auth_secret=TEST_SECRET,
        log_format="console",
    )


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
    # Nobody at the NATS URL: the service starts anyway.
    runtime = Runtime(
        service_settings(tmp_path, f"nats://127.0.0.1:{free_port()}"), context="enrolment"
    )
    ended = asyncio.Event()
    runtime.alongside.append(lambda: losing_one_cancellation(ended))
    await runtime.start()
    await asyncio.sleep(0.1)
    stopping = asyncio.create_task(runtime.stop())
    await asyncio.wait([stopping], timeout=10)  # it waited for ever before
    assert stopping.done() and ended.is_set()


class LosingWatch:
    """A key-value watch whose wait takes one cancellation for a timeout, as nats-py's can."""

    def __init__(self, ended: asyncio.Event) -> None:
        self.ended = ended

    async def watchall(self) -> LosingWatch:
        return self

    def __aiter__(self) -> LosingWatch:
        return self

    async def __anext__(self) -> None:
        await losing_one_cancellation(self.ended)


@pytest.mark.nats
async def test_the_revocation_watch_stops_though_it_loses_a_cancellation(
    tmp_path: Path, nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ended = asyncio.Event()

    async def bucket(nats: object) -> LosingWatch:
        return LosingWatch(ended)

    monkeypatch.setattr(tokens, "bucket", bucket)
    runtime = Runtime(service_settings(tmp_path, nats_url), context="enrolment")
    await runtime.start()
    try:
        revocations = tokens.Revocations(runtime.nats, runtime.database)
        await revocations.start()
        await asyncio.sleep(0.2)  # connected, and watching
        stopping = asyncio.create_task(revocations.stop())
        await asyncio.wait([stopping], timeout=10)  # it waited for ever before
        assert stopping.done() and ended.is_set()
    finally:
        await runtime.stop()
