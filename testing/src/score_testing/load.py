"""A load of commands on the enrolment service, as programme staff would send them, that
keeps every command it was answered 2xx for.

Each enterprise goes through the programme's first steps: registered, enrolled in Module 1,
trained. Every command carries its own `Idempotency-Key` and is sent again with the same key
until it is answered 2xx (or refused, which fails the load): a command whose answer was lost
in a crash is either remembered by the service, which answers the first answer again, or
was never committed, and is appended now. So when the load ends, what it acknowledged is
exactly what the store must hold, whatever was killed meanwhile.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

REGIONS = (
    "la_paz",
    "cochabamba",
    "santa_cruz",
    "oruro",
    "potosi",
    "chuquisaca",
    "tarija",
    "beni",
    "pando",
)
PARTICIPANTS = {"managers": {"women": 1, "men": 1}, "workers": {"women": 2, "men": 1}}
"""Who each enterprise sends to its training: 5 participants."""
PARTICIPANTS_PER_TRAINING = 5
COMMANDS_PER_ENTERPRISE = 3

Command = Literal["register", "enrol", "train"]


class LoadRefused(AssertionError):
    """A command of the load was answered with a 4xx: the load, or the service, is wrong."""


@dataclass(frozen=True)
class Acknowledged:
    """One command the service answered 2xx, and what it answered."""

    command: Command
    idempotency_key: str
    enterprise_id: str
    version: int
    region: str
    employees: int


@dataclass
class LoadResult:
    acknowledged: list[Acknowledged] = field(default_factory=list)
    attempts_again: int = 0
    """Commands sent again because no answer came, or a 5xx did (the service or its database
    away, say)."""
    seconds: float = 0.0

    def of(self, command: Command) -> list[Acknowledged]:
        return [a for a in self.acknowledged if a.command == command]

    def expected_indicators(self) -> dict[str, int]:
        """What the indicators must count of what was acknowledged, and nothing else."""
        trained = self.of("train")
        return {
            "enterprises_registered": len(self.of("register")),
            "enterprises_enrolled": len({a.enterprise_id for a in self.of("enrol")}),
            "enterprises_trained": len({a.enterprise_id for a in trained}),
            "participants_trained": PARTICIPANTS_PER_TRAINING * len(trained),
            "employees_benefited": sum(a.employees for a in trained),
        }


class EnrolmentLoad:
    """`enterprises` enterprises taken through register → enrol → train by `concurrency`
    staff at once, against the enrolment service at `url`.

    `acknowledged` grows as answers come, so a test can kill something after so many.
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        enterprises: int,
        concurrency: int = 8,
        give_up_after: float = 300.0,
        first: int = 0,
        rate: float | None = None,
        tag: str | None = None,
    ) -> None:
        self.url = url
        self.headers = dict(headers)
        self.enterprises = enterprises
        self.concurrency = concurrency
        self.give_up_after = give_up_after
        """Seconds one command is sent again for before the load fails."""
        self.tag = tag or uuid.uuid4().hex[:8]
        self.result = LoadResult()
        self.first = first
        """The first enterprise's number: another load on the same system starts after this
        one's, as each enterprise's tax id is its own."""
        self._numbers = itertools.count(first)
        self.rate = rate
        """Commands per second at most, all staff together: a load that lasts long enough
        for the kills a test means to make during it, however fast the machine."""
        self._next_send = 0.0

    @property
    def commands(self) -> int:
        return self.enterprises * COMMANDS_PER_ENTERPRISE

    @property
    def acknowledged(self) -> int:
        return len(self.result.acknowledged)

    async def run(self) -> LoadResult:
        began = time.monotonic()
        timeout = httpx.Timeout(60.0, connect=5.0)
        async with httpx.AsyncClient(
            base_url=self.url, headers=self.headers, timeout=timeout, trust_env=False
        ) as client:
            async with asyncio.TaskGroup() as staff:
                for _ in range(self.concurrency):
                    staff.create_task(self._one_member_of_staff(client))
        self.result.seconds = time.monotonic() - began
        return self.result

    async def _one_member_of_staff(self, client: httpx.AsyncClient) -> None:
        while (number := next(self._numbers)) < self.first + self.enterprises:
            await self._take_through(client, number)

    async def _take_through(self, client: httpx.AsyncClient, number: int) -> None:
        region = REGIONS[number % len(REGIONS)]
        workforce = {"women": 20 + number % 50, "men": 25}
        employees = workforce["women"] + workforce["men"]
        registered = await self._send(
            client,
            "register",
            "/v1/enterprises",
            {
                "name": f"Empresa {self.tag} {number}",
                "tax_id": f"{1_000_000_000 + number}",
                "region": region,
                "sector": "textiles",
                "chamber": "Cámara Nacional de Industrias",
                "workforce": workforce,
            },
            region=region,
            employees=employees,
        )
        enterprise = registered["id"]
        enrolled = await self._send(
            client,
            "enrol",
            f"/v1/enterprises/{enterprise}/enrolments",
            {"module": 1, "delivery": "direct", "delivery_cost": {"amount": "4500"}},
            region=region,
            employees=employees,
        )
        await self._send(
            client,
            "train",
            f"/v1/enterprises/{enterprise}/trainings",
            {"enrolment_id": enrolled["enrolment_id"], **PARTICIPANTS},
            region=region,
            employees=employees,
        )

    async def _paced(self) -> None:
        if self.rate is None:
            return
        now = time.monotonic()
        at = max(now, self._next_send)
        self._next_send = at + 1.0 / self.rate
        await asyncio.sleep(at - now)

    async def _send(
        self,
        client: httpx.AsyncClient,
        command: Command,
        path: str,
        body: dict[str, Any],
        *,
        region: str,
        employees: int,
    ) -> dict[str, Any]:
        key = f"{self.tag}-{uuid.uuid4().hex}"
        deadline = time.monotonic() + self.give_up_after
        pause = 0.05
        while True:
            await self._paced()
            try:
                response = await client.post(path, json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError:
                response = None
            if response is not None and response.is_success:
                answer: dict[str, Any] = response.json()
                self.result.acknowledged.append(
                    Acknowledged(command, key, answer["id"], answer["version"], region, employees)
                )
                return answer
            if response is not None and response.status_code < 500:
                raise LoadRefused(f"{command} {path}: {response.status_code} {response.text}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{command} {path} not answered 2xx in {self.give_up_after}s")
            self.result.attempts_again += 1
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)
