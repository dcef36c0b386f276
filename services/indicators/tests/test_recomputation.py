"""Every indicator and every target, recounted in plain Python from DOMAIN.md's definitions.

Generated programme histories are projected, in a random order and in batches of random sizes,
and what the indicators service counts in each scope (the country, each region, Phase III's
window, each region within it) is compared with a recount written from DOMAIN.md alone: loops
and sets over the events themselves, none of the projection's tables or helpers.

The rules the recount follows, from DOMAIN.md and where it is silent:
- an enterprise counts in its region, the one of its registration (the only event that
  names one), and in its country likewise; an enterprise the history never registers has no
  known country or region, so what happens to it counts in no scope (only its registration
  says it is Bolivian). A trainer likewise, by their own registration;
- within a window, each fact counts by its own business date; a training's channel is that of
  the enrolment it belongs to, whenever that enrolment was made (neither channel if the
  enrolment is unknown); a fee counts towards cost recovery only with its enrolment known, by
  that enrolment's module; the workforce and the chamber are the latest known, by the
  enterprise's stream version;
- percentages have one decimal, rounded half up;
- a chamber is counted in the region of its first trained enterprise (the earliest training,
  then the smallest enterprise id: DOMAIN.md does not say, `targets.py` does), so that the
  regions add up to the country.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis.database import Database
from score_contracts.envelope import Envelope
from score_contracts.events import (
    CaseStudyPublished,
    EnterpriseDetailsCorrected,
    EnterpriseEnrolled,
    EnterpriseRegistered,
    Event,
    Headcount,
    ModuleCompleted,
    ParticipantsTrained,
    TrainerCertified,
    TrainerRegistered,
    TrainingFeePaid,
    VisitCancelled,
    VisitCompleted,
    VisitScheduled,
)
from score_contracts.events.enrolment import EnterpriseEvent
from score_contracts.events.visits import VisitEvent
from score_indicators.indicators import INDICATORS, Scope, Value, compute
from score_indicators.programme import TARGETS, Phase
from score_indicators.projection import clear, project_all
from score_indicators.targets import TargetValue, targets_of
from score_testing.history import History

REGIONS = ("la_paz", "santa_cruz", "cochabamba", "tarija")
PHASE_III = (dt.date(2017, 11, 1), dt.date(2019, 11, 30))
CHAMBERS = (
    "CNI",
    "cni",
    "C N I",
    "Cámara de Santa Cruz",
    "CÁMARA DE  SANTA\tCRUZ",
    "CAINCO",
    "Cainco",
    "CADEXCO",
)
"""Four chambers, most written more than one way."""

# Business dates on both sides of each end of Phase III, and anywhere from 2015 to 2021.
DAYS = st.one_of(
    st.sampled_from(
        [dt.date(2017, 10, 31), dt.date(2017, 11, 1), dt.date(2019, 11, 30), dt.date(2019, 12, 1)]
    ),
    st.dates(dt.date(2015, 1, 1), dt.date(2021, 12, 31)),
)
_MONEY = st.integers(0, 400_000).map(lambda cents: f"{cents // 100}.{cents % 100:02d}")
# A fee of 1 or 3 over a cost of 16 is a share halfway between two tenths (6.25 %, 18.75 %):
# often enough, it is the only fee and cost of a scope.
COSTS = st.one_of(st.just("16"), st.sampled_from(["0", "1000", "1250.5"]), _MONEY)
FEES = st.one_of(st.just("1"), st.sampled_from(["3", "500", "1000"]), _MONEY)
PEOPLE = st.integers(0, 4)
WORKFORCE = st.tuples(st.integers(0, 200), st.integers(0, 200))


# --- histories -----------------------------------------------------------------------------


@st.composite
def histories(draw: st.DrawFn) -> History:
    """A programme's history: enterprises (some never registered) and what happened to them,
    visits, trainers (some never registered) and their certifications."""
    h = History()
    regions = draw(st.lists(st.sampled_from(REGIONS), min_size=2, max_size=4, unique=True))
    enterprises = []
    for _ in range(draw(st.integers(1, 6))):
        women, men = draw(WORKFORCE)
        region, chamber = draw(st.sampled_from(regions)), draw(st.sampled_from(CHAMBERS))
        enterprises.append(h.enterprise(region, women, men, on=draw(DAYS), chamber=chamber))
    unregistered = [h.next_id("ent") for _ in range(draw(st.integers(0, 2)))]
    # Enterprises are trained together, 4 or 5 in a two-day workshop: a few days in all.
    workshops = st.sampled_from(draw(st.lists(DAYS, min_size=1, max_size=4)))
    for enterprise in enterprises + unregistered:
        _lives_of(draw, h, enterprise, workshops)
    trainers = [
        h.trainer(
            draw(st.sampled_from(["female", "male"])),
            region=draw(st.sampled_from(regions)),
            on=draw(DAYS),
        )
        for _ in range(draw(st.integers(0, 5)))
    ]
    trainers += [h.next_id("tr") for _ in range(draw(st.integers(0, 1)))]
    for trainer in trainers:
        for _ in range(draw(st.integers(0, 2))):
            modules = draw(st.lists(st.integers(1, 5), min_size=1, max_size=3, unique=True))
            h.certify(trainer, tuple(modules), on=draw(DAYS))
    for _ in range(draw(st.integers(0, 5))):
        _visit(draw, h, draw(st.sampled_from(enterprises + unregistered)), trainers)
    return h


def _lives_of(
    draw: st.DrawFn, h: History, enterprise: str, workshops: st.SearchStrategy[dt.date]
) -> None:
    """What happens to one enterprise after its registration, in its stream's order."""
    enrolments: list[str] = []

    def an_enrolment() -> str:
        # Now and then a fact of an enrolment the projection never hears of.
        if not enrolments or draw(st.integers(0, 5)) == 0:
            return f"enr-unknown-{draw(st.integers(1, 3))}"
        return draw(st.sampled_from(enrolments))

    def enrol() -> None:
        enrolments.append(
            h.enrol(
                enterprise,
                module=draw(st.integers(1, 5)),
                delivery=draw(st.sampled_from(["direct", "partner"])),
                cost=draw(COSTS),
                on=draw(DAYS),
            )
        )

    for _ in range(draw(st.integers(0, 2))):  # most enterprises enrol first
        enrol()
    kinds = ["enrol", "train", "train", "pay", "complete", "correct", "case_study", "withdraw"]
    for kind in draw(st.lists(st.sampled_from(kinds), max_size=9)):
        match kind:
            case "enrol":
                enrol()
            case "train":
                h.train(
                    enterprise,
                    an_enrolment(),
                    managers=(draw(PEOPLE), draw(PEOPLE)),
                    workers=(draw(PEOPLE), draw(PEOPLE)),
                    module=draw(st.integers(1, 5)),
                    on=draw(workshops),
                )
            case "pay":
                payer = draw(st.sampled_from(["enterprise", "sponsor"]))
                h.pay(enterprise, an_enrolment(), draw(FEES), on=draw(DAYS), payer=payer)
            case "complete":
                h.complete(enterprise, an_enrolment(), draw(st.integers(1, 5)), on=draw(DAYS))
            case "correct":
                # A workforce, a chamber, both, or neither (another detail corrected).
                h.correct(
                    enterprise,
                    workforce=draw(st.none() | WORKFORCE),
                    chamber=draw(st.none() | st.sampled_from(CHAMBERS)),
                    sector=draw(st.none() | st.just("textiles")),
                )
            case "case_study":
                h.publish_case_study(enterprise, on=draw(DAYS))
            case "withdraw":
                h.withdraw(enterprise, on=draw(DAYS))


