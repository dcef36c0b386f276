"""The scenario loader retries what the visits service has not heard of yet, and only that;
the demo shows each milestone beside the notifications the chambers' sinks received."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from score_cli.demo import ScenarioFailed, _send, demo
from score_cli.nats_server import free_port
from score_cli.scenario import REGIONS, Request
from score_cli.sinks import Sinks
from score_cli.up import System, free_port_base

NOT_KNOWN_YET = {
    "type": "http://visits.example/problems/not-known-yet",
    "title": "Not known yet",
    "status": 409,
}
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
    refused = {
        "type": "http://visits.example/problems/refused",
        "status": 409,
        "rule": "enterprise-withdrawn",
    }
    http, sent = answering(httpx.Response(409, json=refused))
    with pytest.raises(ScenarioFailed, match="enterprise-withdrawn"):
        _send(http, {"visits": "http://visits"}, VISIT, {})
    assert len(sent) == 1


# The demo itself: the system, the scenario, and the chambers' sinks, run twice on one folder.


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_the_demo_shows_the_milestones_beside_the_notifications_received(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "score"
    first, first_out = _run_demo(data_dir, capsys)
    assert "Subscribing a chamber per region to the demo's sinks" in first_out
    assert "Milestones, and what the chambers' sinks received" in first_out
    assert "Not everything arrived" not in first_out

    # One webhook and one e-mail subscription per region of the scenario, la_paz's webhook
    # also told of the country's milestones.
    subscriptions = first["subscriptions"]
    kinds = sorted((s["regions"][0], s["channel"]["kind"], s["national"]) for s in subscriptions)
    assert kinds == sorted(
        [(r, "webhook", r == "la_paz") for r in REGIONS] + [(r, "email", False) for r in REGIONS]
    )
    # Every milestone the scenario reached is shown, and told to each subscription it matches:
    # its region's two, and la_paz's webhook for the country's.
    milestones = first["milestones"]
    scopes = {m["scope"] for m in milestones}
    assert scopes == {"national", *REGIONS}
    for milestone in milestones:
        assert milestone["title"] in first_out
    deliveries = first["deliveries"]
    assert len(deliveries) == sum(1 if m["scope"] == "national" else 2 for m in milestones)
    assert {d["status"] for d in deliveries} == {"delivered"}
    # Each webhook the sink verified with its subscription's secret, shown with its id.
    received = {r.notification_id: r for r in first["received"]}
    assert set(received) == {d["id"] for d in deliveries}
    assert first["refused"] == []
    webhooks = [d for d in deliveries if d["channel"] == "webhook"]
    for delivery in webhooks:
        assert f"verified webhook-id {delivery['id']}" in first_out
        assert received[delivery["id"]].text in first_out.replace("\n" + " " * 13, " ")
    # Mail in each subscription's language: Spanish for la_paz's, English for santa_cruz's.
    mails = {r.to: r for r in first["received"] if r.kind == "email"}
    assert mails["score-la-paz@demo.score.example"].subject == "SCORE: La Paz alcanzó un hito"
    assert "alcanzó su primera empresa" in mails["score-la-paz@demo.score.example"].text
    assert mails["score-santa-cruz@demo.score.example"].subject == (
        "SCORE: Santa Cruz reached a milestone"
    )
    assert "reached its first trained enterprise" in (
        mails["score-santa-cruz@demo.score.example"].text
    )

    # Run again on the same folder: the same subscriptions, nothing sent again, and what the
    # first run received still shown beside its milestones.
    second, second_out = _run_demo(data_dir, capsys)
    assert "The scenario is already loaded." in second_out
    assert {s["id"] for s in second["subscriptions"]} == {s["id"] for s in subscriptions}
    assert sorted(d["id"] for d in second["deliveries"]) == sorted(d["id"] for d in deliveries)
    assert {r.notification_id for r in second["received"]} == set(received)
    for delivery in webhooks:
        assert f"verified webhook-id {delivery['id']}" in second_out

    # With the webhooks' secrets lost, their subscriptions are made again (the old ones
    # deleted), so the sink can verify what comes; the e-mail ones are kept.
    (data_dir / "demo" / "webhooks.json").unlink()
    third, _ = _run_demo(data_dir, capsys)
    hooks = {s["id"] for s in subscriptions if s["channel"]["kind"] == "webhook"}
    now = {s["id"] for s in third["subscriptions"]}
    assert len(now) == 6 and not now & hooks
    assert now - {s["id"] for s in third["subscriptions"] if s["channel"]["kind"] == "webhook"} == (
        {s["id"] for s in subscriptions} - hooks
    )
    assert sorted(d["id"] for d in third["deliveries"]) == sorted(d["id"] for d in deliveries)
    assert third["refused"] == []


def _run_demo(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], str]:
    """Run `score demo` until it has shown everything; what the system and the sinks held
    then, and what it printed."""
    seen: dict[str, Any] = {}

    def look(system: System, sinks: Sinks) -> None:
        headers = {"Authorization": f"Bearer {system.admin_token()}"}
        with httpx.Client(headers=headers, trust_env=False, timeout=10) as http:
            notifications, indicators = system.url("notifications"), system.url("indicators")
            seen["subscriptions"] = http.get(f"{notifications}/v1/subscriptions").json()["items"]
            seen["deliveries"] = http.get(
                f"{notifications}/v1/deliveries", params={"limit": 1000}
            ).json()["items"]
            seen["milestones"] = http.get(
                f"{indicators}/v1/milestones", params={"limit": 1000, "lang": "en"}
            ).json()["milestones"]
        seen["received"] = sinks.inbox.all()
        seen["refused"] = list(sinks.webhooks.refused)

    code = demo(data_dir, nats_port=free_port(), port_base=free_port_base(), until=look)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert seen, captured.err
    return seen, captured.out
