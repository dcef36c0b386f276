"""Every rule of the enrolment deciders, and the enterprise list's one, is reachable over
HTTP: for each, the requests that lead to it and the answer that names it (409 for a refusal,
422 for input the history makes invalid), with nothing appended by the refused request.

The table must hold every rule the deciders and the list can name: a rule no request can
reach is dead code, and a new rule without a row here fails `test_the_table_holds_every_rule`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

import score_enrolment.domain
import score_enrolment.enterprise_list
from score_testing.decider import rules_named
from score_testing.service import bearer

STAFF: Final = bearer("staff")
ENTERPRISE: Final[dict[str, Any]] = {
    "name": "Delizia",
    "tax_id": "1020304050",
    "region": "la_paz",
    "sector": "food",
    "chamber": "CNI",
    "workforce": {"women": 40, "men": 44},
    "registered_on": "2017-02-01",
}
FEW = {"managers": {"women": 1, "men": 0}, "workers": {"women": 1, "men": 1}}


async def appended(client: httpx.AsyncClient) -> int:
    pending: int = (await client.get("/readyz")).json()["checks"]["outbox_pending"]
    return pending


@dataclass
class Story:
    """An enterprise registered on 2017-02-01 and enrolled in module 1 on 2017-03-01, and a
    trainer; each step a request, as programme staff would make it."""

    client: httpx.AsyncClient
    enterprise: str = ""
    enrolment: str = ""
    trainer: str = ""
    appended_before_last: int = 0
    """Events appended before the last request was sent."""

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        self.appended_before_last = await appended(self.client)
        return await self.client.post(path, json=body, headers=STAFF)

    async def ok(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.post(path, body)
        assert response.is_success, response.text
        answer: dict[str, Any] = response.json()
        return answer

    @property
    def at(self) -> str:
        return f"/v1/enterprises/{self.enterprise}"

    async def begin(self) -> Story:
        self.enterprise = (await self.ok("/v1/enterprises", ENTERPRISE))["id"]
        enrol = {"module": 1, "delivery": "direct", "delivery_cost": {"amount": "3000"}}
        self.enrolment = (
            await self.ok(f"{self.at}/enrolments", {**enrol, "enrolled_on": "2017-03-01"})
        )["enrolment_id"]
        trainer = {"name": "Rosa", "sex": "female", "region": "la_paz", "organisation": "CNI"}
        self.trainer = (await self.ok("/v1/trainers", {**trainer, "registered_on": "2017-01-10"}))[
            "id"
        ]
        return self

    async def train(self, on: str = "2017-03-10", **body: Any) -> httpx.Response:
        return await self.post(
            f"{self.at}/trainings",
            {"enrolment_id": self.enrolment, "trained_on": on, **FEW, **body},
        )

    async def complete(
        self, on: str = "2017-04-01", enrolment: str | None = None
    ) -> httpx.Response:
        return await self.post(
            f"{self.at}/completions",
            {"enrolment_id": enrolment or self.enrolment, "completed_on": on},
        )

    async def withdraw(self, on: str = "2017-05-01") -> httpx.Response:
        return await self.post(f"{self.at}/withdrawal", {"reason": "closing", "withdrawn_on": on})

    async def enrol(self, module: int, **body: Any) -> httpx.Response:
        return await self.post(
            f"{self.at}/enrolments",
            {"module": module, "delivery": "direct", "delivery_cost": {"amount": "10"}, **body},
        )

    async def pay(self, **body: Any) -> httpx.Response:
        payment = {"enrolment_id": self.enrolment, "amount": {"amount": "100"}, "payer": "sponsor"}
        return await self.post(f"{self.at}/payments", {**payment, **body})

    async def case_study(self, url: str = "https://score.example.org/delizia") -> httpx.Response:
        return await self.post(
            f"{self.at}/case-studies",
            {"title": "Delizia", "url": url, "published_on": "2017-06-01"},
        )

    async def certify(self) -> httpx.Response:
        return await self.post(
            f"/v1/trainers/{self.trainer}/certifications", {"modules": [1], "level": "trainer"}
        )

    async def then(self, ok: httpx.Response) -> None:
        assert ok.is_success, ok.text


Step = Callable[[Story], Awaitable[httpx.Response]]


async def registered_twice(s: Story) -> httpx.Response:
    return await s.post("/v1/enterprises", {**ENTERPRISE, "name": "Otra"})


async def too_small(s: Story) -> httpx.Response:
    small = {"women": 5, "men": 5}
    return await s.post("/v1/enterprises", {**ENTERPRISE, "tax_id": "9", "workforce": small})


async def enrolled_after_withdrawal(s: Story) -> httpx.Response:
    await s.then(await s.withdraw())
    return await s.enrol(2, exception_reason="pilot")


async def module_2_first(s: Story) -> httpx.Response:
    other = await s.ok("/v1/enterprises", {**ENTERPRISE, "tax_id": "777"})
    s.enterprise = other["id"]
    return await s.enrol(2)


async def completed_twice(s: Story) -> httpx.Response:
    await s.then(await s.train())
    await s.then(await s.complete())
    return await s.complete()


async def completed_after_withdrawal(s: Story) -> httpx.Response:
    await s.then(await s.train())
    await s.then(await s.withdraw(on="2017-04-01"))
    return await s.complete(on="2017-05-01")


async def trained_after_withdrawal(s: Story) -> httpx.Response:
    await s.then(await s.withdraw(on="2017-04-01"))
    return await s.train(on="2017-05-01")


async def withdrawn_twice(s: Story) -> httpx.Response:
    await s.then(await s.withdraw())
    return await s.withdraw()


async def published_twice(s: Story) -> httpx.Response:
    await s.then(await s.train())
    await s.then(await s.case_study())
    return await s.case_study()


async def certified_twice(s: Story) -> httpx.Response:
    await s.then(await s.certify())
    return await s.certify()


async def completed_before_training(s: Story) -> httpx.Response:
    await s.then(await s.train(on="2017-03-10"))
    return await s.complete(on="2017-03-05")


async def withdrawn_before_training(s: Story) -> httpx.Response:
    await s.then(await s.train(on="2017-03-10"))
    return await s.withdraw(on="2017-03-05")


RULES: Final[dict[str, tuple[int, Step]]] = {
    "tax-id-registered-once": (409, registered_twice),
    "size-range-needs-reason": (409, too_small),
    "no-enrolment-after-withdrawal": (409, enrolled_after_withdrawal),
    "one-enrolment-per-module": (409, lambda s: s.enrol(1)),
    "module-1-first": (409, module_2_first),
    "training-needs-enrolment": (409, lambda s: s.train(enrolment_id="nope")),
    "training-needs-registered-trainer": (409, lambda s: s.train(trainer_id="nobody")),
    "no-training-after-withdrawal": (409, trained_after_withdrawal),
    "payment-needs-enrolment": (409, lambda s: s.pay(enrolment_id="nope")),
    "completion-needs-enrolment": (409, lambda s: s.complete(enrolment="nope")),
    "completion-needs-training": (409, lambda s: s.complete()),
    "completed-once": (409, completed_twice),
    "no-completion-after-withdrawal": (409, completed_after_withdrawal),
    "already-withdrawn": (409, withdrawn_twice),
    "case-study-needs-training": (409, lambda s: s.case_study()),
    "case-study-published-once": (409, published_twice),
    "already-certified": (409, certified_twice),
    "date-before-registration": (422, lambda s: s.enrol(2, enrolled_on="2017-01-15")),
    "date-before-enrolment": (422, lambda s: s.train(on="2017-02-15")),
    "date-before-training": (422, completed_before_training),
    "withdrawal-after-activity": (422, withdrawn_before_training),
    "fee-in-enrolment-currency": (
        422,
        lambda s: s.pay(amount={"amount": "100", "currency": "USD"}),
    ),
    "training-has-participants": (
        422,
        lambda s: s.train(managers={"women": 0, "men": 0}, workers={"women": 0, "men": 0}),
    ),
    "participants-within-workforce": (
        422,
        lambda s: s.train(managers={"women": 0, "men": 0}, workers={"women": 50, "men": 50}),
    ),
}


def test_the_table_holds_every_rule() -> None:
    folder = Path(score_enrolment.domain.__file__).parent
    the_list = Path(score_enrolment.enterprise_list.__file__)
    assert set(RULES) == rules_named(*folder.glob("*.py"), the_list)


@pytest.mark.parametrize("rule", sorted(RULES))
async def test_the_rule_is_reached_over_http(client: httpx.AsyncClient, rule: str) -> None:
    status, step = RULES[rule]
    story = await Story(client).begin()
    response = await step(story)
    assert response.status_code == status, response.text
    assert response.json()["rule"] == rule
    assert await appended(client) == story.appended_before_last
