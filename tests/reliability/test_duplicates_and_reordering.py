"""Scenario 4, duplicates and reordering: every event of the enrolment stream delivered twice,
in shuffled order, to an indicators service that reads it from its start. The counts are
exact, and every milestone is announced once.

The history is made for real (enrolment as a process, under a load); then the stream is
emptied and filled again with two copies of each message under new message ids, so that
JetStream's de-duplication lets both through (as a republish outside its duplicate window
would), all shuffled: a training may come before its enterprise's registration, a copy
before its original. Only the consumers' inbox and the order-free projection stand between
that and a wrong count (ADR 002).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import httpx
import nats
import pytest

from score_cli.broker_config import passwords, with_credentials
from score_cli.up import Service
from score_testing.load import REGIONS, EnrolmentLoad
from score_testing.process import service_process
from score_testing.reconcile import (
    Figures,
    StreamMessage,
    indicator_differences,
    indicators_become,
    record,
    stream_contents,
    stream_ids,
)
from score_testing.service import bearer
from score_testing.streams import wait_for
from score_testing.supervised import SupervisedSystem

pytestmark = [pytest.mark.e2e, pytest.mark.nats]

STREAM = "SCORE_ENROLMENT"
COPIES = 2


async def _refill_shuffled_twice(url: str, messages: list[StreamMessage], seed: int) -> int:
    """Empty the stream, then publish each message `COPIES` times under new message ids, in
    shuffled order; how many were published."""
    copies = [(m, n) for m in messages for n in range(COPIES)]
    random.Random(seed).shuffle(copies)
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        await js.purge_stream(STREAM)
        for message, n in copies:
            # The relay's own headers (its expectation of the last id) meant its order only.
            kept = {k: v for k, v in message.headers.items() if not k.startswith("Nats-")}
            headers = {**kept, "Nats-Msg-Id": f"{message.message_id}-copy-{n}"}
            await js.publish(message.subject, message.data, headers=headers)
    finally:
        await client.close()
    return len(copies)


async def _duplicates_and_reordering(
    data_dir: Path, *, enterprises: int, seed: int, variant: str
) -> None:
    began = time.monotonic()
    with SupervisedSystem(data_dir, [Service("enrolment", 1)]) as up:
        load = EnrolmentLoad(up.url("enrolment"), up.admin_headers(), enterprises=enterprises)
        result = await load.run()

        async def all_published() -> bool:
            return sum((await stream_ids(up.nats_url, STREAM)).values()) == load.commands

        await wait_for(all_published, within=120)
        originals = await stream_contents(up.nats_url, STREAM, headers_only=False)
        published = await _refill_shuffled_twice(up.nats_url, originals, seed)
        held = await stream_ids(up.nats_url, STREAM)
        # The indicators, reading the shuffled stream from its start as a new service does.
        broker = with_credentials(
            up.system.nats_url, "indicators", passwords(data_dir)["indicators"]
        )
        workdir = data_dir / "indicators"
        workdir.mkdir()
        async with service_process("score_indicators", workdir, broker) as indicators:
            headers = bearer("admin")
            expected = result.expected_indicators()
            figures = await indicators_become(indicators.url, headers, expected, within=180)
            owed = len(REGIONS) + len(result.of("train")) // 10

            async def announced() -> list[dict[str, object]] | None:
                listed = await _milestones(indicators.url, headers)
                return listed if len(listed) >= owed else None

            await wait_for(announced, within=60)
            milestones = await _milestones(indicators.url, headers)

    off_by = indicator_differences(expected, figures)
    kinds = {(m["milestone"], m["scope"], m["threshold"]) for m in milestones}
    record(
        Figures(
            scenario="duplicates and reordering",
            variant=variant,
            commands=len(result.acknowledged),
            events=len(originals),
            duplicates=published - len(originals),
            lost=sum(-d for d in off_by.values() if d < 0),
            double_counted=sum(d for d in off_by.values() if d > 0) + len(milestones) - len(kinds),
            seconds=round(time.monotonic() - began, 1),
            details={
                "delivered": published,
                "seed": seed,
                "indicators_off_by": {k: v for k, v in off_by.items() if v},
                "milestones": len(milestones),
            },
        )
    )
    assert len(originals) == load.commands
    assert sum(held.values()) == COPIES * load.commands and max(held.values()) == 1
    assert off_by == dict.fromkeys(expected, 0), off_by
    assert len(milestones) == len(kinds) == owed


async def _milestones(url: str, headers: dict[str, str]) -> list[dict[str, object]]:
    async with httpx.AsyncClient(headers=headers, timeout=30, trust_env=False) as client:
        answer = await client.get(f"{url}/v1/milestones", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    listed: list[dict[str, object]] = answer.json()["milestones"]
    return listed


@pytest.mark.timeout(300)
async def test_every_event_twice_and_shuffled_counts_exactly(tmp_path: Path) -> None:
    await _duplicates_and_reordering(tmp_path / "score", enterprises=150, seed=14, variant="short")


@pytest.mark.soak
@pytest.mark.timeout(3600)
async def test_ten_thousand_events_twice_and_shuffled_count_exactly(tmp_path: Path) -> None:
    await _duplicates_and_reordering(
        tmp_path / "score", enterprises=3334, seed=2026, variant="10,002 commands"
    )
