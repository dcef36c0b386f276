"""Counting what a system holds after a fault, by id, in each place it should be: a store's
events table, a JetStream stream, the indicators' figures, a chamber's inbox.

The reliability scenarios end by reconciling these with what the load was told (its 2xx
answers): lost is what was acknowledged but is missing somewhere, double-counted is what
is somewhere more than once. `record` keeps each run's figures, as a JSON line under
`.cache/reliability/` (or `SCORE_RELIABILITY_DIR`) and on stdout, so that `make soak` shows
them and RELIABILITY.md can quote them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import sqlalchemy as sa
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from sqlalchemy.ext.asyncio import create_async_engine

from score_chassis.tables import events, inbox
from score_testing.load import LoadResult

INDICATORS_OF_ENROLMENT = "indicators-projection-enrolment"
"""The indicators' durable consumer of the enrolment stream, and its inbox's name."""
FIGURES_DIR = Path(os.environ.get("SCORE_RELIABILITY_DIR", ".cache/reliability"))


@dataclass(frozen=True)
class StoredEvent:
    event_id: str
    stream_id: str
    version: int
    type: str


async def stored_events(database_url: str) -> list[StoredEvent]:
    """Every event of a service's store, in position order."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(
                    events.c.event_id, events.c.stream_id, events.c.version, events.c.type
                ).order_by(events.c.position)
            )
            return [StoredEvent(*row) for row in rows]
    finally:
        await engine.dispose()


