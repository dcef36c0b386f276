"""The indicators service's routes of consumed events: which streams it reads, and what an
event of each does to the indicators, through the handler its subscription names.

It takes no command, so it has no command routes; its handlers are its subscriptions. These
run on a migrated SQLite database in a temporary folder, the projection's own storage (the
projection is SQL: a fake of it would test the fake). Every indicator's definition, on both
engines, is test_indicators.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from score_chassis.database import Database
from score_chassis.migrate import migrate
from score_contracts.events import (
    EnterpriseEnrolled,
    EnterpriseRegistered,
    ParticipantsTrained,
    VisitCompleted,
)
from score_contracts.examples import example, example_envelope
from score_indicators.indicators import Scope, compute
from score_indicators.main import MIGRATIONS, subscriptions


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'indicators.db'}")
    await migrate(db, [MIGRATIONS])
    try:
        yield db
    finally:
        await db.dispose()


def test_the_service_reads_the_enrolment_and_visits_streams_into_one_view() -> None:
    routes = subscriptions()
    assert sorted(route.stream.name for route in routes) == ["SCORE_ENROLMENT", "SCORE_VISITS"]
    assert len({route.view for route in routes}) == 1
    assert all(route.clear is not None for route in routes)


async def test_each_stream_s_events_reach_the_indicators_through_its_route(
    database: Database,
) -> None:
    by_stream = {route.stream.name: route for route in subscriptions()}
    enrolment = [
        example(EnterpriseRegistered),
        example(EnterpriseEnrolled),
        example(ParticipantsTrained),
    ]
    async with database.transaction() as conn:
        for event in enrolment:
            await by_stream["SCORE_ENROLMENT"].handler(conn, example_envelope(event))
        await by_stream["SCORE_VISITS"].handler(conn, example_envelope(example(VisitCompleted)))
    async with database.transaction(write=False) as conn:
        counted = await compute(conn, Scope(country="bo", region=None, window=None))
    trained = example(ParticipantsTrained)
    assert counted["enterprises_trained"] == 1
    assert counted["participants_trained"] == trained.managers.total + trained.workers.total
    assert counted["visits_completed"] == 1
    assert counted["improvements_recorded"] == len(example(VisitCompleted).improvements)
