"""`make bench-quick`'s harness runs every scenario end to end and reports each.

It runs the harness as `make bench-quick` does, for a second or two per scenario, and checks
that the table and the JSON have every scenario's rows, each measured: nothing about speed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8")

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def test_the_quick_run_measures_every_scenario_and_writes_the_table_and_json(
    tmp_path: Path,
) -> None:
    if shutil.which("wrk") is None:
        if os.environ.get("CI"):
            pytest.fail("wrk is not installed (`apt-get install wrk`); .ci/run installs it")
        pytest.skip("wrk is not installed: `apt-get install wrk`")
    if not os.environ.get("SCORE_TEST_POSTGRES_URL") and os.environ.get("SCORE_REQUIRE_POSTGRES"):
        pytest.fail("SCORE_REQUIRE_POSTGRES is set but SCORE_TEST_POSTGRES_URL is not")
    out = tmp_path / "quick.json"

    finished = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )

    print(finished.stderr)  # the harness's progress, with the time of each step
    assert finished.returncode == 0, finished.stdout + finished.stderr
    rows = json.loads(out.read_text())["rows"]
    measured = {row["id"] for row in rows if row["skipped"] is None}
    expected = (
        set(SCENARIOS) if os.environ.get("SCORE_TEST_POSTGRES_URL") else set(SCENARIOS) - {"B2"}
    )
    assert measured == expected, finished.stderr
    for row in rows:
        if row["skipped"] is None:
            assert row["ours"] is not None, row
    # B7's milestones: several announced in the quick run, each received once and signed.
    milestones = next(row for row in rows if row["scenario"].startswith("milestones announced"))
    assert milestones["ours"] == 0, rows
    webhooks = next(row for row in rows if row["id"] == "B7")["details"]["webhooks"]
    assert webhooks["announced"] >= 2 and webhooks["received"] == webhooks["announced"], webhooks
    header = "| # | scenario | ours | baseline | ratio | target | met |"
    assert header in finished.stdout
    table = [line for line in finished.stdout.splitlines() if line.startswith("| B")]
    assert {line.split("|")[1].strip() for line in table} == {row["id"] for row in rows}
