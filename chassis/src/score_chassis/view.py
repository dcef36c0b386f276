"""A view a service builds from streams, and whether it is being rebuilt right now.

A rebuild clears the view and has its consumers read their streams again from the first event.
Until they have caught up with what the streams held when it started, the view holds part of
the history only: counting from it would give smaller numbers than the truth, and deciding from
it could miss a fact that refuses (a withdrawal). So each consumer of the view has a row in
`rebuilds`, written in the transaction that clears the view and deleted, all of the view's
together, once every one has caught up (`rebuild.Rebuilds` watches them). A consumer that finds
at its start that it is reading its stream from the beginning into an empty view — a fresh or
restored database — writes its row too.

The rows live in the service's database, so every replica and a process restarted half-way see
the same thing; a reader checks them in its own transaction, and so sees either the whole view
or the rows, never a half-built view without them.

A view that can be built beside the one served (`Beside`) is rebuilt without clearing it: its
rows then say `beside`, reads go on answering from the served view, and its content is replaced
in one transaction once the tables beside it have caught up (`rebuild.py`).

Every transaction that changes a view also moves its consumer's number in `view_versions`
(`moved`). A read that finds the same numbers as an earlier one reads the same view, so what it
computed then is still exact: `Kept` keeps such answers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis import upsert
from score_chassis.database import Database
from score_chassis.errors import Rebuilding
from score_chassis.tables import rebuilds, view_versions


@dataclass(frozen=True, slots=True)
class View:
    """Tables a service builds from other services' streams, which can be dropped and rebuilt.

    Every subscription that names the same view feeds it, and they are rebuilt together.
    """

    name: str
    """As in the path of its replay endpoint, `/v1/ops/replay/<name>`."""
    title: str
    """What it is, for messages: "the indicators' projection"."""
    served: bool = True
    """The service's reads answer from it: while it is rebuilt they answer 503 and `/readyz`
    is not ready. False for a view that only feeds decisions, which refuse as not known yet
    meanwhile (the service's other reads go on)."""


@dataclass(frozen=True, slots=True)
class UnderWay:
    """A rebuild under way, as its rows tell."""

    view: View
    processed: int
    """Events its consumers have applied again, by stream sequence, up to `total`."""
    total: int
    """The last sequences of the streams when it started, added up."""
    started_at: dt.datetime
    beside: bool = False
    """Built beside the served view, which goes on answering meanwhile."""

    @property
    def detail(self) -> str:
        where = "beside the one served" if self.beside else "from its streams"
        done = f"{self.processed} of {self.total} events"
        return f"{self.view.title} is being rebuilt {where}: {done}"


async def under_way(conn: AsyncConnection, view: View, *, beside: bool = False) -> UnderWay | None:
    """The rebuild of `view` under way, if any (here, in another replica, or before a restart):
    one that cleared it, or with `beside`, one building it beside the served view."""
    row = (
        await conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(rebuilds.c.processed), 0),
                sa.func.coalesce(sa.func.sum(rebuilds.c.until_sequence), 0),
                sa.func.min(rebuilds.c.started_at),
            ).where(rebuilds.c.view == view.name, rebuilds.c.beside == beside)
        )
    ).one()
    count, processed, total, started_at = row
    if not count:
        return None
    return UnderWay(
        view=view,
        processed=int(processed),
        total=int(total),
        started_at=aware(started_at),
        beside=beside,
    )


async def any_under_way(conn: AsyncConnection, view: View) -> UnderWay | None:
    """The rebuild of `view` under way, of either kind."""
    return await under_way(conn, view) or await under_way(conn, view, beside=True)


@asynccontextmanager
async def reading(database: Database, view: View) -> AsyncIterator[AsyncConnection]:
    """A read transaction on `view`; raises `Rebuilding` (a 503) while it is being rebuilt.

    The check is made in the same transaction as the reads, on one snapshot, so that the reads
    see the whole view: a rebuild that clears it meanwhile is not seen by either.
    """
    async with database.transaction(write=False, snapshot=True) as conn:
        rebuild = await under_way(conn, view)
        if rebuild is not None:
            raise Rebuilding(rebuild.detail)
        yield conn


