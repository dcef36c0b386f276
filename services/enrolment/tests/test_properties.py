"""Whatever staff send, the service agrees with the pure decider: each request is accepted,
refused or found invalid exactly as `decide` says, and the enterprise read over HTTP is the
fold of the events `decide` gave. Histories are drawn at random, rules and all."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from score_chassis.decider import Invalid, Refused
from score_contracts.events import Event, Headcount, Money
from score_enrolment.bodies import EnterpriseSummary, EnterpriseView
from score_enrolment.domain.enterprise import (
    Command,
    CompleteModule,
    CorrectDetails,
    Enrol,
    Enterprise,
    PublishCaseStudy,
    RecordFeePayment,
    RecordTraining,
    RegisterEnterprise,
    Withdraw,
    enterprise,
)
from score_testing.service import bearer

STAFF = bearer("staff")
START = dt.date(2016, 1, 4)
TAX_IDS = itertools.count(1)
UNKNOWN_ENROLMENT = "enr-unknown"

gaps = st.integers(min_value=-20, max_value=45)
"""A request's date, in days after the latest date so far: mostly later, sometimes earlier
(an impossible order, which the decider finds invalid)."""
counts = st.integers(min_value=0, max_value=3)
headcounts = st.builds(Headcount, women=counts, men=counts)
workforces = st.builds(
    Headcount,
    women=st.integers(min_value=0, max_value=140),
    men=st.integers(min_value=0, max_value=140),
)
currencies = st.sampled_from(["BOB", "BOB", "BOB", "USD"])
reasons = st.none() | st.none() | st.just("a reason the programme accepts")
pick = st.sampled_from([0, 0, 0, 1, 1, 2, 3])
"""Which enrolment a command names: one of those made so far, or (past them) an unknown one."""


@dataclass(frozen=True)
class Step:
    """A request in the programme's words, less what only the history tells: the ids the
    server assigned and the date so far."""

    kind: type
    path: str
    method: str
    fields: dict[str, Any]

    def resolved(self, enrolments: list[str], latest: dt.date) -> dict[str, Any]:
        """The fields with the enrolment picked from those made so far and the date set."""
        fields = dict(self.fields)
        if "pick" in fields:
            n = fields.pop("pick")
            fields["enrolment_id"] = enrolments[n] if n < len(enrolments) else UNKNOWN_ENROLMENT
        for name, value in fields.items():
            if name.endswith("_on") and isinstance(value, int):
                fields[name] = latest + dt.timedelta(days=value)
        return fields


def step(kind: type, path: str, method: str = "POST", **fields: Any) -> Step:
    return Step(kind, path, method, fields)


def as_body(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: _json(v) for k, v in fields.items() if v is not None}


def _json(value: Any) -> Any:
    if isinstance(value, Headcount | Money):
        return value.model_dump(mode="json")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


registrations = st.builds(
    lambda workforce, reason, region: step(
        RegisterEnterprise,
        "/v1/enterprises",
        name="Delizia",
        tax_id=f"T-{next(TAX_IDS)}",
        country="bo",
        region=region,
        sector="food",
        chamber="CNI",
        workforce=workforce,
        size_exception_reason=reason,
        registered_on=0,
    ),
    workforces,
    reasons,
    st.sampled_from(["la_paz", "beni"]),
)
corrections = st.builds(
    lambda sector, workforce, gap: step(
        CorrectDetails, "", "PATCH", sector=sector, workforce=workforce, corrected_on=gap
    ),
    st.sampled_from(["food", "textiles"]),
    st.none() | workforces,
    gaps,
)


def enrolments_in(modules: st.SearchStrategy[int], days: st.SearchStrategy[int]) -> Any:
    return st.builds(
        lambda module, partner, amount, currency, reason, gap: step(
            Enrol,
            "/enrolments",
            module=module,
            delivery="partner" if partner else "direct",
            partner=partner,
            delivery_cost=Money(amount=amount, currency=currency),
            exception_reason=reason,
            enrolled_on=gap,
        ),
        modules,
        st.none() | st.just("CAINCO"),
        st.sampled_from(["0", "2500.50", "5600"]),
        currencies,
        reasons,
        days,
    )


enrolments = enrolments_in(st.sampled_from([1, 1, 1, 2, 3, 4, 5]), gaps)
trainings = st.builds(
    lambda pick, managers, workers, gap: step(
        RecordTraining, "/trainings", pick=pick, managers=managers, workers=workers, trained_on=gap
    ),
    pick,
    headcounts,
    headcounts,
    gaps,
)
payments = st.builds(
    lambda pick, amount, currency, payer, gap: step(
        RecordFeePayment,
        "/payments",
        pick=pick,
        amount=Money(amount=amount, currency=currency),
        payer=payer,
        paid_on=gap,
    ),
    pick,
    st.sampled_from(["1", "150.25", "3000"]),
    currencies,
    st.sampled_from(["enterprise", "sponsor"]),
    gaps,
)
completions = st.builds(
    lambda pick, gap: step(CompleteModule, "/completions", pick=pick, completed_on=gap), pick, gaps
)
withdrawals = st.builds(
    lambda gap: step(Withdraw, "/withdrawal", reason="closed", withdrawn_on=gap), gaps
)
case_studies = st.builds(
    lambda url, gap: step(PublishCaseStudy, "/case-studies", title="5S", url=url, published_on=gap),
    st.sampled_from(["https://score.example.org/a", "https://score.example.org/b"]),
    gaps,
)
any_steps = st.lists(
    st.one_of(
        enrolments,
        enrolments,
        trainings,
        trainings,
        payments,
        completions,
        corrections,
        case_studies,
        withdrawals,
    ),
    max_size=16,
)
later_steps = any_steps | st.builds(
    lambda first, rest: [first, *rest],
    enrolments_in(st.just(1), st.integers(min_value=0, max_value=45)),
    any_steps,
)
"""Steps in any order, often after a first enrolment in module 1, which most need."""

REGISTRATION = step(
    RegisterEnterprise,
    "/v1/enterprises",
    name="Delizia",
    tax_id="T-0",
    country="bo",
    region="la_paz",
    sector="food",
    chamber="CNI",
    workforce=Headcount(women=40, men=60),
    registered_on=0,
)
A_WHOLE_STORY = [
    step(
        Enrol,
        "/enrolments",
        module=1,
        delivery="direct",
        delivery_cost=Money(amount="3000"),
        enrolled_on=7,
    ),
    step(
        RecordTraining,
        "/trainings",
        pick=0,
        managers=Headcount(women=1, men=1),
        workers=Headcount(women=2, men=0),
        trained_on=9,
    ),
    step(
        RecordFeePayment,
        "/payments",
        pick=0,
        amount=Money(amount="1500"),
        payer="enterprise",
        paid_on=1,
    ),
    step(CompleteModule, "/completions", pick=0, completed_on=60),
    step(PublishCaseStudy, "/case-studies", title="5S", url="https://x.org/a", published_on=30),
    step(CorrectDetails, "", "PATCH", workforce=Headcount(women=45, men=60), corrected_on=0),
    step(Withdraw, "/withdrawal", reason="closed", withdrawn_on=5),
]
"""Every event of the enterprise, once, in an order the rules accept."""


def command(s: Step, fields: dict[str, Any], enterprise_id: str, answer: dict[str, Any]) -> Command:
    if s.kind is Enrol:
        fields = {**fields, "enrolment_id": answer.get("enrolment_id", "refused")}
    built: Command = s.kind(enterprise_id=enterprise_id, **fields)
    return built


def outcome(cmd: Command, state: Enterprise) -> list[Event] | Refused | Invalid:
    try:
        return enterprise.decide(cmd, state)
    except (Refused, Invalid) as error:
        return error


async def listed(client: httpx.AsyncClient, enterprise_id: str) -> dict[str, Any]:
    """The enterprise's item in the list, found a page at a time."""
    params: dict[str, Any] = {"limit": 200}
    while True:
        page = (await client.get("/v1/enterprises", params=params, headers=STAFF)).json()
        for item in page["items"]:
            if item["id"] == enterprise_id:
                found: dict[str, Any] = item
                return found
        assert page["next_cursor"] is not None, f"{enterprise_id} is not listed"
        params["cursor"] = page["next_cursor"]


