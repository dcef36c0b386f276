"""The scenario loader retries what the visits service has not heard of yet, and only that."""

from __future__ import annotations

import httpx
import pytest

from score_cli.demo import ScenarioFailed, _send
from score_cli.scenario import Request

NOT_KNOWN_YET = {"type": "/problems/not-known-yet", "title": "Not known yet", "status": 409}
VISIT = Request(key="demo-visit-0", service="visits", path="/v1/visits", body={}, remember="v")


def answering(*responses: httpx.Response) -> tuple[httpx.Client, list[httpx.Request]]:
    sent: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return queue.pop(0)

    return httpx.Client(transport=httpx.MockTransport(handler)), sent


def test_a_visit_not_known_yet_is_retried_with_the_same_key_until_accepted() -> None:
    retry_soon = {"Retry-After": "0"}
    http, sent = answering(
        httpx.Response(409, json=NOT_KNOWN_YET, headers=retry_soon),
        httpx.Response(409, json=NOT_KNOWN_YET, headers=retry_soon),
        httpx.Response(201, json={"id": "visit-1", "version": 1}),
    )
    answers: dict[str, dict[str, object]] = {}
    _send(http, {"visits": "http://visits"}, VISIT, answers)
    assert answers["v"] == {"id": "visit-1", "version": 1}
    assert [r.headers["Idempotency-Key"] for r in sent] == ["demo-visit-0"] * 3


def test_a_real_refusal_is_not_retried() -> None:
    refused = {"type": "/problems/refused", "status": 409, "rule": "enterprise-withdrawn"}
    http, sent = answering(httpx.Response(409, json=refused))
    with pytest.raises(ScenarioFailed, match="enterprise-withdrawn"):
        _send(http, {"visits": "http://visits"}, VISIT, {})
    assert len(sent) == 1
