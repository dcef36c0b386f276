"""`make bench`: SCORE Cases next to its baselines, in one run, on this machine.

Every scenario (B1–B8, docs/BENCHMARKS.md) runs beside the baseline it is compared with, in
the same run: the system as `score up` starts it, the FastAPI + `eventsourcing` peer
(`bench/peers/`), raw nats-py. HTTP load comes from `wrk` in its own process, a warm-up then
several runs taken in turns with the peer, reported as medians with their spread. One table is
printed (scenario, ours, baseline, ratio, target, met) and every figure is written to
`bench/results/latest.json`.

`--quick` (`make bench-quick`, and the suite's harness test) runs every scenario for a second
or two on small counts: it proves the harness works end to end and says nothing about speed.

Exit status: 0 when every scenario ran, whether or not it met its target; 1 when one could
not run; 2 when wrk is missing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import postgres, scenarios
from bench.load import WrkMissing, wrk_binary
from bench.report import Row, machine, table, write_json
from score_chassis.logs import configure_logging

RESULTS = Path(__file__).parent / "results"
IDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8")


def say(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {line}", file=sys.stderr, flush=True)


def run(profile: scenarios.Profile, workdir: Path, only: set[str]) -> tuple[list[Row], bool]:
    """The rows of the scenarios in `only`, and whether every one of them could run."""
    rows: list[Row] = []
    complete = True
    catch_up_rate: float | None = None

    def group(ids: set[str], scenario: Callable[[], list[Row]]) -> list[Row]:
        nonlocal complete
        if not ids & only:
            return []
        try:
            return scenario()
        except Exception as error:
            complete = False
            traceback.print_exc()
            return [
                Row(i, "could not run", "", skipped=f"{type(error).__name__}: {error}")
                for i in sorted(ids & only)
            ]

    rows += group({"B1", "B3", "B8"}, lambda: scenarios.on_sqlite(profile, workdir, say))
    postgres_rows = group({"B2"}, lambda: scenarios.on_postgres(profile, workdir, say))
    if os.environ.get("SCORE_REQUIRE_POSTGRES") and any(r.skipped for r in postgres_rows):
        complete = False  # as in the suite: where PostgreSQL is required, a skip is a failure
    rows += postgres_rows
    pipeline_rows = group({"B4", "B5"}, lambda: scenarios.in_the_pipeline(profile, workdir, say))
    for row in pipeline_rows:
        if row.id == "B5" and row.skipped is None:
            catch_up_rate = row.ours
    rows += pipeline_rows
    rows += group(
        {"B6", "B7"},
        lambda: scenarios.after_the_command(
            profile, workdir, say, catch_up_rate=catch_up_rate, with_b6="B6" in only
        ),
    )
    rows = [row for row in rows if row.id in only]
    rows.sort(key=lambda row: row.id)  # stable: each scenario's rows keep their order
    return rows, complete


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="every scenario for a second or two (CI)"
    )
    parser.add_argument(
        "--only", default=",".join(IDS), help="scenarios to run, e.g. B1,B4 (default: all)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="where the JSON goes (default: bench/results/latest.json, or quick.json)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's work folder")
    args = parser.parse_args(argv)
    only = {i.strip().upper() for i in args.only.split(",") if i.strip()}
    if unknown := only - set(IDS):
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    try:
        wrk_binary()
    except WrkMissing as missing:
        print(f"bench: {missing}", file=sys.stderr)
        return 2
    profile = scenarios.QUICK if args.quick else scenarios.FULL
    out = args.out or RESULTS / ("quick.json" if args.quick else "latest.json")
    # The services log to their own files; this process says only what goes wrong.
    configure_logging("bench", level="error", fmt="console")

    started_at = dt.datetime.now(dt.UTC)
    started = time.monotonic()
    before = machine()
    workdir = Path(tempfile.mkdtemp(prefix="score-bench-"))
    say(f"{profile.name} run of {', '.join(sorted(only))} in {workdir}")
    if postgres.server() is None:
        say(f"{postgres.SERVER_VARIABLE} is not set: B2 is skipped")
    try:
        rows, complete = run(profile, workdir, only)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.monotonic() - started
    write_json(
        out, rows, profile=profile.name, started=started_at, seconds=seconds, machine_before=before
    )
    print(
        f"\nSCORE Cases next to its baselines, {profile.name} run, "
        f"{started_at:%Y-%m-%d %H:%M} UTC, {seconds:,.0f} s, {before['cpus']} cores, "
        f"Python {before['python']}\n"
    )
    print(table(rows))
    print(f"\nEvery figure, with the runs' spread: {out}")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
