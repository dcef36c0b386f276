"""The indicators as DOMAIN.md defines them, counted from projected events."""

from __future__ import annotations

from typing import Any

import pytest

from score_chassis.database import Database
from score_contracts.events import (
    CaseStudyPublished,
    EnterpriseDetailsCorrected,
    EnterpriseWithdrawn,
    Headcount,
    Improvement,
    ModuleCompleted,
    Money,
    TrainerCertified,
    TrainingFeePaid,
    VisitCancelled,
    VisitCompleted,
    VisitScheduled,
)
from score_contracts.reference import REGIONS
from score_indicators.indicators import INDICATORS, Scope, compute, compute_regions
from score_indicators.projection import clear, project, project_all
from score_testing.history import BEFORE, DURING, PHASE_3
from score_testing.history import History as Programme


async def indicators(db: Database, **scope: Any) -> dict[str, Any]:
    async with db.transaction(write=False) as conn:
        return await compute(conn, Scope(**scope))


async def test_every_indicator_is_always_present(projection_db: Database) -> None:
    values = await indicators(projection_db)
    assert list(values) == list(INDICATORS)
    assert values["enterprises_trained"] == 0
    assert values["women_share_trainers"] is None
    assert values["cost_recovery_pct"] is None


async def test_a_scope_is_counted_afresh_at_every_read(projection_db: Database) -> None:
    # The statement counting a scope is kept between reads: the figures must not be.
    p = Programme()
    e = p.enterprise(region="la_paz")
    p.train(e, p.enrol(e))
    await p.project_into(projection_db, project)
    assert (await indicators(projection_db, region="la_paz"))["enterprises_trained"] == 1
    projected = len(p.events)
    for region in ("la_paz", "oruro"):
        e = p.enterprise(region=region)
        p.train(e, p.enrol(e))
    await p.project_into(projection_db, project, order=list(range(projected, len(p.events))))
    assert (await indicators(projection_db, region="la_paz"))["enterprises_trained"] == 2
    assert (await indicators(projection_db, region="oruro"))["enterprises_trained"] == 1
    assert (await indicators(projection_db))["enterprises_trained"] == 3


async def test_trained_enterprises_are_distinct_and_participants_summed(
    projection_db: Database,
) -> None:
    p = Programme()
    a, b = p.enterprise(women=20, men=30), p.enterprise(women=100, men=40)
    a1 = p.enrol(a)
    p.train(a, a1, managers=(1, 2), workers=(3, 4))
    p.train(a, a1, managers=(0, 1), workers=(2, 0))  # a second day: still one enterprise
    p.enrol(b)  # enrolled, never trained
    await p.project_into(projection_db, project)
    values = await indicators(projection_db)
    assert values["enterprises_registered"] == 2
    assert values["enterprises_enrolled"] == 2
    assert values["enterprises_trained"] == 1
    assert values["participants_trained"] == 13
    assert (values["managers_women"], values["managers_men"]) == (1, 3)
    assert (values["workers_women"], values["workers_men"]) == (5, 4)
    assert values["employees_benefited"] == 50
    assert (values["employees_benefited_women"], values["employees_benefited_men"]) == (20, 30)


async def test_employees_benefited_uses_the_latest_known_workforce(
    projection_db: Database,
) -> None:
    p = Programme()
    a = p.enterprise(women=20, men=30)
    p.train(a, p.enrol(a))
    p.add(EnterpriseDetailsCorrected(enterprise_id=a, workforce=Headcount(women=25, men=35)))
    # Applied newest first: the older registration must not overwrite the correction.
    await p.project_into(projection_db, project, order=[3, 0, 1, 2])
    assert (await indicators(projection_db))["employees_benefited"] == 60


async def test_an_enterprise_counts_once_in_each_channel_it_was_trained_through(
    projection_db: Database,
) -> None:
    p = Programme()
    a, b = p.enterprise(), p.enterprise()
    p.train(a, p.enrol(a, module=1, delivery="direct"))
    p.train(a, p.enrol(a, module=2, delivery="partner"), module=2)
    p.train(b, p.enrol(b, delivery="partner"))
    await p.project_into(projection_db, project)
    values = await indicators(projection_db)
    assert values["enterprises_trained"] == 2
    assert values["enterprises_trained_direct"] == 1
    assert values["enterprises_trained_partner"] == 2


async def test_history_does_not_un_happen_a_withdrawn_enterprise_still_counts(
    projection_db: Database,
) -> None:
    p = Programme()
    a = p.enterprise()
    p.train(a, p.enrol(a))
    p.add(EnterpriseWithdrawn(enterprise_id=a, reason="closed", withdrawn_on=BEFORE))
    await p.project_into(projection_db, project)
    values = await indicators(projection_db)
    assert values["enterprises_trained"] == 1
    assert values["employees_benefited"] == 100


