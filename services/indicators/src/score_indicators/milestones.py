"""Milestones: an indicator crossing a configured threshold in a scope, announced once, ever.

A watch in the indicators service looks at the projection whenever its version moves (at most
every `poll_seconds`), works out every threshold the figures have reached, and for each one
not yet recorded writes, in one transaction, a row in `ind_milestones` and a
`milestone_reached` event in the service's event store, whose outbox the relay publishes on
`SCORE_INDICATORS`.

Once, ever, whatever happens to the events:

- a milestone's id is derived from (milestone, scope, threshold, phase), its row's primary key
  and its event's stream (`milestone/<id>`, version 1) are unique: a second writer (another
  replica, a retry) finds them taken and announces nothing;
- the rows are not the projection's: a rebuild does not clear them. It builds the new
  projection beside the served one, which the watch goes on looking at; and while a fresh
  database catches up the watch looks at nothing (a part-built projection's figures are not
  the programme's). So a rebuild announces nothing again;
- duplicates and redeliveries never reach the projection twice (the consumers' inbox), and
  the figures do not depend on the order events arrive in;
- a figure that falls back and rises again finds its row there: no second announcement.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Set
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis import store, upsert
from score_chassis.database import Database
from score_chassis.logs import get_logger
from score_chassis.view import under_way, version_of
from score_contracts.events import MilestoneReached
from score_contracts.reference import NATIONAL, REGIONS
from score_contracts.subjects import subject_for
from score_indicators.indicators import Scope, Value, compute, compute_regions
from score_indicators.programme import Milestone, Phase, Programme
from score_indicators.projection import PROJECTION
from score_indicators.targets import targets_of

log = get_logger(__name__)

metadata = sa.MetaData()

reached = sa.Table(
    "ind_milestones",
    metadata,
    sa.Column("milestone_id", sa.String(36), primary_key=True),
    sa.Column("milestone", sa.String(100), nullable=False),
    sa.Column("indicator", sa.String(100), nullable=False),
    sa.Column("scope", sa.String(64), nullable=False),
    sa.Column("threshold", sa.Numeric(20, 4), nullable=False),
    sa.Column("value", sa.Numeric(20, 4), nullable=False),
    sa.Column("phase", sa.String(64), nullable=True),
    sa.Column("reached_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_ind_milestones_reached_at", "reached_at"),
)
"""The milestones reached, one row each, kept apart from the projection: never cleared."""

LOOK_SHARE = 4
"""The watch sleeps at least this many times as long as its last look took."""

_IDS = uuid.UUID("5c0e7f3a-91d2-4d6b-9a51-1f0b8c2e7d44")
"""The namespace of milestone ids (UUIDv5): the same milestone has the same id everywhere."""


@dataclass(frozen=True, slots=True)
class Reached:
    """A threshold a figure has reached, in a scope."""

    milestone: str
    indicator: str
    scope: str
    """`national` or a region's slug."""
    threshold: Decimal
    value: Decimal
    phase: str | None = None

    @property
    def milestone_id(self) -> str:
        return milestone_id(self.milestone, self.scope, self.threshold, self.phase)


def milestone_id(milestone: str, scope: str, threshold: Decimal, phase: str | None = None) -> str:
    """The id of a milestone's threshold in a scope (and a phase, for a target met)."""
    name = f"{milestone}/{scope}/{format(threshold.normalize(), 'f')}/{phase or ''}"
    return str(uuid.uuid5(_IDS, name))


Figures = Callable[[AsyncConnection, Scope], Awaitable[dict[str, Value]]]
RegionalFigures = Callable[[AsyncConnection, str], Awaitable[dict[str, dict[str, Value]]]]
"""The figures of each region of a country (`compute_regions`), by region slug."""


async def crossings(
    conn: AsyncConnection,
    programme: Programme,
    country: str,
    figures: Figures = compute,
    *,
    regional: RegionalFigures = compute_regions,
    announced: Set[str] = frozenset(),
) -> list[Reached]:
    """Every threshold of the programme's milestones that the projection's figures reach.

    Nothing is counted that could only find thresholds `announced` already (by milestone id):
    a phase whose every target was met, a region past a milestone's last threshold. Each scope
    is counted once, however many milestones look at it.
    """
    found: list[Reached] = []
    counted: dict[Scope, dict[str, Value]] = {}
    for milestone in programme.milestones:
        if milestone.targets is not None:
            for phase in programme.phases_of(milestone):
                if _all_met(milestone, phase, announced):
                    continue
                for target in await targets_of(conn, phase):
                    if target.met and target.actual is not None:
                        found.append(
                            Reached(
                                milestone=milestone.id,
                                indicator=target.key,
                                scope=NATIONAL,
                                threshold=Decimal(str(target.target)),
                                value=Decimal(str(target.actual)),
                                phase=phase.id,
                            )
                        )
            continue
        scopes = REGIONS[country] if milestone.scope == "regions" else (None,)
        for region in scopes:
            if _all_reached(milestone, region or NATIONAL, announced):
                continue
            scope = Scope(country=country, region=region)
            if scope not in counted:
                if region is None:
                    counted[scope] = await figures(conn, scope)
                else:  # every region at once: a statement per kind of fact, not per region
                    for each, values in (await regional(conn, country)).items():
                        counted[Scope(country=country, region=each)] = values
                # Each count runs on the event loop (SQLite's calls do, ADR 016): let requests
                # and the consumers in between counts, not only after them all.
                await asyncio.sleep(0)
            found.extend(_crossed(milestone, region, counted[scope]))
    return found