async def mark(
    conn: AsyncConnection,
    view: View,
    until: Mapping[str, int],
    *,
    restarted: bool,
    started_at: dt.datetime,
    beside: bool = False,
) -> None:
    """Record that the consumers in `until` (by durable name, with the last sequence of their
    streams now) read their streams again into `view`.

    `restarted` says whether their durable JetStream consumers already read from the first
    event; `beside`, that they are the consumers building the view beside the served one. A
    consumer already marked keeps its row, and becomes `restarted` if this says so.
    """
    if not until:
        return
    insert = upsert.insert(conn, rebuilds).values(
        [
            {
                "consumer": consumer,
                "view": view.name,
                "until_sequence": sequence,
                "processed": 0,
                "restarted": restarted,
                "started_at": started_at,
                "beside": beside,
            }
            for consumer, sequence in until.items()
        ]
    )
    if restarted:
        statement = insert.on_conflict_do_update(
            index_elements=[rebuilds.c.consumer], set_={"restarted": True}
        )
    else:
        statement = insert.on_conflict_do_nothing()
    await conn.execute(statement)


async def moved(conn: AsyncConnection, view: View, consumers: Iterable[str]) -> None:
    """Record, in the transaction that changes `view`, that these consumers changed it."""
    rows = [{"consumer": name, "view": view.name, "version": 1} for name in consumers]
    if rows:
        await conn.execute(_moving(conn.dialect.name), rows)


@functools.cache
def _moving(dialect: str) -> sa.Insert:
    insert = upsert.insert_on(dialect, view_versions)
    return insert.on_conflict_do_update(
        index_elements=[view_versions.c.consumer],
        set_={"version": view_versions.c.version + 1},
    )


Version = tuple[tuple[str, int], ...]
"""A view's version: each consumer's number (see `moved`)."""


async def version_of(conn: AsyncConnection, view: View) -> Version:
    rows = await conn.execute(
        sa.select(view_versions.c.consumer, view_versions.c.version)
        .where(view_versions.c.view == view.name)
        .order_by(view_versions.c.consumer)
    )
    return tuple((str(consumer), int(version)) for consumer, version in rows)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Kept(Generic[K, V]):
    """Answers computed from a view, each kept with the version of the view it was computed
    from: asked again while the view is the same, the answer is the one kept, and exact.

    Only reads whose answer depends on the view alone (not on the time, say) can be kept.
    The answers are shared: callers must not change them. Callers asking for one key at one
    version while it is being computed wait for that computation rather than make their own:
    after each move of the view, every reader of the dashboard asks at once.
    """

    def __init__(self, view: View, *, size: int = 256) -> None:
        self.view = view
        self.size = size
        self._kept: OrderedDict[K, tuple[Version, V]] = OrderedDict()
        self._computing: dict[K, tuple[Version, asyncio.Future[V]]] = {}

    async def get(self, conn: AsyncConnection, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        """The answer for `key`, computed by `compute` in `conn`'s transaction unless it is
        kept for the version `conn` sees. Call it in a snapshot transaction (`reading`), so
        that the version and what `compute` reads are of one moment."""
        version = await version_of(conn, self.view)
        kept = self._kept.get(key)
        if kept is not None and kept[0] == version:
            self._kept.move_to_end(key)
            return kept[1]
        computing = self._computing.get(key)
        if computing is not None and computing[0] == version:
            await asyncio.wait([computing[1]])  # its failure is its caller's: then compute
            if not computing[1].cancelled() and computing[1].exception() is None:
                return computing[1].result()
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._computing[key] = (version, future)
        try:
            answer = await compute()
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(answer)
        finally:
            if self._computing.get(key, (None, None))[1] is future:
                del self._computing[key]
        self._kept[key] = (version, answer)
        self._kept.move_to_end(key)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)
        return answer


def aware(moment: dt.datetime) -> dt.datetime:
    """A time read back from the database, in UTC (SQLite forgets the zone)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
