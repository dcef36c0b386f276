"""A read of a view and its "is it being rebuilt?" check see one moment, on both databases:
a rebuild that clears the view between the two is seen by neither, never as a part-built view.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from score_chassis import view as views
from score_chassis.database import Database
from score_chassis.errors import Rebuilding
from score_chassis.view import Kept, View, mark, moved, reading

FACTS = sa.Table("reading_facts", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
VIEW = View("projection", "the projection")


async def test_a_rebuild_committed_between_the_check_and_the_reads_is_not_seen_in_part(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with database.engine.begin() as conn:
        await conn.run_sync(FACTS.metadata.create_all)
        await conn.execute(FACTS.insert(), [{"id": i} for i in range(100)])
    checked, cleared = asyncio.Event(), asyncio.Event()
    check = views.under_way

    async def check_then_wait(conn: Any, view: View) -> Any:
        found = await check(conn, view)
        checked.set()
        await cleared.wait()  # the rebuild commits its clear here
        return found

    monkeypatch.setattr(views, "under_way", check_then_wait)

    async def read() -> int | str:
        try:
            async with reading(database, VIEW) as conn:
                counted = await conn.execute(sa.select(sa.func.count()).select_from(FACTS))
                return int(counted.scalar_one())
        except Rebuilding:
            return "rebuilding"

    async def rebuild() -> None:
        await checked.wait()
        async with database.transaction() as conn:  # as a rebuild does: clear and mark at once
            await conn.execute(FACTS.delete())
            await mark(conn, VIEW, {"c": 100}, restarted=False, started_at=dt.datetime.now(dt.UTC))
        cleared.set()

    served, _ = await asyncio.gather(read(), rebuild())
    assert served in (100, "rebuilding")


async def test_a_kept_answer_stands_until_the_view_moves(database: Database) -> None:
    async with database.engine.begin() as conn:
        await conn.run_sync(FACTS.metadata.create_all)
        await conn.execute(FACTS.insert(), [{"id": i} for i in range(3)])
    kept: Kept[str, int] = Kept(VIEW)
    computed: list[str] = []

    async def count(key: str) -> int:
        async with reading(database, VIEW) as conn:

            async def counting() -> int:
                computed.append(key)
                found = await conn.execute(sa.select(sa.func.count()).select_from(FACTS))
                return int(found.scalar_one())

            return await kept.get(conn, key, counting)

    assert [await count("all"), await count("all")] == [3, 3]
    assert computed == ["all"]
    async with database.transaction() as conn:  # as a consumer's batch does
        await conn.execute(FACTS.insert(), [{"id": 3}])
        await moved(conn, VIEW, ["c"])
    assert [await count("all"), await count("all"), await count("other")] == [4, 4, 4]
    assert computed == ["all", "all", "other"]
    async with database.transaction() as conn:  # another consumer of the view
        await conn.execute(FACTS.delete().where(FACTS.c.id == 0))
        await moved(conn, VIEW, ["d"])
    assert await count("all") == 3


async def test_kept_answers_are_bounded() -> None:
    kept: Kept[int, int] = Kept(VIEW, size=2)

    class NoVersion:
        async def execute(self, *_: object) -> list[tuple[str, int]]:
            return []

    computed: list[int] = []

    async def compute(key: int) -> int:
        computed.append(key)
        return key

    conn: Any = NoVersion()
    for key in (1, 2, 1, 3, 1, 2):
        await kept.get(conn, key, lambda key=key: compute(key))  # type: ignore[misc]
    # 1 is used again before 3 comes, so 2 goes: the least recently used.
    assert computed == [1, 2, 3, 2]


async def test_readers_asking_at_once_share_one_computation_and_a_failed_one_is_not_shared(
    database: Database,
) -> None:
    async with database.engine.begin() as conn:
        await conn.run_sync(FACTS.metadata.create_all)
        await conn.execute(FACTS.insert(), [{"id": i} for i in range(5)])
    kept: Kept[str, int] = Kept(VIEW)
    computed = 0
    release = asyncio.Event()

    async def count() -> int:
        async with reading(database, VIEW) as conn:

            async def counting() -> int:
                nonlocal computed
                computed += 1
                this = computed
                await release.wait()
                if this == 1:
                    raise RuntimeError("the database went away")
                found = await conn.execute(sa.select(sa.func.count()).select_from(FACTS))
                return int(found.scalar_one())

            return await kept.get(conn, "all", counting)

    # The first computation fails: the one waiting for it computes for itself.
    first = asyncio.create_task(count())
    await asyncio.sleep(0.1)  # at its computation, waiting for `release`
    second = asyncio.create_task(count())
    await asyncio.sleep(0.2)
    assert computed == 1
    release.set()
    with pytest.raises(RuntimeError):
        await first
    assert await second == 5
    assert computed == 2
    # Then many at once, after the view moved: one computation for them all.
    release.clear()
    async with database.transaction() as conn:
        await conn.execute(FACTS.insert(), [{"id": 5}])
        await moved(conn, VIEW, ["c"])
    readers = [asyncio.create_task(count()) for _ in range(10)]
    await asyncio.sleep(0.2)
    release.set()
    assert await asyncio.gather(*readers) == [6] * 10
    assert computed == 3