def _visit(draw: st.DrawFn, h: History, enterprise: str, trainers: list[str]) -> None:
    """A visit scheduled, then maybe completed (with its improvements) or cancelled."""
    trainer = draw(st.sampled_from(trainers)) if trainers else "tr-unregistered"
    module = draw(st.integers(1, 5))
    visit = h.schedule_visit(enterprise, trainer, module, on=draw(DAYS))
    match draw(st.sampled_from(["pending", "completed", "cancelled"])):
        case "completed":
            improvements = draw(st.integers(0, 3))
            h.complete_visit(visit, enterprise, trainer, module, improvements, on=draw(DAYS))
        case "cancelled":
            h.cancel_visit(visit, enterprise, on=draw(DAYS))


Item = TypeVar("Item")


def arriving(data: st.DataObject, items: Sequence[Item]) -> list[list[Item]]:
    """`items` in a random order, cut into batches of random sizes."""
    order = data.draw(st.permutations(range(len(items))), label="order (by index)")
    batches: list[list[Item]] = []
    while order:
        size = data.draw(st.integers(1, 8), label="batch size")
        batches.append([items[index] for index in order[:size]])
        order = order[size:]
    return batches


# --- the recount ---------------------------------------------------------------------------


@dataclass
class Known:
    """What the events say of each enterprise, enrolment and trainer, in whatever order they
    are read: the workforce and the chamber are the latest by the enterprise's version."""

    registrations: dict[str, EnterpriseRegistered] = field(default_factory=dict)
    enrolments: dict[str, EnterpriseEnrolled] = field(default_factory=dict)
    trainers: dict[str, TrainerRegistered] = field(default_factory=dict)
    workforce: dict[str, tuple[int, Headcount]] = field(default_factory=dict)
    chamber: dict[str, tuple[int, str]] = field(default_factory=dict)

    def learn(self, event: Event, version: int) -> None:
        match event:
            case EnterpriseRegistered():
                self.registrations[event.enterprise_id] = event
                self._latest(self.workforce, event.enterprise_id, version, event.workforce)
                self._latest(self.chamber, event.enterprise_id, version, event.chamber)
            case EnterpriseDetailsCorrected():
                if event.workforce is not None:
                    self._latest(self.workforce, event.enterprise_id, version, event.workforce)
                if event.chamber is not None:
                    self._latest(self.chamber, event.enterprise_id, version, event.chamber)
            case EnterpriseEnrolled():
                self.enrolments[event.enrolment_id] = event
            case TrainerRegistered():
                self.trainers[event.trainer_id] = event

    @staticmethod
    def _latest(facts: dict[str, tuple[int, Any]], key: str, version: int, value: Any) -> None:
        if key not in facts or facts[key][0] < version:
            facts[key] = (version, value)


