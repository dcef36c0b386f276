"""Milestones on a real stream: each (milestone, scope, threshold) announced exactly once, ever,
whatever the events do — duplicates, restarts, a full rebuild — and read back as a consumer
of SCORE_INDICATORS would, with plain nats-py."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from score_chassis.database import Database
from score_chassis.tables import outbox
from score_contracts.envelope import Envelope, parse_envelope
from score_contracts.events import (
    EnterpriseEnrolled,
    EnterpriseRegistered,
    Event,
    MilestoneReached,
    ParticipantsTrained,
    TrainerRegistered,
)
from score_contracts.examples import example, example_envelope
from score_contracts.reference import REGIONS
from score_contracts.subjects import STREAMS
from score_indicators.indicators import Scope, Value
from score_indicators.main import build_app
from score_indicators.milestones import MilestoneWatch, Reached, crossings
from score_indicators.programme import Milestone, Programme
from score_indicators.settings import IndicatorsSettings
from score_testing.service import TEST_SECRET, bearer, serving
from score_testing.streams import publish_envelopes, wait_for

pytestmark = pytest.mark.nats

ADMIN = bearer("admin")
DAY = dt.date(2018, 4, 10)


def trained(n: int, region: str = "santa_cruz") -> list[tuple[Event, int]]:
    """An enterprise of `region` registered, enrolled and trained: three events."""
    enterprise, enrolment = f"ent-{region}-{n:04}", f"enr-{region}-{n:04}"
    registered = example(EnterpriseRegistered).model_copy(
        update={"enterprise_id": enterprise, "region": region}
    )
    enrolled = example(EnterpriseEnrolled).model_copy(
        update={"enterprise_id": enterprise, "enrolment_id": enrolment}
    )
    training = example(ParticipantsTrained).model_copy(
        update={"enterprise_id": enterprise, "enrolment_id": enrolment, "trained_on": DAY}
    )
    return [(registered, 1), (enrolled, 2), (training, 3)]


def trainer(n: int, sex: str) -> list[tuple[Event, int]]:
    registered = example(TrainerRegistered).model_copy(
        update={"trainer_id": f"tra-{n:04}", "sex": sex, "registered_on": DAY}
    )
    return [(registered, 1)]


def enveloped(events: list[tuple[Event, int]]) -> list[Envelope[Event]]:
    return [example_envelope(event, stream_version=version) for event, version in events]


async def publish(
    nats_url: str, events: list[tuple[Event, int]] | list[Envelope[Event]], *, again: bool = False
) -> None:
    """Publish events (or envelopes, to send the very same events once more: `again`)."""
    envelopes = [e if isinstance(e, Envelope) else enveloped([e])[0] for e in events]
    await publish_envelopes(nats_url, envelopes, again=again)


async def announced(nats_url: str) -> list[MilestoneReached]:
    """Every milestone_reached on SCORE_INDICATORS, in order."""
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        try:
            last = (await js.stream_info(STREAMS["indicators"].name)).state.last_seq
        except nats.js.errors.NotFoundError:
            return []
        found = []
        for sequence in range(1, last + 1):
            message = await js.get_msg(STREAMS["indicators"].name, sequence)
            event = parse_envelope(message.data).data
            assert isinstance(event, MilestoneReached)
            found.append(event)
        return found
    finally:
        await client.close()


def app_on(tmp_path: Path, nats_url: str) -> FastAPI:
    app = build_app(
        IndicatorsSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'indicators.db'}",
            nats_url=nats_url,
            auth_secret=TEST_SECRET,
            log_format="console",
            consumer_ack_wait_seconds=2,
        )
    )
    app.state.milestones.poll_seconds = 0.1
    return app


def kinds(events: list[MilestoneReached]) -> list[tuple[str, str, Decimal]]:
    return sorted((e.indicator, e.scope, e.threshold) for e in events)


async def settled(api: httpx.AsyncClient, trained: int) -> dict[str, Any] | None:
    answer = await api.get("/v1/indicators", headers=ADMIN)
    if answer.status_code != 200:
        return None
    values: dict[str, Any] = answer.json()["indicators"]
    return values if values["enterprises_trained"] == trained else None


async def seen(api: httpx.AsyncClient, count: int) -> list[dict[str, Any]] | None:
    listed: list[dict[str, Any]] = (await api.get("/v1/milestones", headers=ADMIN)).json()[
        "milestones"
    ]
    return listed if len(listed) >= count else None


async def test_each_threshold_is_announced_once_through_duplicates_restarts_and_a_rebuild(
    tmp_path: Path, nats_url: str
) -> None:
    history = enveloped([event for n in range(25) for event in trained(n)])
    await publish(nats_url, history)
    expected = [
        ("enterprises_trained", "national", Decimal(10)),
        ("enterprises_trained", "national", Decimal(20)),  # crossing twice: each once
        ("enterprises_trained", "santa_cruz", Decimal(1)),  # the region's first
    ]
    app = app_on(tmp_path, nats_url)
    async with serving(app) as api:
        await wait_for(lambda: settled(api, 25), within=30)
        listed = await wait_for(lambda: seen(api, 3), within=15)
        first = await wait_for(lambda: _announced_at_least(nats_url, 3), within=15)
        assert kinds(first) == expected
        assert sorted((m["scope"], m["threshold"]) for m in listed) == [
            ("national", "10"),  # a number as written, not "1E+1"
            ("national", "20"),
            ("santa_cruz", "1"),
        ]
        titles = {m["milestone"]: m["title"] for m in listed}
        assert (
            titles["region-first-trained-enterprise"] == "Primera empresa capacitada de la región"
        )

        await publish(nats_url, history[:30], again=True)  # the same events delivered twice
        replay = await api.post("/v1/ops/replay/projection", headers=ADMIN)  # a full rebuild
        assert replay.status_code == 202
        await wait_for(lambda: _built(api), within=30)
        await wait_for(lambda: settled(api, 25), within=30)
    app = app_on(tmp_path, nats_url)
    async with serving(app) as api:  # a restart
        await wait_for(lambda: settled(api, 25), within=30)
        await publish(nats_url, trained(25))  # and one more, crossing nothing
        await wait_for(lambda: settled(api, 26), within=30)
        await _a_look_after_everything(app)
    assert kinds(await announced(nats_url)) == expected
    # The ids are what (milestone, scope, threshold) make them: the same anywhere.
    ids = {
        Reached(milestone, "enterprises_trained", scope, Decimal(threshold), Decimal(0))
        for milestone, scope, threshold in (
            ("enterprises-trained-every-10", "national", 10),
            ("enterprises-trained-every-10", "national", 20),
            ("region-first-trained-enterprise", "santa_cruz", 1),
        )
    }
    assert {e.milestone_id for e in await announced(nats_url)} == {r.milestone_id for r in ids}


async def test_a_share_that_falls_back_and_rises_again_is_not_announced_again(
    tmp_path: Path, nats_url: str
) -> None:
    await publish(nats_url, [*trainer(1, "female"), *trainer(2, "female"), *trainer(3, "male")])
    app = app_on(tmp_path, nats_url)
    async with serving(app) as api:
        share = await wait_for(lambda: _share(api, 66.7), within=30)
        assert share == 66.7
        await wait_for(lambda: _announced_at_least(nats_url, 1), within=15)
        await publish(nats_url, [*trainer(4, "male"), *trainer(5, "male"), *trainer(6, "male")])
        await wait_for(lambda: _share(api, 33.3), within=30)  # fell below 40 %
        await publish(nats_url, [*trainer(7, "female"), *trainer(8, "female")])
        await wait_for(lambda: _share(api, 50.0), within=30)  # and rose past it again
        await _a_look_after_everything(app)
    women = [e for e in await announced(nats_url) if e.indicator == "women_share_trainers"]
    assert [(e.scope, e.threshold) for e in women] == [("national", Decimal(40))]


async def test_nothing_is_announced_below_every_threshold(tmp_path: Path, nats_url: str) -> None:
    registered_only = [trained(n, "la_paz")[0] for n in (1, 2)]
    await publish(nats_url, [*trained(0, "la_paz"), *registered_only])
    app = app_on(tmp_path, nats_url)
    async with serving(app) as api:
        values = await wait_for(lambda: settled(api, 1), within=30)  # 3 registered, 1 trained
        assert values["enterprises_registered"] == 3
        await _a_look_after_everything(app)
        listed = (await api.get("/v1/milestones", headers=ADMIN)).json()["milestones"]
        assert [(m["scope"], m["threshold"]) for m in listed] == [("la_paz", "1")]
        chamber = bearer("chamber", regions=["santa_cruz"])
        assert (await api.get("/v1/milestones", headers=chamber)).json()["milestones"] == []
    assert kinds(await announced(nats_url)) == [("enterprises_trained", "la_paz", Decimal(1))]


async def _announced_at_least(nats_url: str, count: int) -> list[MilestoneReached] | None:
    found = await announced(nats_url)
    return found if len(found) >= count else None


async def _built(api: httpx.AsyncClient) -> bool:
    progress = (await api.get("/v1/ops/replay/projection", headers=ADMIN)).json()
    return bool(progress["state"] == "built" and progress["done"])


async def _share(api: httpx.AsyncClient, share: float) -> float | None:
    answer = await api.get("/v1/indicators", headers=ADMIN)
    if answer.status_code != 200:
        return None
    value = answer.json()["indicators"]["women_share_trainers"]
    return value if value == share else None


async def _a_look_after_everything(app: FastAPI) -> None:
    """Have the watch look at what is there now, and the relay publish what it recorded."""
    watch: MilestoneWatch = app.state.milestones
    watch.forget_last_look()
    await watch.look()
    await wait_for(lambda: _outbox_empty(app.state.runtime.database), within=15)


async def _outbox_empty(database: Database) -> bool:
    async with database.transaction(write=False) as conn:
        left = (await conn.execute(sa.select(sa.func.count()).select_from(outbox))).scalar_one()
    return int(left) == 0


async def test_a_look_counts_each_scope_once_and_not_where_every_threshold_is_announced() -> None:
    """A look counts every scope a milestone may still cross in: once, however many
    milestones look at it (the regions together), and not at all where all its thresholds
    are announced."""
    programme = Programme(
        milestones=[
            Milestone(
                id="first",
                title="1",
                indicator="enterprises_trained",
                scope="regions",
                at=(Decimal(1),),
            ),
            Milestone(id="tens", title="10", indicator="enterprises_trained", every=Decimal(10)),
            Milestone(id="women", title="40", indicator="women_share_trainers", at=(Decimal(40),)),
        ]
    )
    counted: list[Scope | str] = []
    values: dict[str, Value] = {"enterprises_trained": 12, "women_share_trainers": 50.0}

    async def figures(_conn: Any, scope: Scope) -> dict[str, Value]:
        counted.append(scope)
        return values

    async def regional(_conn: Any, country: str) -> dict[str, dict[str, Value]]:
        counted.append(f"the regions of {country}")
        return dict.fromkeys(REGIONS[country], values)

    found = await crossings(None, programme, "bo", figures, regional=regional)  # type: ignore[arg-type]
    # The nation, and every region together.
    assert sorted(counted, key=str) == sorted([Scope(country="bo"), "the regions of bo"], key=str)
    assert len(found) == len(REGIONS["bo"]) + 1 + 1  # each region's first, 10, and 40 %
    counted.clear()
    announced = {reached.milestone_id for reached in found}
    again = await crossings(
        None,  # type: ignore[arg-type]
        programme,
        "bo",
        figures,
        regional=regional,
        announced=announced,
    )
    # Only "every 10" can still be crossed: the national scope alone is counted.
    assert counted == [Scope(country="bo", region=None)]
    assert {r.milestone_id for r in again} <= announced