async def test_a_region_counts_its_own_enterprises_and_trainers(projection_db: Database) -> None:
    p = Programme()
    for region in ("la_paz", "la_paz", "cochabamba"):
        e = p.enterprise(region=region)
        p.train(e, p.enrol(e))
    p.enterprise(region="santa_cruz")  # registered, not trained: not an active region
    p.trainer("female", region="la_paz")
    p.trainer("male", region="cochabamba")
    await p.project_into(projection_db, project)
    national = await indicators(projection_db)
    la_paz = await indicators(projection_db, region="la_paz")
    assert national["regions_active"] == 2
    assert (la_paz["enterprises_trained"], la_paz["regions_active"]) == (2, 1)
    assert la_paz["trainers_trained"] == 1
    assert (await indicators(projection_db, region="santa_cruz"))["enterprises_registered"] == 1
    assert (await indicators(projection_db, country="pe"))["enterprises_registered"] == 0


async def test_a_phase_counts_only_what_happened_in_its_window(projection_db: Database) -> None:
    p = Programme()
    old = p.enterprise(on=BEFORE)
    p.train(old, p.enrol(old, on=BEFORE), on=BEFORE)
    new = p.enterprise(on=DURING, women=10, men=20)
    p.train(new, p.enrol(new, on=DURING), on=DURING)
    p.train(old, p.enrol(old, module=2, on=DURING), module=2, on=DURING)  # trained again
    await p.project_into(projection_db, project)
    phase = await indicators(projection_db, window=PHASE_3)
    assert phase["enterprises_registered"] == 1
    assert phase["enterprises_trained"] == 2
    assert phase["employees_benefited"] == 130  # the enterprises trained within the window
    assert phase["enterprises_enrolled"] == 2


async def test_trainers_by_sex_certified_once_and_the_share_of_women(
    projection_db: Database,
) -> None:
    p = Programme()
    women = [p.trainer("female") for _ in range(13)]
    [p.trainer("male") for _ in range(18)]
    for trainer_id in women[:5]:
        for modules in ([1], [5]):  # certified twice: counted once
            p.add(
                TrainerCertified(
                    trainer_id=trainer_id, modules=modules, level="trainer", certified_on=BEFORE
                )
            )
    await p.project_into(projection_db, project)
    values = await indicators(projection_db)
    assert values["trainers_trained"] == 31
    assert (values["trainers_trained_women"], values["trainers_trained_men"]) == (13, 18)
    assert values["women_share_trainers"] == 41.9  # 13 / 31, one decimal
    assert values["trainers_certified"] == 5
    assert values["trainers_certified_women"] == 5


async def test_modules_visits_improvements_and_case_studies(projection_db: Database) -> None:
    p = Programme()
    a = p.enterprise()
    enrolment = p.enrol(a)
    p.train(a, enrolment)
    p.add(ModuleCompleted(enterprise_id=a, enrolment_id=enrolment, module=1, completed_on=BEFORE))
    common = {"enterprise_id": a, "trainer_id": "tr-1", "module": 1}
    p.add(VisitScheduled(visit_id="v1", scheduled_for=BEFORE, **common))
    p.add(VisitScheduled(visit_id="v2", scheduled_for=BEFORE, **common))
    improvements = [
        Improvement(area="5S", description="workspace organised"),
        Improvement(area="communication", description="visible notice board and suggestion box"),
    ]
    p.add(
        VisitCompleted(
            visit_id="v1",
            completed_on=BEFORE,
            duration_hours="3.5",  # type: ignore[arg-type]
            improvements=improvements,
            **common,
        )
    )
    p.add(VisitCancelled(visit_id="v2", enterprise_id=a, reason="strike", cancelled_on=BEFORE))
    p.add(
        CaseStudyPublished(
            enterprise_id=a, title="Delizia", url="https://example.org/d", published_on=BEFORE
        )
    )
    await p.project_into(projection_db, project)
    values = await indicators(projection_db)
    assert (values["modules_completed"], values["modules_completed_m1"]) == (1, 1)
    assert values["modules_completed_m2"] == 0
    assert (values["visits_scheduled"], values["visits_completed"]) == (2, 1)
    assert values["visits_cancelled"] == 1
    assert values["improvements_recorded"] == 2
    assert values["case_studies_published"] == 1