def the_same_chamber(name: str) -> str:
    """A chamber's name as DOMAIN.md compares chambers: ignoring case and every space."""
    return "".join(ch for ch in name if not ch.isspace()).casefold()


def one_decimal(numerator: Fraction, denominator: Fraction) -> float | None:
    """100 × numerator / denominator with one decimal, rounded half up; None over zero."""
    if denominator == 0:
        return None
    tenths = Fraction(1000) * numerator / denominator
    return math.floor(tenths + Fraction(1, 2)) / 10


@dataclass(frozen=True)
class Counted:
    """A scope of the recount: a region or all of Bolivia, a window or all time."""

    known: Known
    region: str | None = None
    window: tuple[dt.date, dt.date] | None = None

    def enterprise(self, enterprise_id: str) -> bool:
        registration = self.known.registrations.get(enterprise_id)
        return (
            registration is not None
            and registration.country == "bo"
            and self.region in (None, registration.region)
        )

    def trainer(self, trainer_id: str) -> bool:
        registration = self.known.trainers.get(trainer_id)
        return (
            registration is not None
            and registration.country == "bo"
            and self.region in (None, registration.region)
        )

    def within(self, day: dt.date) -> bool:
        return self.window is None or self.window[0] <= day <= self.window[1]


Fact = TypeVar("Fact", bound=EnterpriseEvent | VisitEvent)


