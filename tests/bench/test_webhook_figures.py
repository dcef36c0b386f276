"""B7's webhook figures: the receiver takes what the notifications service signs, and each
milestone is set against the 201 that made it cross, once."""

from __future__ import annotations

import base64
import datetime as dt
import json
import multiprocessing
import os
import time

import httpx

from bench import webhooks
from bench.freshness import _webhooks
from score_notifications.webhook import body, signed_headers

SECRET = "whsec_" + base64.b64encode(b"b" * 32).decode()


def _milestone(threshold: int) -> dict[str, object]:
    return {
        "milestone_id": f"m{threshold}",
        "indicator": "enterprises_trained",
        "scope": "national",
        "threshold": str(threshold),
        "value": str(threshold),
        "reached_at": dt.datetime.now(dt.UTC).isoformat(),
        "phase": None,
    }


def test_the_receiver_keeps_signed_calls_and_tells_a_forged_one_apart() -> None:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=webhooks.receiver, args=(theirs, SECRET))
    process.start()
    theirs.close()
    try:
        port = ours.recv()
        now = dt.datetime.now(dt.UTC)
        payload = body({"milestone": _milestone(10)}, now)
        with httpx.Client(trust_env=False) as client:
            url = f"http://127.0.0.1:{port}/hooks/score"
            signed = client.post(
                url, content=payload, headers=signed_headers(SECRET, "msg_1", now, payload)
            )
            other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
            forged = client.post(
                url, content=payload, headers=signed_headers(other, "msg_2", now, payload)
            )
        assert (signed.status_code, forged.status_code) == (204, 400)
        ours.send((1, time.monotonic() + 5))
        received: webhooks.Receiving = ours.recv()
    finally:
        process.join(timeout=10)
    first, second = received.arrivals
    assert (first.webhook_id, first.verified, first.milestone_id) == ("msg_1", True, "m10")
    assert first.threshold == "10" and first.recorded is not None
    assert (second.webhook_id, second.verified) == ("msg_2", False)
    assert json.loads(payload)["data"]["milestone"]["threshold"] == "10"


def test_each_milestone_is_timed_from_the_training_that_made_the_count_reach_it() -> None:
    trainings = [float(k) for k in range(1, 31)]  # the k-th 201 at k seconds
    arrivals = [
        webhooks.Arrival(10.25, "a", True, "m10", "enterprises_trained", "national", "10"),
        webhooks.Arrival(20.5, "b", True, "m20", "enterprises_trained", "national", "20"),
        webhooks.Arrival(20.75, "b", True, "m20", "enterprises_trained", "national", "20"),
        webhooks.Arrival(21.0, "c", False),
    ]
    announced = [{"milestone_id": f"m{t}"} for t in (10, 20, 30)]

    figures = _webhooks(announced, webhooks.Receiving(arrivals, 0.0), trainings, trained_before=0)

    assert figures.latencies_ms == [250.0, 500.0]
    assert (figures.announced, figures.received, figures.lost) == (3, 2, 1)
    assert (figures.twice, figures.unverified, figures.wrong) == (1, 1, 3)


def test_the_enterprises_trained_before_the_load_are_not_the_loads() -> None:
    arrival = webhooks.Arrival(13.5, "a", True, "m10", "enterprises_trained", "national", "10")

    figures = _webhooks(
        [{"milestone_id": "m10"}],
        webhooks.Receiving([arrival], 0.0),
        [1.0, 2.0, 3.0, 4.0],
        trained_before=7,
    )

    assert figures.latencies_ms == [10_500.0]  # the 3rd training of the load made it 10
    assert figures.wrong == 0
