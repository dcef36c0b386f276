"""Poison on a stream: each kind dead-lettered with its reason, listed by `score dead-letters
list`, counted nowhere, and the consumer goes on with the next good event (ADR 027).

The indicators service runs as its own process against a real nats-server that lets anyone
publish (as a broker whose password leaked would): what the permissions of ADR 021 would
refuse is what the consumer must refuse by itself.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from score_chassis.jetstream import ensure_stream
from score_cli.main import main
from score_contracts.events import EnterpriseRegistered, VisitScheduled
from score_contracts.examples import example, example_envelope
from score_contracts.subjects import STREAMS
from score_testing.process import service_process
from score_testing.service import bearer
from score_testing.streams import wait_for

pytestmark = [pytest.mark.nats, pytest.mark.e2e, pytest.mark.timeout(120)]

ADMIN = bearer("admin")
REGISTERED = "score.bo.la_paz.enrolment.enterprise_registered.v1"


def registration(enterprise_id: str, **envelope: Any) -> dict[str, Any]:
    event = example(EnterpriseRegistered).model_copy(
        update={"enterprise_id": enterprise_id, "region": "la_paz"}
    )
    body: dict[str, Any] = example_envelope(event).model_dump(mode="json")
    return {**body, **envelope}


def visit_on_enrolment() -> dict[str, Any]:
    body: dict[str, Any] = example_envelope(example(VisitScheduled)).model_dump(mode="json")
    return body


def poison() -> dict[str, tuple[str, bytes, str]]:
    """Each kind of poison: its subject, its bytes, and what its dead letter's error says."""
    invalid = registration("ent-poison-invalid")
    invalid["data"]["workforce"]["women"] = -3
    future = registration("ent-poison-v2", type="org.ilo.score.enrolment.enterprise_registered.v2")
    unknown = registration("ent-poison-unknown", type="org.ilo.score.enrolment.enterprise_sold.v1")
    from_visits = registration("ent-poison-source", source="/score/bo/visits")
    return {
        "invalid JSON": (REGISTERED, b'{"specversion": "1.0", "type": ', "unparseable"),
        "schema-invalid data": (REGISTERED, dumps(invalid), "workforce.women"),
        "unknown type": (
            "score.bo.la_paz.enrolment.enterprise_sold.v1",
            dumps(unknown),
            "unknown event type org.ilo.score.enrolment.enterprise_sold.v1",
        ),
        "future major version": (
            "score.bo.la_paz.enrolment.enterprise_registered.v2",
            dumps(future),
            "unknown event type org.ilo.score.enrolment.enterprise_registered.v2",
        ),
        "another context's event": (
            "score.bo.la_paz.enrolment.visit_scheduled.v1",
            dumps(visit_on_enrolment()),
            "wrong producer: a visits event on SCORE_ENROLMENT",
        ),
        "another producer's source": (
            REGISTERED,
            dumps(from_visits),
            "wrong producer: source /score/bo/visits",
        ),
    }


def dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


async def figures(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/v1/indicators", params={"region": "la_paz"}, headers=ADMIN)
    assert response.status_code == 200, response.text
    indicators: dict[str, Any] = response.json()["indicators"]
    return indicators


async def test_poison_is_dead_lettered_with_its_reason_listed_and_the_consumer_goes_on(
    tmp_path: Path, nats_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    kinds = poison()
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        await ensure_stream(js, STREAMS["enrolment"])
        async with service_process("score_indicators", tmp_path, nats_url) as indicators:
            for name, (subject, payload, _) in kinds.items():
                await js.publish(subject, payload, headers={"Nats-Msg-Id": f"poison {name}"})
            good = registration("ent-after-the-poison")
            await js.publish(REGISTERED, dumps(good), headers={"Nats-Msg-Id": good["id"]})

            async with httpx.AsyncClient(base_url=indicators.url, trust_env=False) as http:
                # The good event after the poison is counted: the consumer went on. Then
                # nothing is left to read, and none of the poison counted, though two of them
                # were registrations and one a visit.
                await wait_for(lambda: _registered(http), within=30)
                await wait_for(lambda: _read_everything(http), within=30)
                await wait_for(lambda: _registered(http), within=30)  # built, if it was being
                counted = await figures(http)
                assert (counted["enterprises_registered"], counted["visits_scheduled"]) == (1, 0)

            arguments = ["dead-letters", "list", "--url", indicators.url, "--json"]
            token = ADMIN["Authorization"].removeprefix("Bearer ")
            code = await asyncio.to_thread(
                main, [*arguments, "--token", token, "--service", "indicators"]
            )
            listed: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
            assert code == 0
            code = await asyncio.to_thread(
                main, ["dead-letters", "list", "--url", indicators.url, "--token", token]
            )
            table = capsys.readouterr().out
    finally:
        await client.close()

    assert len(listed) == len(kinds), listed
    assert {item["consumer"] for item in listed} == {"indicators-projection-enrolment"}
    errors = [item["error"] for item in listed]
    for name, (_, _, reason) in kinds.items():
        assert any(reason in error for error in errors), f"{name}: {reason!r} not in {errors}"
    # The table an operator reads names each of them too, without the payloads.
    assert code == 0 and len(table.splitlines()) == 1 + len(kinds), table
    assert "Chiquitanas" not in table and "Chiquitanas" not in json.dumps(listed)


async def _registered(http: httpx.AsyncClient) -> int:
    """Enterprises registered in La Paz; 0 while the projection catches up (a 503: the stream
    held events when the consumer first read it, so the view is being built)."""
    response = await http.get("/v1/indicators", params={"region": "la_paz"}, headers=ADMIN)
    if response.status_code == 503 and response.json()["type"].endswith("/rebuilding"):
        return 0
    assert response.status_code == 200, response.text
    value: int = response.json()["indicators"]["enterprises_registered"]
    return value


async def _read_everything(http: httpx.AsyncClient) -> bool:
    checks = (await http.get("/readyz")).json()["checks"]
    lag = checks["consumers"]["indicators-projection-enrolment"]["lag"]
    return bool(lag == 0 and checks["dead_letters"] == len(poison()))
