from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from score_chassis.nats_server import free_port
from score_chassis.testing.service import TEST_SECRET, serving
from score_enrolment.main import build_app
from score_enrolment.settings import EnrolmentSettings


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The enrolment API in-process on SQLite; NATS is absent, so events stay in the outbox."""
    settings = EnrolmentSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'enrolment.db'}",
        nats_url=f"nats://127.0.0.1:{free_port()}",
        auth_secret=TEST_SECRET,
        log_format="console",
    )
    async with serving(build_app(settings)) as client:
        yield client