class Recount:
    """DOMAIN.md's indicators and targets, counted from a history's events."""

    def __init__(self, history: Sequence[tuple[Event, int]]) -> None:
        self.known = Known()
        for event, version in history:
            self.known.learn(event, version)
        self.events = [event for event, _ in history]

    def indicators(
        self, region: str | None = None, window: tuple[dt.date, dt.date] | None = None
    ) -> dict[str, Value]:
        """Every indicator of DOMAIN.md in one scope."""
        known, scope = self.known, Counted(self.known, region, window)

        def about(kind: type[Fact], day: Callable[[Fact], dt.date]) -> list[Fact]:
            # The events of `kind` about an enterprise in the scope, on a day within it.
            return [
                event
                for event in self.events
                if isinstance(event, kind)
                and scope.enterprise(event.enterprise_id)
                and scope.within(day(event))
            ]

        registered = about(EnterpriseRegistered, lambda e: e.registered_on)
        enrolled = {e.enterprise_id for e in about(EnterpriseEnrolled, lambda e: e.enrolled_on)}
        trainings = about(ParticipantsTrained, lambda e: e.trained_on)
        trained = {t.enterprise_id for t in trainings}

        def trained_through(delivery: str) -> set[str]:
            return {
                t.enterprise_id
                for t in trainings
                if t.enrolment_id in known.enrolments
                and known.enrolments[t.enrolment_id].delivery == delivery
            }

        completed = about(ModuleCompleted, lambda e: e.completed_on)
        benefited = [known.workforce[e][1] for e in trained]
        trainers = [
            t.trainer_id
            for t in known.trainers.values()
            if scope.trainer(t.trainer_id) and scope.within(t.registered_on)
        ]
        certified = {
            c.trainer_id
            for c in self.events
            if isinstance(c, TrainerCertified)
            and scope.trainer(c.trainer_id)
            and scope.within(c.certified_on)
        }
        visited = about(VisitCompleted, lambda e: e.completed_on)
        # Cost recovery: the delivery cost of the enrolments made in the window against the
        # fees paid in it on a known enrolment; each by the enrolment's module (1, or 2–5).
        cost = {True: Fraction(0), False: Fraction(0)}
        for enrolment in about(EnterpriseEnrolled, lambda e: e.enrolled_on):
            cost[enrolment.module == 1] += Fraction(enrolment.delivery_cost.amount)
        fees = {True: Fraction(0), False: Fraction(0)}
        for fee in about(TrainingFeePaid, lambda e: e.paid_on):
            if (paid_for := known.enrolments.get(fee.enrolment_id)) is not None:
                fees[paid_for.module == 1] += Fraction(fee.amount.amount)

        def women(trainers: Iterable[str]) -> int:
            return sum(1 for t in trainers if known.trainers[t].sex == "female")

        def men(trainers: Iterable[str]) -> int:
            return sum(1 for t in trainers if known.trainers[t].sex == "male")

        return {
            "enterprises_registered": len(registered),
            "enterprises_enrolled": len(enrolled),
            "enterprises_trained": len(trained),
            "enterprises_trained_direct": len(trained_through("direct")),
            "enterprises_trained_partner": len(trained_through("partner")),
            "modules_completed": len(completed),
            **{
                f"modules_completed_m{m}": sum(1 for c in completed if c.module == m)
                for m in range(1, 6)
            },
            "participants_trained": sum(t.managers.total + t.workers.total for t in trainings),
            "managers_women": sum(t.managers.women for t in trainings),
            "managers_men": sum(t.managers.men for t in trainings),
            "workers_women": sum(t.workers.women for t in trainings),
            "workers_men": sum(t.workers.men for t in trainings),
            "employees_benefited": sum(w.total for w in benefited),
            "employees_benefited_women": sum(w.women for w in benefited),
            "employees_benefited_men": sum(w.men for w in benefited),
            "trainers_trained": len(trainers),
            "trainers_trained_women": women(trainers),
            "trainers_trained_men": men(trainers),
            "trainers_certified": len(certified),
            "trainers_certified_women": women(certified),
            "trainers_certified_men": men(certified),
            "women_share_trainers": one_decimal(Fraction(women(trainers)), Fraction(len(trainers))),
            "visits_scheduled": len(about(VisitScheduled, lambda e: e.scheduled_for)),
            "visits_completed": len(visited),
            "visits_cancelled": len(about(VisitCancelled, lambda e: e.cancelled_on)),
            "improvements_recorded": sum(len(v.improvements) for v in visited),
            "case_studies_published": len(about(CaseStudyPublished, lambda e: e.published_on)),
            "regions_active": len({known.registrations[e].region for e in trained}),
            "cost_recovery_pct": one_decimal(fees[True] + fees[False], cost[True] + cost[False]),
            "cost_recovery_pct_module1": one_decimal(fees[True], cost[True]),
            "cost_recovery_pct_modules2to5": one_decimal(fees[False], cost[False]),
        }

    def first_trained(self) -> tuple[dict[str, dt.date], dict[str, tuple[dt.date, str]]]:
        """The day of each region's first trained enterprise ever; and of each chamber's, with
        that enterprise's region (the earliest training, then the smallest enterprise id)."""
        known, everywhere = self.known, Counted(self.known)
        first_day: dict[str, dt.date] = {}
        for training in self.events:
            if isinstance(training, ParticipantsTrained) and everywhere.enterprise(
                e := training.enterprise_id
            ):
                first_day[e] = min(first_day.get(e, training.trained_on), training.trained_on)
        regions: dict[str, dt.date] = {}
        firsts: dict[str, tuple[dt.date, str]] = {}
        for enterprise, day in first_day.items():
            region = known.registrations[enterprise].region
            regions[region] = min(regions.get(region, day), day)
            chamber = the_same_chamber(known.chamber[enterprise][1])
            firsts[chamber] = min(firsts.get(chamber, (day, enterprise)), (day, enterprise))
        chambers = {c: (day, known.registrations[e].region) for c, (day, e) in firsts.items()}
        return regions, chambers

    def targets(self, phase: Phase, region: str | None = None) -> list[TargetValue]:
        """Each target of DOMAIN.md's table, in its order, for `phase` (in `region`)."""
        regions, chambers = self.first_trained()
        start, end = phase.window
        actual: dict[str, Value] = {
            **self.indicators(region, phase.window),
            "new_regions": sum(
                1 for r, day in regions.items() if region in (None, r) and start <= day <= end
            ),
            "new_chambers": sum(
                1 for day, r in chambers.values() if region in (None, r) and start <= day <= end
            ),
        }
        targets: dict[str, Decimal] = dict(phase.targets.items())
        values = []
        for key in TARGETS:
            target, value = targets[key], actual[key]
            if value is None:  # nothing to divide by: neither a share nor met
                values.append(TargetValue(key, float(target), None, None, False))
            else:
                share = one_decimal(Fraction(str(value)), Fraction(target))
                met = Fraction(str(value)) >= Fraction(target)
                values.append(TargetValue(key, float(target), value, share, met))
        return values


