"""Every write endpoint of every service speaks the same way: the same request headers
(Idempotency-Key, and If-Match on an existing aggregate), the Idempotent-Replayed header on its
answer, and the same problem responses, as problem details."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from score_enrolment.main import build_app as enrolment
from score_enrolment.settings import EnrolmentSettings
from score_testing.service import TEST_SECRET
from score_visits.main import build_app as visits
from score_visits.settings import VisitsSettings

BUILDERS: dict[str, Callable[[Path], FastAPI]] = {
    "enrolment": lambda tmp: enrolment(
        EnrolmentSettings(
            auth_secret=TEST_SECRET, database_url=f"sqlite+aiosqlite:///{tmp / 'e.db'}"
        )
    ),
    "visits": lambda tmp: visits(
        VisitsSettings(auth_secret=TEST_SECRET, database_url=f"sqlite+aiosqlite:///{tmp / 'v.db'}")
    ),
}
EVERY_WRITE = {"400", "401", "403", "413", "422"}
"""Unreadable, no or a bad token, a role or region not allowed, too large, invalid."""
TO_AN_EXISTING_AGGREGATE = {"404", "412"}


def writes(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in openapi["paths"].items()
        for method, operation in operations.items()
        if method in {"post", "patch", "put", "delete"}
        and path.startswith("/v1/")
        and not path.startswith("/v1/ops/")
    ]


@pytest.mark.parametrize("service", sorted(BUILDERS))
def test_every_write_documents_the_same_headers_and_problems(service: str, tmp_path: Path) -> None:
    openapi = BUILDERS[service](tmp_path).openapi()
    found = writes(openapi)
    assert found, f"{service} has no write endpoint"
    for method, path, operation in found:
        existing = "{" in path
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert headers == ({"idempotency-key", "if-match"} if existing else {"idempotency-key"}), (
            method,
            path,
        )
        responses = operation["responses"]
        success = [code for code in responses if code.startswith("2")]
        assert len(success) == 1, (method, path)
        assert "Idempotent-Replayed" in responses[success[0]]["headers"], (method, path)
        errors = {code for code in responses if code[0] in "45"}
        expected = EVERY_WRITE | (TO_AN_EXISTING_AGGREGATE if existing else set())
        assert expected <= errors <= expected | {"409"}, (method, path, errors)
        for code in errors:
            assert list(responses[code]["content"]) == ["application/problem+json"], (path, code)
