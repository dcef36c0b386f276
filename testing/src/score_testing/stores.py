"""Stores made for a test of an operator's command: an enrolment store holding trainers'
registrations (to republish), a dead letter kept by a consumer (to list, retry, discard)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from score_chassis import dead_letters, store
from score_chassis.database import Database
from score_chassis.migrate import migrate
from score_chassis.store import NewEvent
from score_contracts.events import EnterpriseRegistered, Headcount, TrainerRegistered
from score_contracts.examples import example_envelope
from score_contracts.subjects import subject_for


async def stored_trainers(tmp_path: Path, count: int) -> tuple[str, list[str]]:
    """A fresh enrolment store holding `count` registrations (positions 1 … count): its URL,
    and their event ids."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'enrolment.db'}"
    database = Database(url)
    await migrate(database, [])
    ids = []
    async with database.transaction() as conn:
        for n in range(count):
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
    return url, ids


async def kept_dead_letter(
    database: Database, *, consumer: str, error: str = "handler failed 5 times"
) -> int:
    """A registration whose projection by `consumer` failed every attempt (a bug since
    fixed), kept as a dead letter: its id."""
    envelope = example_envelope(
        EnterpriseRegistered(
            enterprise_id="ent-dead-1",
            name="Textiles Illimani",
            tax_id="1020304",
            country="bo",
            region="oruro",
            sector="textiles",
            chamber="CAINCO",
            workforce=Headcount(women=50, men=40),
            registered_on=dt.date(2016, 5, 2),
        )
    )
    async with database.transaction() as conn:
        return await dead_letters.record(
            conn,
            consumer=consumer,
            subject="score.bo.oruro.enrolment.enterprise_registered.v1",
            event_id=envelope.id,
            deliveries=5,
            error=error,
            payload=envelope.model_dump_json().encode(),
        )