# --- the test ------------------------------------------------------------------------------

SCOPES = [(region, window) for window in (None, PHASE_III) for region in (None, *REGIONS)]
ADDITIVE = [
    key
    for key in INDICATORS
    if key != "women_share_trainers" and not key.startswith("cost_recovery")
]
"""What DOMAIN.md counts for each enterprise or trainer, each in one region: the regions'
figures add up to the country's."""

PHASES = st.builds(
    lambda counts, cost: Phase(
        id="phase-3",
        title="Phase III",
        starts_on=PHASE_III[0],
        ends_on=PHASE_III[1],
        targets={**dict(zip(TARGETS[:-1], counts, strict=True)), "cost_recovery_pct": cost},
    ),
    st.lists(st.integers(1, 4).map(Decimal), min_size=6, max_size=6),
    st.sampled_from([Decimal(50), Decimal(100)]),
)


Targets = dict[str | None, dict[str, TargetValue]]


async def project(db: Database, batches: list[list[Envelope[Event]]]) -> None:
    async with db.transaction() as conn:
        await clear(conn)
    for batch in batches:  # a transaction a batch, as the consumer writes them
        async with db.transaction() as conn:
            await project_all(conn, batch)


Counts = dict[tuple[str | None, tuple[dt.date, dt.date] | None], dict[str, Value]]


async def counted(conn: AsyncConnection, phase: Phase) -> tuple[Counts, Targets]:
    """What the service answers: the indicators of every scope, and the targets of the phase
    nationally and in each region."""
    indicators = {
        (region, window): await compute(conn, Scope(region=region, window=window))
        for region, window in SCOPES
    }
    targets = {
        region: {t.key: t for t in await targets_of(conn, phase, region=region)}
        for region in (None, *REGIONS)
    }
    return indicators, targets


def differences(
    history: History, phase: Phase, indicators: Counts, targets: Targets
) -> dict[str, Any]:
    """Each figure the service counted otherwise than the recount: (counted, recounted)."""
    recount = Recount(history.events)
    wrong: dict[str, Any] = {}
    for (region, window), values in indicators.items():
        expected = recount.indicators(region, window)
        scope = f"{region or 'bo'}{' in phase III' if window else ''}"
        assert list(values) == list(INDICATORS)
        wrong |= {
            f"{scope}: {key}": (value, expected[key])
            for key, value in values.items()
            if value != expected[key]
        }
    for region, answered in targets.items():
        expected_targets = recount.targets(phase, region)
        assert list(answered) == [t.key for t in expected_targets]
        wrong |= {
            f"{region or 'bo'} target {t.key}": (answered[t.key], t)
            for t in expected_targets
            if answered[t.key] != t
        }
    return wrong


# Shrinking a failure to its smallest history runs the test hundreds of times more (Hypothesis
# gives it up to five minutes): room for it to finish and show that history.
@pytest.mark.timeout(600)
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories(), phase=PHASES, data=st.data())
async def test_every_indicator_and_target_is_what_domain_md_defines(
    projection_db: Database, history: History, phase: Phase, data: st.DataObject
) -> None:
    note("\n".join(f"v{version} {event!r}" for event, version in history.events))
    await project(projection_db, arriving(data, history.envelopes()))
    async with projection_db.transaction(write=False) as conn:
        indicators, targets = await counted(conn, phase)
    wrong = differences(history, phase, indicators, targets)
    assert not wrong, "\n".join(
        f"{k}: counted {a!r}, recounted {b!r}" for k, (a, b) in wrong.items()
    )
    # The regions add up to the country: each enterprise and each trainer is in one region.
    for window in (None, PHASE_III):
        national, regions = indicators[None, window], [indicators[r, window] for r in REGIONS]
        for key in ADDITIVE:
            assert national[key] == total(region[key] for region in regions), (key, window)
    for key in ("new_regions", "new_chambers"):
        assert targets[None][key].actual == total(targets[r][key].actual for r in REGIONS), key


def total(counts: Iterable[float | None]) -> float:
    """The sum of counts, which are never None (only shares are, over nothing)."""
    values = list(counts)
    assert None not in values
    return sum(value for value in values if value is not None)