def _all_reached(milestone: Milestone, scope: str, announced: Set[str]) -> bool:
    """Whether every threshold of a milestone with a last one (`at`) is announced in `scope`."""
    return bool(milestone.at) and all(
        milestone_id(milestone.id, scope, threshold) in announced for threshold in milestone.at
    )


def _all_met(milestone: Milestone, phase: Phase, announced: Set[str]) -> bool:
    """Whether every target of `phase` is announced as met."""
    return all(
        milestone_id(milestone.id, NATIONAL, Decimal(str(target)), phase.id) in announced
        for target in phase.targets.values()
    )


def _crossed(
    milestone: Milestone, region: str | None, values: dict[str, Value]
) -> Iterable[Reached]:
    assert milestone.indicator is not None  # a milestone that is not of targets names one
    value = values[milestone.indicator]
    if value is None:
        return
    amount = Decimal(str(value))
    for threshold in milestone.crossed(amount):
        yield Reached(
            milestone=milestone.id,
            indicator=milestone.indicator,
            scope=region or NATIONAL,
            threshold=threshold,
            value=amount,
        )


async def record(
    conn: AsyncConnection, found: Iterable[Reached], *, country: str, source: str
) -> list[Reached]:
    """Record the milestones of `found` not recorded yet, each with its event; returns those
    that were new. Runs in the caller's write transaction."""
    now = dt.datetime.now(dt.UTC)
    new: list[Reached] = []
    insert = upsert.insert(conn, reached)
    for milestone in found:
        inserted = await conn.execute(
            insert.values(
                milestone_id=milestone.milestone_id,
                milestone=milestone.milestone,
                indicator=milestone.indicator,
                scope=milestone.scope,
                threshold=milestone.threshold,
                value=milestone.value,
                phase=milestone.phase,
                reached_at=now,
            )
            .on_conflict_do_nothing()
            .returning(reached.c.milestone_id)
        )
        stream = f"milestone/{milestone.milestone_id}"
        if inserted.first() is None or await store.stream_version(conn, stream):
            continue  # reached before: never again (its row, or its event, says so)
        event = MilestoneReached(
            milestone_id=milestone.milestone_id,
            indicator=milestone.indicator,
            scope=milestone.scope,
            threshold=milestone.threshold,
            value=milestone.value,
            reached_at=now,
            phase=milestone.phase,
        )
        region = None if milestone.scope == NATIONAL else milestone.scope
        await store.append(
            conn,
            stream,
            0,
            [store.NewEvent(event=event, subject=subject_for(event, country, region))],
            source=source,
            now=now,
        )
        new.append(milestone)
    return new


class MilestoneWatch:
    """Looks for milestones reached whenever the projection moves; runs in the background."""

    def __init__(
        self,
        database: Database,
        programme: Programme,
        *,
        country: str,
        source: str,
        figures: Figures = compute,
        on_recorded: Callable[[], None] = lambda: None,
        poll_seconds: float = 0.5,
    ) -> None:
        self.database = database
        self.programme = programme
        self.country = country
        self.source = source
        self.figures = figures
        self.on_recorded = on_recorded
        self.poll_seconds = poll_seconds
        self._looked_at: Any = None
        self._moved = asyncio.Event()

    def forget_last_look(self) -> None:
        """Look again at the next `look` even if the projection has not moved since."""
        self._looked_at = None

    def notify(self) -> None:
        """The projection has moved (a consumer of it committed): look soon, not at the next
        poll. The poll remains for moves made by another replica."""
        self._moved.set()

    async def run(self) -> None:
        while True:
            began = time.monotonic()
            self._moved.clear()  # a move during the look is looked at next
            try:
                await self.look()
            except Exception as error:  # the database, most likely: look again later
                log.warning("milestones.look_failed", error=type(error).__name__)
            # A look counts a dozen scopes over the whole projection: however long that takes
            # as the projection grows, it keeps to a fifth of the service's time.
            took = time.monotonic() - began
            await asyncio.sleep(LOOK_SHARE * took)
            # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, self.poll_seconds - LOOK_SHARE * took)):
                    await self._moved.wait()

    async def look(self) -> list[Reached]:
        """One look: the milestones newly reached (recorded and announced)."""
        if not self.programme.milestones:
            return []
        async with self.database.transaction(write=False, snapshot=True) as conn:
            if await under_way(conn, PROJECTION) is not None:
                return []  # a part-built projection's figures are not the programme's
            version = await version_of(conn, PROJECTION)
            if version == self._looked_at:
                return []
            known = set((await conn.execute(sa.select(reached.c.milestone_id))).scalars())
            found = await crossings(
                conn, self.programme, self.country, self.figures, announced=known
            )
        fresh = [m for m in found if m.milestone_id not in known]
        new: list[Reached] = []
        if fresh:
            async with self.database.transaction() as conn:
                new = await record(conn, fresh, country=self.country, source=self.source)
            for milestone in new:
                log.info(
                    "milestone.reached",
                    milestone=milestone.milestone,
                    scope=milestone.scope,
                    threshold=str(milestone.threshold),
                )
            if new:
                self.on_recorded()
        self._looked_at = version
        return new


async def listed(
    conn: AsyncConnection, *, scopes: Iterable[str] | None, limit: int
) -> list[sa.Row[Any]]:
    """The milestones reached, newest first, in `scopes` if given."""
    query = sa.select(reached).order_by(reached.c.reached_at.desc(), reached.c.milestone_id)
    if scopes is not None:
        query = query.where(reached.c.scope.in_(list(scopes)))
    return list((await conn.execute(query.limit(limit))).all())
