"""The enrolment API over HTTP: every write for its answer, bad input, unknown ids, refusals,
stale versions and retries; the reads; and who may do what."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx
import pytest

from score_chassis.tokens import TokenAuthority
from score_enrolment.main import build_app
from score_enrolment.settings import EnrolmentSettings
from score_testing.service import TEST_SECRET, bearer, serving

STAFF: Final = bearer("staff")
"""One token for the module: idempotency keys belong to the token's subject."""
MISSING: Final = object()
"""In a change to a body: leave the field out."""

ENTERPRISE: Final[dict[str, Any]] = {
    "name": "Delizia",
    "tax_id": "1020304050",
    "region": "la_paz",
    "sector": "food",
    "chamber": "Cámara Nacional de Industrias",
    "workforce": {"women": 40, "men": 60},
    "registered_on": "2017-02-01",
}
TRAINER: Final[dict[str, Any]] = {
    "name": "Rosa Quispe",
    "sex": "female",
    "region": "la_paz",
    "organisation": "CNI",
    "registered_on": "2017-01-10",
}


async def post(
    client: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str] = STAFF,
    method: str = "POST",
) -> httpx.Response:
    return await client.request(method, path, json=body, headers=headers)


async def created(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await post(client, path, body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def appended(client: httpx.AsyncClient) -> int:
    """How many events the service has appended: NATS is absent, so all wait in the outbox."""
    pending: int = (await client.get("/readyz")).json()["checks"]["outbox_pending"]
    return pending


@dataclass(frozen=True)
class Story:
    """An enterprise registered, enrolled in module 1 and trained; a trainer registered."""

    enterprise: str
    enrolment: str
    trainer: str


async def story(client: httpx.AsyncClient, **enterprise: Any) -> Story:
    trainer = (await created(client, "/v1/trainers", TRAINER))["id"]
    enterprise_id = (await created(client, "/v1/enterprises", {**ENTERPRISE, **enterprise}))["id"]
    enrolment_id = (
        await created(
            client,
            f"/v1/enterprises/{enterprise_id}/enrolments",
            {
                "module": 1,
                "delivery": "direct",
                "delivery_cost": {"amount": "3000.00"},
                "enrolled_on": "2017-03-01",
            },
        )
    )["enrolment_id"]
    await created(
        client,
        f"/v1/enterprises/{enterprise_id}/trainings",
        {
            "enrolment_id": enrolment_id,
            "trained_on": "2017-03-10",
            "trainer_id": trainer,
            "managers": {"women": 1, "men": 1},
            "workers": {"women": 1, "men": 1},
        },
    )
    return Story(enterprise_id, enrolment_id, trainer)


@dataclass(frozen=True)
class Write:
    path: str
    body: Callable[[Story], dict[str, Any]]
    status: int
    method: str = "POST"
    refusal: tuple[dict[str, Any] | None, str] | None = None
    """Changes to the body that make a rule refuse it (None: the same request a second
    time), and the rule."""

    def url(self, story: Story) -> str:
        return self.path.format(enterprise=story.enterprise, trainer=story.trainer)

    @property
    def creates(self) -> bool:
        return "{" not in self.path

    @property
    def of_trainer(self) -> bool:
        return self.path.startswith("/v1/trainers")

    def aggregate_id(self, story: Story) -> str:
        return story.trainer if self.of_trainer else story.enterprise


WRITES: Final[dict[str, Write]] = {
    "register enterprise": Write(
        "/v1/enterprises",
        lambda s: {**ENTERPRISE, "name": "Boshami", "tax_id": "5544332211"},
        201,
        refusal=(None, "tax-id-registered-once"),
    ),
    "correct details": Write(
        "/v1/enterprises/{enterprise}",
        lambda s: {"workforce": {"women": 45, "men": 60}, "corrected_on": "2017-04-01"},
        200,
        method="PATCH",
    ),
    "enrol": Write(
        "/v1/enterprises/{enterprise}/enrolments",
        lambda s: {
            "module": 2,
            "delivery": "partner",
            "partner": "CAINCO",
            "delivery_cost": {"amount": "2500.50"},
            "enrolled_on": "2017-04-01",
        },
        201,
        refusal=(None, "one-enrolment-per-module"),
    ),
    "record training": Write(
        "/v1/enterprises/{enterprise}/trainings",
        lambda s: {
            "enrolment_id": s.enrolment,
            "trained_on": "2017-03-11",
            "trainer_id": s.trainer,
            "managers": {"women": 0, "men": 1},
            "workers": {"women": 2, "men": 1},
        },
        201,
        refusal=({"enrolment_id": "enr-404"}, "training-needs-enrolment"),
    ),
    "record payment": Write(
        "/v1/enterprises/{enterprise}/payments",
        lambda s: {
            "enrolment_id": s.enrolment,
            "amount": {"amount": "1500.00"},
            "paid_on": "2017-03-20",
            "payer": "sponsor",
        },
        201,
        refusal=({"enrolment_id": "enr-404"}, "payment-needs-enrolment"),
    ),
    "complete module": Write(
        "/v1/enterprises/{enterprise}/completions",
        lambda s: {"enrolment_id": s.enrolment, "completed_on": "2017-06-01"},
        201,
        refusal=(None, "completed-once"),
    ),
    "withdraw": Write(
        "/v1/enterprises/{enterprise}/withdrawal",
        lambda s: {"reason": "closed its plant", "withdrawn_on": "2017-07-01"},
        200,
        refusal=(None, "already-withdrawn"),
    ),
    "publish case study": Write(
        "/v1/enterprises/{enterprise}/case-studies",
        lambda s: {
            "title": "Delizia: a notice board and a suggestion box",
            "url": "https://score.example.org/bo/delizia",
            "published_on": "2017-09-01",
        },
        201,
        refusal=(None, "case-study-published-once"),
    ),
    "register trainer": Write("/v1/trainers", lambda s: {**TRAINER, "name": "Juan Mamani"}, 201),
    "certify trainer": Write(
        "/v1/trainers/{trainer}/certifications",
        lambda s: {"modules": [1, 5], "level": "trainer", "certified_on": "2017-06-01"},
        201,
        refusal=(None, "already-certified"),
    ),
}
ON_EXISTING: Final = [name for name, write in WRITES.items() if not write.creates]
REFUSABLE: Final = [name for name, write in WRITES.items() if write.refusal]

BAD_INPUT: Final[list[tuple[str, dict[str, Any], str]]] = [
    ("register enterprise", {"region": "atlantis"}, "region"),
    ("register enterprise", {"workforce": {"women": -1, "men": 3}}, "workforce.women"),
    ("register enterprise", {"workforce": {"women": "many", "men": 3}}, "workforce.women"),
    ("register enterprise", {"registered_on": "3017-01-01"}, "registered_on"),
    ("register enterprise", {"registered_on": "2017-02-30"}, "registered_on"),
    ("register enterprise", {"name": ""}, "name"),
    ("register enterprise", {"tax_id": MISSING}, "tax_id"),
    ("register enterprise", {"country": "BOL"}, "country"),
    ("register enterprise", {"colour": "blue"}, "colour"),
    ("correct details", {"workforce": {"women": 1, "men": -3}}, "workforce.men"),
    ("correct details", {"region": "oruro"}, "region"),
    ("correct details", {"corrected_on": "2016-12-31"}, "corrected_on"),
    ("enrol", {"module": 6}, "module"),
    ("enrol", {"module": "one"}, "module"),
    ("enrol", {"delivery": "mail"}, "delivery"),
    ("enrol", {"delivery_cost": {"amount": "12,50"}}, "delivery_cost.amount"),
    ("enrol", {"delivery_cost": {"amount": "-1"}}, "delivery_cost.amount"),
    ("enrol", {"delivery_cost": {"amount": "10", "currency": "bob"}}, "delivery_cost.currency"),
    ("enrol", {"partner": MISSING}, "partner"),
    ("enrol", {"delivery": "direct"}, "partner"),
    ("enrol", {"enrolled_on": "2017-01-31"}, "enrolled_on"),
    ("record training", {"managers": {"women": -1, "men": 0}}, "managers.women"),
    (
        "record training",
        {"managers": {"women": 0, "men": 0}, "workers": {"women": 0, "men": 0}},
        "participants",
    ),
    ("record training", {"trained_on": "2017-02-15"}, "trained_on"),
    ("record training", {"enrolment_id": MISSING}, "enrolment_id"),
    ("record training", {"trainer_id": "not an id"}, "trainer_id"),
    ("record payment", {"amount": {"amount": "1.500,00"}}, "amount.amount"),
    ("record payment", {"amount": {"amount": "0"}}, "amount"),
    ("record payment", {"amount": {"amount": "10", "currency": "USD"}}, "amount.currency"),
    ("record payment", {"payer": "donor"}, "payer"),
    ("record payment", {"paid_on": "2017-02-15"}, "paid_on"),
    ("complete module", {"completed_on": "2017-03-05"}, "completed_on"),
    ("complete module", {"completed_on": "not a date"}, "completed_on"),
    ("withdraw", {"reason": MISSING}, "reason"),
    ("withdraw", {"withdrawn_on": "2017-03-05"}, "withdrawn_on"),
    ("publish case study", {"url": "ftp://score.example.org/delizia"}, "url"),
    ("publish case study", {"title": "  "}, "title"),
    ("publish case study", {"published_on": "2017-03-01"}, "published_on"),
    ("register trainer", {"sex": "other"}, "sex"),
    ("register trainer", {"region": "atlantis"}, "region"),
    ("register trainer", {"organisation": MISSING}, "organisation"),
    ("certify trainer", {"modules": []}, "modules"),
    ("certify trainer", {"modules": [1, 1]}, "modules"),
    ("certify trainer", {"modules": [6]}, "modules.0"),
    ("certify trainer", {"level": "master"}, "level"),
    ("certify trainer", {"certified_on": "2016-12-31"}, "certified_on"),
]


def changed(body: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = {**body, **changes}
    return {k: v for k, v in merged.items() if v is not MISSING}


def a_day_later(body: dict[str, Any]) -> dict[str, Any]:
    """The same request about a day later: as valid, and different."""
    [field] = [name for name in body if name.endswith("_on")]
    return {**body, field: (dt.date.fromisoformat(body[field]) + dt.timedelta(days=1)).isoformat()}


async def version_of(client: httpx.AsyncClient, write: Write, story: Story) -> int:
    kind = "trainers" if write.of_trainer else "enterprises"
    found = await client.get(f"/v1/{kind}/{write.aggregate_id(story)}", headers=STAFF)
    version: int = found.json()["version"]
    return version


# Every write.


@pytest.mark.parametrize("name", WRITES)
async def test_a_write_answers_with_the_id_and_the_new_version(
    client: httpx.AsyncClient, name: str
) -> None:
    write, s = WRITES[name], await story(client)
    before = 0 if write.creates else await version_of(client, write, s)
    response = await post(client, write.url(s), write.body(s), method=write.method)
    assert response.status_code == write.status, response.text
    answer = response.json()
    assert answer["version"] == before + 1
    if write.creates:
        assert answer["id"] not in (s.enterprise, s.trainer)
    else:
        assert answer["id"] == write.aggregate_id(s)
    assert ("enrolment_id" in answer) == (name == "enrol")


@pytest.mark.parametrize(("name", "changes", "field"), BAD_INPUT)
async def test_bad_input_is_422_naming_the_field_and_appends_nothing(
    client: httpx.AsyncClient, name: str, changes: dict[str, Any], field: str
) -> None:
    write, s = WRITES[name], await story(client)
    before = await appended(client)
    body = changed(write.body(s), changes)
    response = await post(client, write.url(s), body, method=write.method)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/problems/invalid-input")
    assert field in [error["field"] for error in problem["errors"]], problem
    assert await appended(client) == before


@pytest.mark.parametrize("name", ON_EXISTING)
async def test_a_write_to_an_unknown_id_is_404_and_appends_nothing(
    client: httpx.AsyncClient, name: str
) -> None:
    write, s = WRITES[name], await story(client)
    before = await appended(client)
    unknown = Story(enterprise="ent-404", enrolment=s.enrolment, trainer="tr-404")
    response = await post(client, write.url(unknown), write.body(s), method=write.method)
    assert response.status_code == 404, response.text
    assert response.json()["type"].endswith("/problems/not-found")
    assert await appended(client) == before


@pytest.mark.parametrize("name", REFUSABLE)
async def test_a_refused_write_is_409_naming_the_rule_and_appends_nothing(
    client: httpx.AsyncClient, name: str
) -> None:
    write, s = WRITES[name], await story(client)
    assert write.refusal is not None
    changes, rule = write.refusal
    if changes is None:
        first = await post(client, write.url(s), write.body(s), method=write.method)
        assert first.status_code == write.status, first.text
    before = await appended(client)
    body = changed(write.body(s), changes or {})
    response = await post(client, write.url(s), body, method=write.method)
    assert response.status_code == 409, response.text
    assert response.json()["rule"] == rule
    assert await appended(client) == before


@pytest.mark.parametrize("name", ON_EXISTING)
async def test_a_stale_if_match_is_412_and_appends_nothing(
    client: httpx.AsyncClient, name: str
) -> None:
    write, s = WRITES[name], await story(client)
    current = await version_of(client, write, s)
    before = await appended(client)
    kind = "trainers" if write.of_trainer else "enterprises"
    read = await client.get(f"/v1/{kind}/{write.aggregate_id(s)}", headers=STAFF)
    assert read.headers["ETag"] == f'"{current}"'
    stale = {**STAFF, "If-Match": f'"{current - 1}"'}
    response = await post(client, write.url(s), write.body(s), stale, method=write.method)
    assert response.status_code == 412, response.text
    assert response.json()["type"].endswith("/problems/version-mismatch")
    assert await appended(client) == before
    fresh = {**STAFF, "If-Match": f'"{current}"'}
    response = await post(client, write.url(s), write.body(s), fresh, method=write.method)
    assert response.status_code == write.status, response.text


@pytest.mark.parametrize("name", WRITES)
async def test_a_retried_write_returns_the_first_answer_and_appends_nothing(
    client: httpx.AsyncClient, name: str
) -> None:
    write, s = WRITES[name], await story(client)
    keyed = {**STAFF, "Idempotency-Key": f"{name}-1"}
    first = await post(client, write.url(s), write.body(s), keyed, method=write.method)
    assert first.status_code == write.status, first.text
    before = await appended(client)
    again = await post(client, write.url(s), write.body(s), keyed, method=write.method)
    assert again.status_code == write.status
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await appended(client) == before
    other = a_day_later(write.body(s))
    reused = await post(client, write.url(s), other, keyed, method=write.method)
    assert reused.status_code == 422
    assert reused.json()["errors"][0]["field"] == "idempotency-key"


async def test_a_malformed_if_match_is_422(client: httpx.AsyncClient) -> None:
    s = await story(client)
    write = WRITES["withdraw"]
    headers = {**STAFF, "If-Match": "latest"}
    response = await post(client, write.url(s), write.body(s), headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "if-match"


async def test_a_body_that_is_not_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/enterprises",
        content=b'{"name": "Delizia",',
        headers={**STAFF, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


# Rules that need more than one request to show.


async def test_module_1_comes_first_unless_a_reason_is_given(client: httpx.AsyncClient) -> None:
    enterprise_id = (await created(client, "/v1/enterprises", ENTERPRISE))["id"]
    body = {"module": 5, "delivery": "direct", "delivery_cost": {"amount": "100"}}
    path = f"/v1/enterprises/{enterprise_id}/enrolments"
    refused = await post(client, path, body)
    assert refused.status_code == 409
    assert refused.json()["rule"] == "module-1-first"
    assert (await post(client, path, {**body, "exception_reason": "OSH emergency"})).is_success


async def test_the_size_range_needs_a_reason_outside_it(client: httpx.AsyncClient) -> None:
    small = {**ENTERPRISE, "workforce": {"women": 4, "men": 6}}
    refused = await post(client, "/v1/enterprises", small)
    assert refused.status_code == 409
    assert refused.json()["rule"] == "size-range-needs-reason"
    reasoned = {**small, "size_exception_reason": "a cooperative of a pilot cluster"}
    assert (await post(client, "/v1/enterprises", reasoned)).status_code == 201


async def test_a_tax_id_written_differently_is_the_same_tax_id(client: httpx.AsyncClient) -> None:
    await created(client, "/v1/enterprises", ENTERPRISE)
    again = await post(client, "/v1/enterprises", {**ENTERPRISE, "tax_id": "10 2030-4050"})
    assert again.status_code == 409
    assert again.json()["rule"] == "tax-id-registered-once"


async def test_nothing_is_enrolled_after_a_withdrawal(client: httpx.AsyncClient) -> None:
    s = await story(client)
    withdraw = WRITES["withdraw"]
    await post(client, withdraw.url(s), withdraw.body(s))
    enrol = WRITES["enrol"]
    response = await post(client, enrol.url(s), enrol.body(s))
    assert response.status_code == 409
    assert response.json()["rule"] == "no-enrolment-after-withdrawal"


async def test_a_training_names_a_registered_trainer(client: httpx.AsyncClient) -> None:
    s = await story(client)
    write = WRITES["record training"]
    response = await post(client, write.url(s), {**write.body(s), "trainer_id": "tr-404"})
    assert response.status_code == 409
    assert response.json()["rule"] == "training-needs-registered-trainer"


async def test_the_size_range_is_configured(settings: EnrolmentSettings) -> None:
    small = {**ENTERPRISE, "workforce": {"women": 4, "men": 6}}
    wider = settings.model_copy(update={"size_minimum": 5})
    async with serving(build_app(wider)) as client:
        assert (await post(client, "/v1/enterprises", small)).status_code == 201
    with pytest.raises(ValueError, match="size_minimum"):
        EnrolmentSettings(size_minimum=300, size_maximum=250)


async def test_a_correction_that_changes_nothing_keeps_the_version(
    client: httpx.AsyncClient,
) -> None:
    s = await story(client)
    before = await appended(client)
    same = {"sector": ENTERPRISE["sector"], "workforce": ENTERPRISE["workforce"]}
    response = await post(client, f"/v1/enterprises/{s.enterprise}", same, method="PATCH")
    assert response.status_code == 200
    assert response.json() == {"id": s.enterprise, "version": 3}
    assert await appended(client) == before


async def test_a_correction_with_nothing_to_correct_is_422(client: httpx.AsyncClient) -> None:
    s = await story(client)
    response = await post(
        client, f"/v1/enterprises/{s.enterprise}", {"corrected_on": "2017-04-01"}, method="PATCH"
    )
    assert response.status_code == 422
    assert "workforce, sector, chamber or name" in response.json()["detail"]


# Reads.


async def test_an_enterprise_reads_back_with_its_state_and_history(
    client: httpx.AsyncClient,
) -> None:
    s = await story(client)
    for name in ("record payment", "complete module", "publish case study", "correct details"):
        write = WRITES[name]
        await post(client, write.url(s), write.body(s), method=write.method)
    body = (await client.get(f"/v1/enterprises/{s.enterprise}", headers=STAFF)).json()
    assert body["version"] == 7
    assert (body["name"], body["tax_id"], body["region"]) == ("Delizia", "1020304050", "la_paz")
    assert body["workforce"] == {"women": 45, "men": 60}
    assert body["withdrawn"] is False
    [enrolment] = body["enrolments"]
    assert enrolment["enrolment_id"] == s.enrolment
    assert enrolment["trainings"] == 1
    assert enrolment["fees_paid"] == {"amount": "1500.00", "currency": "BOB"}
    assert enrolment["completed_on"] == "2017-06-01"
    assert [c["url"] for c in body["case_studies"]] == ["https://score.example.org/bo/delizia"]
    history = body["history"]
    assert [h["version"] for h in history] == [1, 2, 3, 4, 5, 6, 7]
    assert [h["type"].split(".")[-2] for h in history] == [
        "enterprise_registered",
        "enterprise_enrolled",
        "participants_trained",
        "training_fee_paid",
        "module_completed",
        "case_study_published",
        "enterprise_details_corrected",
    ]
    assert history[0]["data"]["tax_id"] == "1020304050"
    assert dt.datetime.fromisoformat(history[0]["time"]).tzinfo is not None


async def test_a_trainer_reads_back_with_certifications_and_history(
    client: httpx.AsyncClient,
) -> None:
    s = await story(client)
    certify = WRITES["certify trainer"]
    await post(client, certify.url(s), certify.body(s))
    body = (await client.get(f"/v1/trainers/{s.trainer}", headers=STAFF)).json()
    assert (body["version"], body["name"], body["sex"]) == (2, "Rosa Quispe", "female")
    assert body["certifications"] == [
        {"module": 1, "level": "trainer", "certified_on": "2017-06-01"},
        {"module": 5, "level": "trainer", "certified_on": "2017-06-01"},
    ]
    assert [h["version"] for h in body["history"]] == [1, 2]


@pytest.mark.parametrize("role", ["reader", "trainer", "chamber"])
async def test_names_and_tax_ids_are_shown_to_staff_and_admin_only(
    client: httpx.AsyncClient, role: Any
) -> None:
    s = await story(client)
    await post(client, f"/v1/enterprises/{s.enterprise}", {"name": "Delizia SRL"}, method="PATCH")
    headers = bearer(role, regions=["la_paz"] if role == "chamber" else [])
    enterprise = (await client.get(f"/v1/enterprises/{s.enterprise}", headers=headers)).json()
    assert enterprise["name"] is None and enterprise["tax_id"] is None
    for entry in enterprise["history"]:
        assert "name" not in entry["data"] and "tax_id" not in entry["data"]
    trainer = (await client.get(f"/v1/trainers/{s.trainer}", headers=headers)).json()
    assert trainer["name"] is None
    assert "name" not in trainer["history"][0]["data"]
    listed = (await client.get("/v1/enterprises", headers=headers)).json()
    assert [item["name"] for item in listed["items"]] == [None]
    paths = (f"/v1/enterprises/{s.enterprise}", f"/v1/trainers/{s.trainer}", "/v1/enterprises")
    text = " ".join([(await client.get(path, headers=headers)).text for path in paths])
    for personal in ("Delizia", "1020304050", "Rosa Quispe"):
        assert personal not in text


async def test_unknown_ids_are_404(client: httpx.AsyncClient) -> None:
    for path in ("/v1/enterprises/ent-404", "/v1/trainers/tr-404"):
        response = await client.get(path, headers=STAFF)
        assert response.status_code == 404
        assert response.json()["type"].endswith("/problems/not-found")


async def test_a_malformed_id_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/enterprises/not%20an%20id", headers=STAFF)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "enterprise_id"


async def test_a_chamber_sees_the_enterprises_and_trainers_of_its_regions_only(
    client: httpx.AsyncClient,
) -> None:
    s = await story(client)
    own = bearer("chamber", regions=["la_paz"])
    foreign = bearer("chamber", regions=["santa_cruz", "beni"])
    for path in (f"/v1/enterprises/{s.enterprise}", f"/v1/trainers/{s.trainer}"):
        assert (await client.get(path, headers=own)).status_code == 200
        assert (await client.get(path, headers=foreign)).status_code == 404


async def register_in(client: httpx.AsyncClient, region: str, n: int) -> str:
    body = {**ENTERPRISE, "region": region, "tax_id": f"{region}-{n}"}
    enterprise_id: str = (await created(client, "/v1/enterprises", body))["id"]
    return enterprise_id


async def test_enterprises_are_listed_by_region_a_page_at_a_time(
    client: httpx.AsyncClient,
) -> None:
    la_paz = [await register_in(client, "la_paz", n) for n in range(5)]
    santa_cruz = [await register_in(client, "santa_cruz", n) for n in range(2)]
    pages, cursor = [], None
    while True:
        params = {"region": "la_paz", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/enterprises", params=params, headers=STAFF)).json()
        pages.append([item["id"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for p in pages for i in p] == la_paz
    everything = (await client.get("/v1/enterprises", headers=STAFF)).json()
    assert [item["id"] for item in everything["items"]] == la_paz + santa_cruz
    assert everything["next_cursor"] is None
    first = everything["items"][0]
    assert first["name"] == "Delizia"
    assert first["workforce"] == {"women": 40, "men": 60}
    assert first["version"] == 1


async def test_the_list_follows_corrections_and_withdrawals(client: httpx.AsyncClient) -> None:
    s = await story(client)
    for name in ("correct details", "withdraw"):
        write = WRITES[name]
        await post(client, write.url(s), write.body(s), method=write.method)
    [item] = (await client.get("/v1/enterprises", headers=STAFF)).json()["items"]
    assert item["workforce"] == {"women": 45, "men": 60}
    assert item["withdrawn_on"] == "2017-07-01"
    assert item["version"] == 5


async def test_a_chamber_lists_its_own_regions_only(client: httpx.AsyncClient) -> None:
    await register_in(client, "la_paz", 1)
    await register_in(client, "santa_cruz", 1)
    await register_in(client, "beni", 1)
    chamber = bearer("chamber", regions=["la_paz", "beni"])
    page = (await client.get("/v1/enterprises", headers=chamber)).json()
    assert sorted(item["region"] for item in page["items"]) == ["beni", "la_paz"]
    own = await client.get("/v1/enterprises", params={"region": "beni"}, headers=chamber)
    assert [item["region"] for item in own.json()["items"]] == ["beni"]
    other = await client.get("/v1/enterprises", params={"region": "santa_cruz"}, headers=chamber)
    assert other.status_code == 403


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"region": "atlantis"}, "region"),
        ({"limit": 0}, "limit"),
        ({"limit": 500}, "limit"),
        ({"cursor": "not an id"}, "cursor"),
        ({"country": "Bolivia"}, "country"),
    ],
)
async def test_a_bad_list_query_is_422(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await client.get("/v1/enterprises", params=params, headers=STAFF)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


# Who may do what: every endpoint × every kind of token.


def _expired() -> dict[str, str]:
    token = TokenAuthority(TEST_SECRET).issue("staff", ttl=dt.timedelta(seconds=-1))
    return {"Authorization": f"Bearer {token}"}


def _foreign_key() -> dict[str, str]:
    token = TokenAuthority("another-secret-another-secret-0123456789").issue("staff")
    return {"Authorization": f"Bearer {token}"}


TOKENS: Final[dict[str, Callable[[], dict[str, str]]]] = {
    "no token": dict,
    "not a token": lambda: {"Authorization": "Bearer not-a-token"},
    "expired": _expired,
    "signed with another key": _foreign_key,
    "admin": lambda: bearer("admin"),
    "staff": lambda: bearer("staff"),
    "trainer": lambda: bearer("trainer"),
    "chamber": lambda: bearer("chamber", regions=["la_paz"]),
    "reader": lambda: bearer("reader"),
}
WRITE_STATUS: Final = {"admin": None, "staff": None, "trainer": 403, "chamber": 403, "reader": 403}
READS: Final = {
    "get enterprise": "/v1/enterprises/{enterprise}",
    "list enterprises": "/v1/enterprises?region=la_paz",
    "get trainer": "/v1/trainers/{trainer}",
}


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("name", WRITES)
async def test_staff_and_admin_write_and_nobody_else(
    client: httpx.AsyncClient, name: str, token: str
) -> None:
    write, s = WRITES[name], await story(client)
    before = await appended(client)
    headers = TOKENS[token]()
    response = await post(client, write.url(s), write.body(s), headers, method=write.method)
    expected = WRITE_STATUS.get(token, 401) or write.status
    assert response.status_code == expected, response.text
    if expected == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"
    if expected >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        assert await appended(client) == before


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("name", READS)
async def test_every_valid_token_reads(client: httpx.AsyncClient, name: str, token: str) -> None:
    s = await story(client)
    path = READS[name].format(enterprise=s.enterprise, trainer=s.trainer)
    response = await client.get(path, headers=TOKENS[token]())
    expected = 200 if token in WRITE_STATUS else 401
    assert response.status_code == expected, response.text


async def test_if_match_on_an_unknown_enterprise_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/enterprises/no-such-enterprise/withdrawal",
        json={"reason": "closed"},
        headers={**STAFF, "If-Match": '"3"'},
    )
    assert response.status_code == 404, response.text
