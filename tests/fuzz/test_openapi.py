"""Every service's OpenAPI document tells the truth: schemathesis, with every check it has,
against each service run as its own process (with NATS, as deployed).

Generated requests, valid and invalid, with an admin token: no 5xx, no undocumented status,
header or media type, every answer as its schema says, invalid input refused, methods not
served answered 405 with a true `Allow`. The operators' endpoints (`/v1/ops/`) are left out:
a rebuild they start makes the service answer 503 by design until it is done, which would
read as server errors; their own tests drive them.

In the suite each operation gets a few examples (`SCORE_FUZZ_EXAMPLES`, 15 by default); the
soak variant (`make soak`) gives each enough for at least 1,000 generated requests per service.
Each run prints how many requests schemathesis generated, read from its summary.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from score_testing.process import service_process
from score_testing.service import bearer

HERE = Path(__file__).parent
EXAMPLES = int(os.environ.get("SCORE_FUZZ_EXAMPLES", "15"))

pytestmark = [pytest.mark.nats, pytest.mark.e2e, pytest.mark.timeout(600)]


SERVICES = ["enrolment", "visits", "indicators", "notifications"]
SOAK_EXAMPLES = {"enrolment": 100, "visits": 100, "indicators": 300, "notifications": 100}
"""Per operation in the soak variant. Hypothesis stops early on an operation with little to
vary (most of the indicators' are reads of a few parameters): those need more to make 1,000."""
SOAK_REQUESTS = 1000
_GENERATED = re.compile(r"Test cases:\s+(\d+) generated")


@pytest.mark.parametrize("service", SERVICES)
async def test_the_openapi_document_holds_under_fuzzing(
    service: str, tmp_path: Path, nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    generated = await fuzz(service, tmp_path, nats_url, monkeypatch, examples=EXAMPLES)
    assert generated > 0


@pytest.mark.soak
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("service", SERVICES)
async def test_a_thousand_requests_and_more_find_nothing(
    service: str, tmp_path: Path, nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    generated = await fuzz(
        service, tmp_path, nats_url, monkeypatch, examples=SOAK_EXAMPLES[service], within=3300
    )
    assert generated >= SOAK_REQUESTS


async def fuzz(
    service: str,
    tmp_path: Path,
    nats_url: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    examples: int,
    within: float = 540,
) -> int:
    """Run schemathesis against the service; how many requests it generated (all passed)."""
    # The notifications service will not start without the key of its webhooks' secrets.
    monkeypatch.setenv(
        "SCORE_NOTIFICATIONS_SECRET_KEY", "fuzz-key-for-the-webhook-secrets-0123456789"
    )
    async with service_process(f"score_{service}", tmp_path, nats_url) as running:
        command = [
            sys.executable,
            str(HERE / "run_schemathesis.py"),
            "run",
            f"{running.url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(examples),
            "--workers",
            "2",
            "--header",
            f"Authorization: {bearer('admin')['Authorization']}",
            "--request-timeout",
            "10",
            "--exclude-path-regex",
            "^/v1/ops/",
        ]
        run = await asyncio.to_thread(
            subprocess.run,
            command,
            cwd=HERE,  # where its schemathesis.toml is
            capture_output=True,
            text=True,
            timeout=within,
            env={**os.environ, "NO_COLOR": "1"},
        )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    found = _GENERATED.search(report)
    assert found is not None, report
    generated = int(found.group(1))
    assert f"{generated} generated, {generated} passed" in report, report
    print(f"{service}: {generated} requests generated, all passed")
    return generated
