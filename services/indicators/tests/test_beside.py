"""The projection built beside the served one (for a rebuild with no downtime) is the same
projection: the same tables, the same facts from the same events, and switched in whole."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from score_chassis.consumer import BatchHandler
from score_chassis.database import Database
from score_indicators.indicators import Scope, compute
from score_indicators.projection import BUILT_BESIDE, project
from score_indicators.tables import NEXT, metadata
from score_testing.history import History


def _columns(sync_conn: Any) -> dict[str, list[tuple[str, str, bool]]]:
    inspector = sa.inspect(sync_conn)
    return {
        name: [
            (column["name"], str(column["type"]), bool(column["nullable"]))
            for column in inspector.get_columns(name)
        ]
        for name in inspector.get_table_names()
    }


def a_history() -> History:
    history = History()
    trainer = history.trainer("female", region="tarija")
    history.certify(trainer)
    for region in ("la_paz", "tarija", "santa_cruz"):
        enterprise = history.enterprise(region=region, women=30, men=20)
        enrolment = history.enrol(enterprise, delivery="partner")
        history.train(enterprise, enrolment, managers=(1, 2), workers=(3, 4))
        history.correct(enterprise, workforce=(40, 25), chamber="CAINCO")
        history.pay(enterprise, enrolment, amount="250.50")
        visit = history.schedule_visit(enterprise, trainer)
        history.complete_visit(visit, enterprise, trainer, improvements=2)
    return history


async def test_the_tables_beside_have_the_projection_s_columns(projection_db: Database) -> None:
    async with projection_db.engine.connect() as conn:
        columns = await conn.run_sync(_columns)
    for table in metadata.sorted_tables:
        beside = NEXT[table.name]
        assert columns[beside.name] == columns[table.name], table.name
        assert [c.name for c in beside.columns] == [c.name for c in table.columns]


async def test_switching_in_what_was_built_beside_counts_what_the_projection_does(
    projection_db: Database,
) -> None:
    history = a_history()
    national = Scope()
    await history.project_into(projection_db, project)
    async with projection_db.transaction(write=False) as conn:
        expected = await compute(conn, national)
    assert expected["enterprises_trained"] == 3  # the history counts for something

    # The served projection wrong (half of it lost), the whole history built beside it.
    async with projection_db.transaction() as conn:
        for table in metadata.sorted_tables:
            await conn.execute(table.delete())
    half = History()
    half.events = history.events[: len(history.events) // 2]
    await half.project_into(projection_db, project)
    assert isinstance(BUILT_BESIDE.handler, BatchHandler)
    async with projection_db.transaction() as conn:
        await BUILT_BESIDE.handler.apply(conn, history.envelopes())
        assert await compute(conn, national) != expected  # the served one is untouched

    async with projection_db.transaction() as conn:
        await BUILT_BESIDE.switch(conn)
        await BUILT_BESIDE.clear(conn)
    async with projection_db.transaction(write=False) as conn:
        assert await compute(conn, national) == expected
        for table in NEXT.values():
            left = await conn.execute(sa.select(sa.func.count()).select_from(table))
            assert left.scalar_one() == 0, table.name
