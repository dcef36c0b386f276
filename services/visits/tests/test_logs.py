"""No personal data reaches the visits service's logs.

The service runs as it is deployed, as its own process logging JSON to stderr and consuming a
real stream. It reads enrolment events full of names and tax ids, and takes visits whose
cancellation reason and improvements name people; its log is then searched for all of them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import nats
import pytest

from score_chassis.jetstream import ensure_stream
from score_contracts.events import (
    EnterpriseEnrolled,
    EnterpriseRegistered,
    Event,
    TrainerCertified,
    TrainerRegistered,
)
from score_contracts.examples import ENTERPRISE_ID, TRAINER_ID, example, example_envelope
from score_contracts.subjects import STREAMS, subject_for
from score_testing.process import service_process
from score_testing.service import bearer
from score_testing.streams import wait_for

pytestmark = pytest.mark.nats

PERSONAL = (
    "Confecciones Chiquitanas",  # the enterprise's name
    "1028547021",  # its tax id
    "María Choque Mamani",  # the trainer's name
    "Choque",
    "Rosa Quispe",  # named in a cancellation's reason and an improvement
    "Quispe",
)


async def test_names_never_reach_the_logs(tmp_path: Path, nats_url: str) -> None:
    await _publish(
        nats_url,
        example(EnterpriseRegistered),
        example(EnterpriseEnrolled),
        example(TrainerRegistered),
        example(TrainerCertified),
    )
    async with (
        service_process("score_visits", tmp_path, nats_url) as service,
        httpx.AsyncClient(
            base_url=service.url, headers=bearer("trainer"), trust_env=False
        ) as client,
    ):
        visit = {"enterprise_id": ENTERPRISE_ID, "trainer_id": TRAINER_ID, "module": 1}
        scheduled = await wait_for(lambda: _scheduled(client, visit), within=30)
        completed = await client.post(
            f"/v1/visits/{scheduled}/completion",
            json={
                "duration_hours": "2",
                "improvements": [{"area": "Almacén", "description": "5S con Rosa Quispe"}],
            },
        )
        assert completed.status_code == 200, completed.text
        other = await _scheduled(client, visit)
        assert other is not None
        cancelled = await client.post(
            f"/v1/visits/{other}/cancellation", json={"reason": "Rosa Quispe está enferma"}
        )
        assert cancelled.status_code == 200, cancelled.text
        refused = await client.post(
            f"/v1/visits/{other}/cancellation", json={"reason": "Rosa Quispe otra vez"}
        )
        assert refused.status_code == 409

    logged = service.log()
    # The service's own log was read, with what it says of each command and refusal.
    assert '"event": "command.handled"' in logged, logged
    assert '"rule": "visit-already-cancelled"' in logged, logged
    for personal in PERSONAL:
        assert personal not in logged


async def _scheduled(client: httpx.AsyncClient, visit: dict[str, object]) -> str | None:
    """The new visit's id, or None while the service is starting or its views are behind."""
    try:
        response = await client.post("/v1/visits", json=visit)
    except httpx.TransportError:
        await asyncio.sleep(0.1)
        return None
    if response.status_code == 409 and response.json()["type"].endswith("/problems/not-known-yet"):
        return None
    assert response.status_code == 201, response.text
    visit_id: str = response.json()["id"]
    return visit_id


async def _publish(nats_url: str, *events: Event) -> None:
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        await ensure_stream(js, STREAMS["enrolment"])
        versions: dict[str, int] = {}
        for event in events:
            aggregate = event.aggregate_subject
            versions[aggregate] = versions.get(aggregate, 0) + 1
            envelope = example_envelope(event, stream_version=versions[aggregate])
            await js.publish(
                subject_for(event, "bo", "santa_cruz"),
                envelope.model_dump_json().encode(),
                headers={"Nats-Msg-Id": envelope.id},
            )
    finally:
        await client.close()
