"""Every service's OpenAPI document tells the truth: schemathesis, with every check it has,
against each service run as its own process (with NATS, as deployed).

Generated requests, valid and invalid, with an admin token: no 5xx, no undocumented status,
header or media type, every answer as its schema says, invalid input refused, methods not
served answered 405 with a true `Allow`. The operators' endpoints (`/v1/ops/`) are left out:
a rebuild they start makes the service answer 503 by design until it is done, which would
read as server errors; their own tests drive them. `SCORE_FUZZ_EXAMPLES` sets how many examples each
operation gets (a short run by default, for CI; the numbers of a run are in its output).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from score_testing.process import service_process
from score_testing.service import bearer

HERE = Path(__file__).parent
EXAMPLES = int(os.environ.get("SCORE_FUZZ_EXAMPLES", "15"))

pytestmark = [pytest.mark.nats, pytest.mark.e2e, pytest.mark.timeout(600)]


@pytest.mark.parametrize("service", ["enrolment", "visits", "indicators"])
async def test_the_openapi_document_holds_under_fuzzing(
    service: str, tmp_path: Path, nats_url: str
) -> None:
    async with service_process(f"score_{service}", tmp_path, nats_url) as running:
        command = [
            sys.executable,
            str(HERE / "run_schemathesis.py"),
            "run",
            f"{running.url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(EXAMPLES),
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
            timeout=540,
            env={**os.environ, "NO_COLOR": "1"},
        )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "passed" in report and " 0 passed" not in report, report