async def inbox_ids(database_url: str, consumer: str) -> Counter[str]:
    """The event ids a consumer recorded as handled, in its service's database."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(inbox.c.event_id).where(inbox.c.consumer == consumer)
            )
            return Counter(rows.scalars())
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class StreamMessage:
    sequence: int
    subject: str
    headers: dict[str, str]
    data: bytes

    @property
    def message_id(self) -> str:
        return self.headers.get("Nats-Msg-Id", "")

    def cloud_event(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.data)
        return loaded


async def stream_contents(
    url: str, stream: str, *, headers_only: bool = True, chunk: int = 500
) -> list[StreamMessage]:
    """Every message of `stream`, in stream order, read by an ephemeral consumer that wants
    no acks (headers only unless asked: counting ids needs no bodies)."""
    client = await nats.connect(url, max_reconnect_attempts=5)
    try:
        js = client.jetstream()
        try:
            await js.stream_info(stream)
        except NotFoundError:
            return []
        name = f"reconcile-{uuid.uuid4().hex}"
        info = await js.add_consumer(
            stream,
            ConsumerConfig(
                name=name,
                ack_policy=AckPolicy.NONE,
                deliver_policy=DeliverPolicy.ALL,
                headers_only=headers_only,
                inactive_threshold=60.0,
                mem_storage=True,
            ),
        )
        pending = info.num_pending or 0
        out: list[StreamMessage] = []
        if not pending:
            return out
        reader = await js.pull_subscribe_bind(consumer=name, stream=stream)
        while len(out) < pending:
            try:
                batch = await reader.fetch(min(chunk, pending - len(out)), timeout=10)
            except NatsTimeoutError:
                break
            for msg in batch:
                out.append(
                    StreamMessage(
                        msg.metadata.sequence.stream, msg.subject, dict(msg.headers or {}), msg.data
                    )
                )
        await reader.unsubscribe()
        return out
    finally:
        await client.close()


async def stream_ids(url: str, stream: str) -> Counter[str]:
    """How many times each `Nats-Msg-Id` is on `stream`."""
    return Counter(message.message_id for message in await stream_contents(url, stream))


async def indicators(url: str, headers: dict[str, str]) -> dict[str, Any] | None:
    """The national indicators, or None while the projection is being rebuilt (503)."""
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30, trust_env=False) as c:
        try:
            response = await c.get("/v1/indicators")
        except httpx.TransportError:
            return None
        if response.status_code != 200:
            return None
        figures: dict[str, Any] = response.json()["indicators"]
        return figures


async def indicators_become(
    url: str, headers: dict[str, str], expected: dict[str, int], *, within: float
) -> dict[str, Any]:
    """Poll the indicators until each key of `expected` has its value; the last figures
    either way (the caller's assertion then says which differ)."""
    last: dict[str, Any] = {}
    deadline = asyncio.get_running_loop().time() + within
    while True:
        figures = await indicators(url, headers)
        if figures is not None:
            last = figures
            if all(figures.get(key) == value for key, value in expected.items()):
                return figures
        if asyncio.get_running_loop().time() > deadline:
            return last
        await asyncio.sleep(0.25)


@dataclass
class Reconciliation:
    """What was acknowledged against what one place holds, by id."""

    acknowledged: int
    held: int
    lost: int
    double_counted: int


def reconcile(acknowledged: set[str], held: Counter[str]) -> Reconciliation:
    """Lost: acknowledged ids missing from `held`; double-counted: ids held more than once,
    or held though never acknowledged."""
    lost = len(acknowledged - held.keys())
    double = sum(n - 1 for n in held.values() if n > 1) + len(held.keys() - acknowledged)
    return Reconciliation(len(acknowledged), sum(held.values()), lost, double)


def indicator_differences(expected: dict[str, int], figures: dict[str, Any]) -> dict[str, int]:
    """Per indicator, what it counts less what it should (0 everywhere when exact)."""
    return {key: int(figures.get(key) or 0) - value for key, value in expected.items()}


@dataclass
class Figures:
    """One run of a scenario, as RELIABILITY.md quotes it."""

    scenario: str
    variant: str
    commands: int = 0
    events: int = 0
    kills: int = 0
    duplicates: int = 0
    lost: int = 0
    double_counted: int = 0
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


def record(figures: Figures) -> None:
    """Print the figures and append them to `.cache/reliability/figures.jsonl`."""
    line = json.dumps(
        {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **asdict(figures)},
        ensure_ascii=False,
    )
    print(f"\nreliability figures: {line}")
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    with (FIGURES_DIR / "figures.jsonl").open("a", encoding="utf-8") as file:
        file.write(line + "\n")


@dataclass
class EnrolmentReconciliation:
    """The enrolment load's acknowledged commands against the store, the stream and the
    indicators."""

    store: Reconciliation
    stream: Reconciliation
    indicators: dict[str, int]
    """Per indicator, counted less expected."""
    figures: dict[str, Any]
    handled: Reconciliation | None = None
    """The indicators' consumer's inbox: the events it handled, by id (where its database
    was given)."""

    @property
    def _places(self) -> list[Reconciliation]:
        return [self.store, self.stream] + ([self.handled] if self.handled else [])

    @property
    def lost(self) -> int:
        short = sum(-d for d in self.indicators.values() if d < 0)
        return sum(place.lost for place in self._places) + short

    @property
    def double_counted(self) -> int:
        over = sum(d for d in self.indicators.values() if d > 0)
        return sum(place.double_counted for place in self._places) + over

    def as_details(self) -> dict[str, Any]:
        return {
            "store": asdict(self.store),
            "stream": asdict(self.stream),
            **({"handled": asdict(self.handled)} if self.handled else {}),
            "indicators_off_by": {k: v for k, v in self.indicators.items() if v},
        }


async def reconcile_enrolment(
    result: LoadResult,
    *,
    database_url: str,
    nats_url: str,
    indicators_url: str,
    headers: dict[str, str],
    indicators_database_url: str | None = None,
    within: float = 120.0,
) -> EnrolmentReconciliation:
    """Wait (bounded) for the stream and the indicators to catch up with the store, then
    count each by id against what the load was answered 2xx.

    A store event is the acknowledged command's by its aggregate and version (what the 2xx
    answered); the stream holds it by event id (its `Nats-Msg-Id`), and so does the
    indicators' inbox, if `indicators_database_url` is given.
    """
    stored = await stored_events(database_url)
    acknowledged = {(f"enterprise/{a.enterprise_id}", a.version) for a in result.acknowledged}
    by_place = Counter((event.stream_id, event.version) for event in stored)
    store = reconcile({f"{s}@{v}" for s, v in acknowledged}, _keyed(by_place))
    acknowledged_ids = {e.event_id for e in stored if (e.stream_id, e.version) in acknowledged}

    deadline = asyncio.get_running_loop().time() + within
    while True:
        held = await stream_ids(nats_url, "SCORE_ENROLMENT")
        if sum(held.values()) >= len(stored) or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.5)
    stream = reconcile(acknowledged_ids, held)

    expected = result.expected_indicators()
    remaining = max(1.0, deadline - asyncio.get_running_loop().time())
    figures = await indicators_become(indicators_url, headers, expected, within=remaining)
    handled = None
    if indicators_database_url is not None:
        handled_ids = await inbox_ids(indicators_database_url, INDICATORS_OF_ENROLMENT)
        handled = reconcile(acknowledged_ids, handled_ids)
    return EnrolmentReconciliation(
        store, stream, indicator_differences(expected, figures), figures, handled
    )


def _keyed(by_place: Counter[tuple[str, int]]) -> Counter[str]:
    return Counter({f"{stream}@{version}": n for (stream, version), n in by_place.items()})
