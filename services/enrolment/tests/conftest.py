from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from score_enrolment.main import build_app
from score_enrolment.settings import EnrolmentSettings
from score_testing.nats import free_port
from score_testing.service import TEST_SECRET, serving


@pytest.fixture
def settings(tmp_path: Path) -> EnrolmentSettings:
    """The enrolment service on SQLite, with NATS absent: events stay in the outbox, where
    `/readyz` counts them."""
    return EnrolmentSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'enrolment.db'}",
        nats_url=f"nats://127.0.0.1:{free_port()}",
        auth_secret=TEST_SECRET,
        log_format="console",
    )


@pytest.fixture
async def client(settings: EnrolmentSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The enrolment API in-process."""
    async with serving(build_app(settings)) as client:
        yield client