@pytest.mark.parametrize(
    ("fees", "expected"),
    [
        ({"m1": "500", "m2": "0"}, (25.0, 50.0, 0.0)),
        ({"m1": "1000", "m2": "1000"}, (100.0, 100.0, 100.0)),
    ],
)
async def test_cost_recovery_is_fees_over_delivery_cost_for_module_1_and_the_rest(
    projection_db: Database, fees: dict[str, str], expected: tuple[float, float, float]
) -> None:
    p = Programme()
    a = p.enterprise()
    m1 = p.enrol(a, module=1, cost="1000")
    m2 = p.enrol(a, module=2, cost="1000")
    for enrolment, amount in ((m1, fees["m1"]), (m2, fees["m2"])):
        p.add(
            TrainingFeePaid(
                enterprise_id=a,
                enrolment_id=enrolment,
                amount=Money(amount=amount),
                paid_on=BEFORE,
                payer="enterprise",
            )
        )
    await p.project_into(projection_db, project)
    values = await indicators(projection_db)
    got = (
        values["cost_recovery_pct"],
        values["cost_recovery_pct_module1"],
        values["cost_recovery_pct_modules2to5"],
    )
    assert got == expected


async def test_cost_recovery_is_null_where_nothing_was_spent(projection_db: Database) -> None:
    p = Programme()
    a = p.enterprise()
    p.enrol(a, cost="0")
    await p.project_into(projection_db, project)
    assert (await indicators(projection_db))["cost_recovery_pct_module1"] is None


async def test_the_order_events_arrive_in_does_not_change_any_indicator(
    projection_db: Database,
) -> None:
    p = Programme()
    for region in ("la_paz", "cochabamba", "santa_cruz"):
        e = p.enterprise(region=region, women=12, men=40)
        enrolment = p.enrol(e)
        p.train(e, enrolment, on=DURING)
        p.add(EnterpriseDetailsCorrected(enterprise_id=e, workforce=Headcount(women=15, men=40)))
    await p.project_into(projection_db, project, order=list(reversed(range(len(p.events)))))
    values = await indicators(projection_db)
    assert values["employees_benefited"] == 3 * 55
    assert values["regions_active"] == 3
    assert values["enterprises_trained"] == 3


async def test_a_history_projected_in_one_batch_counts_what_it_does_event_by_event(
    projection_db: Database,
) -> None:
    p = Programme()
    for region in ("la_paz", "oruro"):
        e = p.enterprise(region=region, women=12, men=40)
        enrolment = p.enrol(e)
        p.train(e, enrolment, on=DURING)
        p.add(EnterpriseDetailsCorrected(enterprise_id=e, workforce=Headcount(women=15, men=40)))
        p.add(EnterpriseDetailsCorrected(enterprise_id=e, workforce=Headcount(women=16, men=44)))
    p.trainer("female")
    envelopes = p.envelopes()
    async with projection_db.transaction() as conn:
        # The newest correction first: a batch is written by kind of fact, not in order.
        await project_all(conn, [envelopes[4], *envelopes[:4], *envelopes[5:]])
    in_one_batch = await indicators(projection_db)
    async with projection_db.transaction() as conn:
        await clear(conn)
    await p.project_into(projection_db, project)
    assert in_one_batch == await indicators(projection_db)
    assert in_one_batch["employees_benefited"] == 2 * 60


@pytest.mark.parametrize("window", [None, PHASE_3])
async def test_the_regions_counted_together_are_what_each_counted_alone_is(
    projection_db: Database, window: Any
) -> None:
    p = Programme()
    for n, region in enumerate(("la_paz", "la_paz", "cochabamba", "santa_cruz")):
        on = BEFORE if n % 2 else DURING
        e = p.enterprise(region=region, women=10 + n, men=20, on=on)
        first = p.enrol(e, delivery="partner" if n == 2 else "direct", cost="1500", on=on)
        p.train(e, first, managers=(n, 1), workers=(2, n), on=on)
        p.pay(e, first, "700", on=on)
        p.complete(e, first, on=DURING)
        second = p.enrol(e, module=2, cost="900", on=DURING)
        p.pay(e, second, "300", on=DURING)
        trainer = p.trainer("female" if n % 2 else "male", region=region, on=on)
        p.certify(trainer, on=DURING)
        visit = p.schedule_visit(e, trainer, on=DURING)
        p.complete_visit(visit, e, trainer, improvements=n, on=DURING)
        p.publish_case_study(e, on=on)
    p.correct(p.enterprise(region="oruro"), workforce=(3, 4))  # registered only
    await p.project_into(projection_db, project)
    async with projection_db.transaction(write=False) as conn:
        together = await compute_regions(conn, "bo", window)
        alone = {
            region: await compute(conn, Scope(region=region, window=window))
            for region in REGIONS["bo"]
        }
    assert together == alone
    assert together["la_paz"]["enterprises_trained"] == (2 if window is None else 1)
    assert together["beni"] == await indicators(projection_db, region="beni")  # nothing there
