"""Fifty writers at once on one enterprise, over HTTP, on SQLite and on PostgreSQL: the
enterprise's versions have no gap and no duplicate, on the service and on its stream; the
losers are told (409 without If-Match when every retry lost, 412 with a stale If-Match) and
append nothing; fifty copies of one request with one Idempotency-Key append one event.

The service runs in uvicorn on a real nats-server, its relay publishing to JetStream, where
the versions are read back as a consumer sees them. The soak variant makes 10,000 writes.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from score_enrolment.main import build_app
from score_enrolment.settings import EnrolmentSettings
from score_testing.browser import served
from score_testing.service import TEST_SECRET, bearer
from score_testing.streams import stream_messages, wait_for

pytestmark = [pytest.mark.nats, pytest.mark.timeout(300)]

WRITERS: Final = 50
STAFF: Final = bearer("staff")
ENTERPRISE: Final[dict[str, Any]] = {
    "name": "Maderas del Oriente",
    "tax_id": "9080706050",
    "region": "santa_cruz",
    "sector": "furniture",
    "chamber": "CAINCO",
    "workforce": {"women": 100, "men": 100},
    "registered_on": "2016-05-02",
}
TRAINING: Final[dict[str, Any]] = {
    "trained_on": "2016-06-10",
    "managers": {"women": 1, "men": 1},
    "workers": {"women": 1, "men": 2},
}


@pytest.fixture
async def api(tmp_path: Path, database_url: str, nats_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = EnrolmentSettings(
        database_url=database_url,
        nats_url=nats_url,
        auth_secret=TEST_SECRET,
        log_format="console",
        log_level="warning",
    )
    # Idle connections let go before uvicorn's keep-alive (5 s) would close them under a
    # request being sent: a round waiting on JetStream leaves them idle that long.
    limits = httpx.Limits(max_connections=WRITERS, keepalive_expiry=2)
    async with (
        served(build_app(settings)) as server,
        httpx.AsyncClient(base_url=server.url, limits=limits, timeout=120) as client,
    ):
        yield client


async def enrolled(api: httpx.AsyncClient, tax_id: str) -> tuple[str, str]:
    """An enterprise at version 2: registered, enrolled in module 1."""
    enterprise = await api.post(
        "/v1/enterprises", json={**ENTERPRISE, "tax_id": tax_id}, headers=STAFF
    )
    assert enterprise.status_code == 201, enterprise.text
    enterprise_id = enterprise.json()["id"]
    enrolment = await api.post(
        f"/v1/enterprises/{enterprise_id}/enrolments",
        json={
            "module": 1,
            "delivery": "direct",
            "delivery_cost": {"amount": "4000"},
            "enrolled_on": "2016-06-01",
        },
        headers=STAFF,
    )
    assert enrolment.status_code == 201, enrolment.text
    return enterprise_id, enrolment.json()["enrolment_id"]


async def version_of(api: httpx.AsyncClient, enterprise_id: str) -> int:
    enterprise = await api.get(f"/v1/enterprises/{enterprise_id}", headers=STAFF)
    version: int = enterprise.json()["version"]
    return version


async def published_versions(nats_url: str, enterprise_id: str) -> list[int]:
    """The enterprise's `streamversion`s on SCORE_ENROLMENT, in stream order."""
    messages = await stream_messages(nats_url, "SCORE_ENROLMENT")
    subject = f"enterprise/{enterprise_id}"
    return [body["streamversion"] for _headers, body in messages if body["subject"] == subject]


async def race(api: httpx.AsyncClient, nats_url: str, rounds: int) -> dict[str, int]:
    """`rounds` of fifty writers without If-Match, then fifty naming one version, then fifty
    copies of one keyed request; each round on an enterprise of its own."""
    outcomes: Counter[str] = Counter()
    for round_ in range(rounds):
        enterprise_id, enrolment_id = await enrolled(api, f"90{round_:08d}")
        path = f"/v1/enterprises/{enterprise_id}/trainings"
        body = {**TRAINING, "enrolment_id": enrolment_id}

        free = await asyncio.gather(
            *(api.post(path, json=body, headers=STAFF) for _ in range(WRITERS))
        )
        won = sorted(a.json()["version"] for a in free if a.status_code == 201)
        lost = [a for a in free if a.status_code != 201]
        assert {(a.status_code, a.json()["rule"]) for a in lost} <= {(409, "concurrent-change")}
        assert won == list(range(3, 3 + len(won))), won  # no gap, no duplicate
        at = 2 + len(won)
        assert await version_of(api, enterprise_id) == at  # the losers appended nothing

        named = {**STAFF, "If-Match": f'"{at}"'}
        bound = await asyncio.gather(
            *(api.post(path, json=body, headers=named) for _ in range(WRITERS))
        )
        assert sorted(a.status_code for a in bound) == [201] + [412] * (WRITERS - 1)
        assert await version_of(api, enterprise_id) == at + 1

        keyed = {**STAFF, "Idempotency-Key": f"one-training-{round_}"}
        copies = await asyncio.gather(
            *(api.post(path, json=body, headers=keyed) for _ in range(WRITERS))
        )
        assert {a.status_code for a in copies} == {201}
        assert len({a.text for a in copies}) == 1  # one answer, the first, for all
        assert await version_of(api, enterprise_id) == at + 2

        expected = list(range(1, at + 3))
        await wait_for(
            functools.partial(_published, nats_url, enterprise_id, len(expected)), within=60
        )
        assert await published_versions(nats_url, enterprise_id) == expected
        outcomes.update(
            {
                "writes": 3 * WRITERS,
                "won": len(won) + 2,
                "concurrent-change": len(lost),
                "412": WRITERS - 1,
                "replayed": WRITERS - 1,
            }
        )
    return dict(outcomes)


async def _published(nats_url: str, enterprise_id: str, count: int) -> bool:
    return len(await published_versions(nats_url, enterprise_id)) >= count


async def test_fifty_writers_at_once_leave_versions_without_gap_or_duplicate(
    api: httpx.AsyncClient, nats_url: str
) -> None:
    outcomes = await race(api, nats_url, rounds=1)
    print(outcomes)


@pytest.mark.soak
@pytest.mark.timeout(3600)
async def test_ten_thousand_racing_writes_leave_versions_without_gap_or_duplicate(
    api: httpx.AsyncClient, nats_url: str
) -> None:
    outcomes = await race(api, nats_url, rounds=67)  # 67 × 150 writes
    assert outcomes["writes"] >= 10_000
    print(outcomes)
