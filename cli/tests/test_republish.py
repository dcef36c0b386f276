"""`score republish` re-drives a stored range to a stream that lost it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from score_chassis import store
from score_chassis.database import Database
from score_chassis.migrate import migrate
from score_chassis.store import NewEvent
from score_chassis.testing.streams import stream_messages
from score_cli.republish import _republish
from score_contracts.events import TrainerRegistered
from score_contracts.subjects import subject_for

pytestmark = pytest.mark.nats


async def test_a_lost_stream_is_re_driven_from_the_store_and_a_second_run_adds_nothing(
    tmp_path: Path, nats_url: str
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'enrolment.db'}"
    database = Database(url)
    await migrate(database, [])
    ids = []
    async with database.transaction() as conn:
        for n in range(5):
            event = TrainerRegistered(
                trainer_id=f"tr-{n}",
                name="Ana",
                sex="female",
                country="bo",
                region="oruro",
                organisation="CEPB",
                registered_on=dt.date(2016, 1, 1),
            )
            new = NewEvent(event, subject_for(event, "bo", "oruro"))
            await store.append(conn, f"trainer/tr-{n}", 0, [new], source="/score/bo/enrolment")
            ids.append(new.event_id)
    await database.dispose()

    assert await _republish("enrolment", url, nats_url, after=2, until=None) == 3
    messages = await stream_messages(nats_url, "SCORE_ENROLMENT")
    assert [h["Nats-Msg-Id"] for h, _ in messages] == ids[2:]

    assert await _republish("enrolment", url, nats_url, after=0, until=None) == 5
    messages = await stream_messages(nats_url, "SCORE_ENROLMENT")
    assert sorted(h["Nats-Msg-Id"] for h, _ in messages) == sorted(ids)  # no copies