def _named(decided: list[Event] | Refused | Invalid) -> str:
    match decided:
        case Refused(rule=rule):
            return rule
        case Invalid(field=name):
            return f"invalid {name}"
        case _:
            return "accepted"


def agrees(response: httpx.Response, decided: list[Event] | Refused | Invalid) -> None:
    body = response.json()
    match decided:
        case Refused(rule=rule):
            assert (response.status_code, body.get("rule")) == (409, rule), body
        case Invalid(field=name):
            assert response.status_code == 422, body
            assert name in [e["field"] for e in body["errors"]], body
        case _:
            assert response.is_success, body


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(registration=registrations, steps=later_steps)
@example(registration=REGISTRATION, steps=A_WHOLE_STORY)
async def test_the_enterprise_read_over_http_is_the_fold_of_what_the_decider_decides(
    client: httpx.AsyncClient, registration: Step, steps: list[Step]
) -> None:
    registered = await client.post(
        registration.path, json=as_body(registration.resolved([], START)), headers=STAFF
    )
    enterprise_id = registered.json().get("id", "refused")
    state: Enterprise = enterprise.initial_state
    events: list[Event] = []
    enrolment_ids: list[str] = []
    latest = START
    for s in [registration, *steps]:
        fields = s.resolved(enrolment_ids, latest)
        response = (
            registered
            if s is registration
            else await client.request(
                s.method,
                f"/v1/enterprises/{enterprise_id}{s.path}",
                json=as_body(fields),
                headers=STAFF,
            )
        )
        answer = response.json() if response.is_success else {}
        decided = outcome(command(s, fields, enterprise_id, answer), state)
        agrees(response, decided)
        event(f"{s.kind.__name__}: {_named(decided)}")
        if s is registration and not isinstance(decided, list):
            return  # nothing registered: every later request would be about no one
        latest = max([latest, *(v for v in fields.values() if isinstance(v, dt.date))])
        if isinstance(decided, list):
            events += decided
            state = enterprise.fold(decided, state)
            assert answer["version"] == len(events)
            if "enrolment_id" in answer:
                enrolment_ids.append(answer["enrolment_id"])

    read = (await client.get(f"/v1/enterprises/{enterprise_id}", headers=STAFF)).json()
    folded = EnterpriseView.of(state, len(events), [], personal=True).model_dump(mode="json")
    assert {**read, "history": []} == folded
    assert [h["data"] for h in read["history"]] == [e.model_dump(mode="json") for e in events]

    assert await listed(client, enterprise_id) == EnterpriseSummary(
        id=enterprise_id,
        version=len(events),
        name=state.name,
        country=state.country,
        region=state.region,
        sector=state.sector,
        chamber=state.chamber,
        workforce=state.workforce,
        registered_on=state.registered_on,
        withdrawn_on=state.withdrawn_on,
    ).model_dump(mode="json")
