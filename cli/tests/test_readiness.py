"""What the supervisor takes for a service that has started: ready, or catching a view up."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from score_cli.up import _ready


class Running:
    url = "http://service"


def answering(status: int, body: Any) -> httpx.Client:
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    return httpx.Client(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("status", "checks", "started"),
    [
        (200, {"database": "ok"}, True),
        (503, {"database": "ok", "rebuilding": {"projection": "… 10 of 900 events"}}, True),
        (503, {"database": "down: OperationalError"}, False),
        (503, {"database": "down: OperationalError", "rebuilding": {"p": "…"}}, False),
    ],
    ids=["ready", "catching a view up", "database down", "database down while rebuilding"],
)
def test_a_service_catching_a_view_up_has_started(
    status: int, checks: dict[str, Any], started: bool
) -> None:
    with answering(status, {"status": "unready", "checks": checks}) as http:
        assert _ready(http, Running()) is started  # type: ignore[arg-type]
