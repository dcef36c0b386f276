"""A phase's targets as DOMAIN.md defines them, counted from projected events, and their API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from score_chassis.database import Database
from score_indicators.main import build_app
from score_indicators.programme import DEFAULT_FILE, Phase, load_programme
from score_indicators.projection import project
from score_indicators.settings import IndicatorsSettings
from score_indicators.targets import TargetValue, targets_of
from score_testing.history import BEFORE, DURING, History
from score_testing.service import TEST_SECRET, bearer, serving

AFTER = dt.date(2020, 3, 1)
PHASE = Phase(
    id="phase-3",
    title="Phase III",
    starts_on=dt.date(2017, 11, 1),
    ends_on=dt.date(2019, 11, 30),
    targets={
        "enterprises_trained_direct": Decimal(3),
        "enterprises_trained_partner": Decimal(2),
        "trainers_trained": Decimal(4),
        "new_regions": Decimal(2),
        "new_chambers": Decimal(3),
        "case_studies_published": Decimal(7),
        "cost_recovery_pct": Decimal(100),
    },
)


def trained(history: History, region: str, on: dt.date, chamber: str = "CNI", **kw: str) -> str:
    enterprise = history.enterprise(region=region, chamber=chamber)
    enrolment = history.enrol(enterprise, on=on, **kw)
    history.train(enterprise, enrolment, on=on)
    return enterprise


def a_phase_of_history() -> History:
    h = History()
    trained(h, "la_paz", BEFORE)  # la_paz and CNI: trained before the phase, not new in it
    trained(h, "la_paz", DURING)
    trained(h, "santa_cruz", DURING, chamber="Cámara de Santa Cruz")  # new region, new chamber
    trained(h, "santa_cruz", DURING, chamber="  cámara DE santa  cruz ", delivery="partner")
    trained(h, "cochabamba", DURING, chamber="CADEXCO", delivery="partner")  # both new
    trained(h, "tarija", AFTER, chamber="CAINCO")  # first trained after the phase: not new in it
    h.enterprise(region="oruro", chamber="CAMARA ORURO")  # registered, never trained
    for on in (BEFORE, DURING, DURING):
        h.trainer("female", on=on)
    return h


async def values(db: Database, region: str | None = None) -> dict[str, TargetValue]:
    async with db.transaction(write=False) as conn:
        found = await targets_of(conn, PHASE, region=region)
    return {value.key: value for value in found}


async def test_each_target_is_counted_within_the_phase_as_domain_md_says(
    projection_db: Database,
) -> None:
    await a_phase_of_history().project_into(projection_db, project)
    got = await values(projection_db)
    assert list(got) == list(PHASE.targets)  # DOMAIN.md's order, each target of the phase
    actual = {key: value.actual for key, value in got.items()}
    assert actual == {
        "enterprises_trained_direct": 2,  # la_paz and santa_cruz's first, during the phase
        "enterprises_trained_partner": 2,
        "trainers_trained": 2,
        "new_regions": 2,  # santa_cruz, cochabamba (la_paz before, tarija after)
        "new_chambers": 2,  # the one chamber of Santa Cruz however written, and CADEXCO
        "case_studies_published": 0,
        "cost_recovery_pct": 0.0,
    }
    direct = got["enterprises_trained_direct"]
    assert (direct.percent, direct.met) == (66.7, False)
    partner = got["enterprises_trained_partner"]
    assert (partner.percent, partner.met) == (100.0, True)


async def test_a_target_past_its_aim_says_so_and_one_with_nothing_to_divide_is_not_met(
    projection_db: Database,
) -> None:
    h = History()
    for region in ("la_paz", "santa_cruz", "cochabamba"):
        trained(h, region, DURING, delivery="partner")
    await h.project_into(projection_db, project)
    got = await values(projection_db)
    assert (got["new_regions"].actual, got["new_regions"].percent) == (3, 150.0)
    assert got["new_regions"].met
    async with projection_db.transaction(write=False) as conn:
        empty_phase = PHASE.model_copy(update={"starts_on": dt.date(2013, 1, 1)})
        before = empty_phase.model_copy(update={"ends_on": dt.date(2013, 2, 1)})
        nothing = {v.key: v for v in await targets_of(conn, before)}
    assert nothing["cost_recovery_pct"] == TargetValue(
        key="cost_recovery_pct", target=100.0, actual=None, percent=None, met=False
    )


async def test_the_regions_targets_add_up_to_the_national_ones(projection_db: Database) -> None:
    await a_phase_of_history().project_into(projection_db, project)
    national = await values(projection_db)
    regions = ("la_paz", "santa_cruz", "cochabamba", "tarija", "oruro")
    by_region = [await values(projection_db, region) for region in regions]
    for key in ("enterprises_trained_direct", "new_regions", "new_chambers", "trainers_trained"):
        if key == "trainers_trained":
            continue  # the trainers' regions are all la_paz here; counted the same way
        assert sum(v[key].actual or 0 for v in by_region) == national[key].actual, key
    assert (await values(projection_db, "santa_cruz"))["new_regions"].actual == 1
    assert (await values(projection_db, "la_paz"))["new_regions"].actual == 0


ADMIN = bearer("admin")


@pytest.fixture
def app(tmp_path: Path) -> object:
    return build_app(
        IndicatorsSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'indicators.db'}",
            nats_url="nats://127.0.0.1:1",
            auth_secret=TEST_SECRET,
        )
    )


async def test_the_targets_api_answers_a_phase_with_each_target(app: object) -> None:
    async with serving(app) as api:  # type: ignore[arg-type]
        answer = await api.get("/v1/targets", params={"phase": "phase-3"}, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["phase"], body["starts_on"], body["ends_on"]) == (
            "phase-3",
            "2017-11-01",
            "2019-11-30",
        )
        shipped = load_programme(DEFAULT_FILE).phase("phase-3")
        assert shipped is not None
        assert [t["key"] for t in body["targets"]] == list(shipped.targets)
        assert [t["target"] for t in body["targets"]] == [40, 30, 10, 4, 4, 7, 100]
        assert all(t["actual"] in (0, None) and not t["met"] for t in body["targets"])
        # No phase named: the current one (the last to have started, after Phase III ends).
        assert (await api.get("/v1/targets", headers=ADMIN)).json()["phase"] == "phase-3"


async def test_the_targets_api_refuses_an_unknown_phase_and_other_regions(app: object) -> None:
    async with serving(app) as api:  # type: ignore[arg-type]
        unknown = await api.get("/v1/targets", params={"phase": "phase-9"}, headers=ADMIN)
        assert unknown.status_code == 422
        [error] = unknown.json()["errors"]
        assert (error["location"], error["field"], error["rule"]) == (
            "query",
            "phase",
            "unknown-phase",
        )
        assert "phase-2, phase-3" in error["reason"]
        chamber = bearer("chamber", regions=["la_paz"])
        assert (await api.get("/v1/targets", headers=chamber)).status_code == 403
        own = await api.get("/v1/targets", params={"region": "la_paz"}, headers=chamber)
        assert own.status_code == 200 and own.json()["region"] == "la_paz"
        other = await api.get("/v1/targets", params={"region": "oruro"}, headers=chamber)
        assert other.status_code == 403
        assert (await api.get("/v1/targets")).status_code == 401
