"""HTTP load from `wrk`, in its own process: a warm-up, then several timed runs.

wrk keeps every connection busy (a closed loop): a new request goes out on a connection as
soon as the answer to the last one is in. Its scripts (`bench/wrk/*.lua`) build the requests,
count the answers by kind and print one `BENCH-JSON` line that is read here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.measure import Spread, spread

WRK_DIR = Path(__file__).parent / "wrk"
THREADS = 2
"""wrk's threads: one per core of the project's machines (the services share them)."""
TIMEOUT_SECONDS = 10
"""A request unanswered this long counts as failed (wrk's default of 2 s would hide slow
answers among the errors rather than in the latency)."""


class WrkMissing(RuntimeError):
    """wrk is not installed."""


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise WrkMissing(
            "wrk is not installed: `apt-get install wrk` (Debian's package) and run again"
        )
    return found


@dataclass(frozen=True, slots=True)
class WrkRun:
    """What one wrk invocation saw."""

    seconds: float
    requests: int
    """Requests answered."""
    sent: int
    """Requests written: the answered ones and up to one per connection still out at the end."""
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    ok: int
    """2xx answers."""
    conflict: int
    client_error: int
    """4xx other than 409."""
    server_error: int
    other: int
    socket_errors: int
    """Connections refused, reads or writes that failed, requests that timed out."""

    @property
    def rate(self) -> float:
        """Answers per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> int:
        """Requests not answered 2xx (a 409 included) or not answered at all."""
        return self.requests - self.ok + self.socket_errors

    def as_json(self) -> dict[str, object]:
        return {
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "sent": self.sent,
            "requests_per_second": round(self.rate, 1),
            "latency_ms": {
                "p50": self.p50_ms,
                "p90": self.p90_ms,
                "p99": self.p99_ms,
                "max": self.max_ms,
            },
            "answers": {
                "2xx": self.ok,
                "409": self.conflict,
                "other_4xx": self.client_error,
                "5xx": self.server_error,
                "other": self.other,
            },
            "socket_errors": self.socket_errors,
        }


def run_wrk(
    url: str, script: str, *, connections: int, seconds: int, args: Sequence[str] = ()
) -> WrkRun:
    """One wrk run of `bench/wrk/<script>` against `url`."""
    command = [
        wrk_binary(),
        f"-t{min(THREADS, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={TIMEOUT_SECONDS}s",
        "-s",
        str(WRK_DIR / script),
        url,
        "--",
        *args,
    ]
    finished = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "BENCH_WRK_DIR": str(WRK_DIR)},
        timeout=seconds + TIMEOUT_SECONDS + 30,
        check=False,
    )
    for line in finished.stdout.splitlines():
        if line.startswith("BENCH-JSON "):
            found = json.loads(line.removeprefix("BENCH-JSON "))
            break
    else:
        raise RuntimeError(
            f"wrk gave no result (exit {finished.returncode}):\n{finished.stdout}\n"
            f"{finished.stderr}"
        )
    latency, answers, errors = found["latency_us"], found["answers"], found["socket_errors"]
    return WrkRun(
        seconds=found["duration_us"] / 1e6,
        requests=found["requests"],
        sent=found["sent"],
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        ok=answers["ok"],
        conflict=answers["conflict"],
        client_error=answers["client_error"],
        server_error=answers["server_error"],
        other=answers["other"],
        socket_errors=sum(errors.values()),
    )


@dataclass(frozen=True, slots=True)
class Load:
    """A load measured as `measure` does: the runs after the warm-up, and their spread."""

    connections: int
    warmup: WrkRun | None
    runs: tuple[WrkRun, ...]

    @property
    def every_run(self) -> tuple[WrkRun, ...]:
        """The warm-up and the timed runs: what the service was sent."""
        return self.runs if self.warmup is None else (self.warmup, *self.runs)

    @property
    def rate(self) -> Spread:
        return spread(run.rate for run in self.runs)

    @property
    def p50_ms(self) -> Spread:
        return spread(run.p50_ms for run in self.runs)

    @property
    def p99_ms(self) -> Spread:
        return spread(run.p99_ms for run in self.runs)

    @property
    def failed(self) -> int:
        """Failed requests over the timed runs."""
        return sum(run.failed for run in self.runs)

    @property
    def server_errors(self) -> int:
        """5xx answers over the warm-up and the timed runs."""
        return sum(run.server_error for run in self.every_run)

    @property
    def ok(self) -> int:
        """2xx answers over the warm-up and the timed runs."""
        return sum(run.ok for run in self.every_run)

    @property
    def sent(self) -> int:
        """Requests written over the warm-up and the timed runs."""
        return sum(run.sent for run in self.every_run)

    @property
    def conflicts(self) -> int:
        """409 answers over the warm-up and the timed runs."""
        return sum(run.conflict for run in self.every_run)

    def as_json(self) -> dict[str, object]:
        return {
            "connections": self.connections,
            "requests_per_second": self.rate.as_json(),
            "p50_ms": self.p50_ms.as_json(),
            "p99_ms": self.p99_ms.as_json(),
            "failed": self.failed,
            "warmup": None if self.warmup is None else self.warmup.as_json(),
            "runs": [run.as_json() for run in self.runs],
        }


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """How long a load runs: a warm-up, then `runs` timed runs of `seconds` each."""

    warmup_seconds: int
    """0: none (the quick run's, which measures nothing)."""
    runs: int
    seconds: int


@dataclass(frozen=True, slots=True)
class Target:
    """What one side of a comparison is loaded with: `args(label)` gives the script's
    arguments for a run, `label` being unique to it (the scripts make bodies unique with it)."""

    url: str
    script: str
    args: Callable[[str], Sequence[str]]

    def run(self, connections: int, seconds: int) -> WrkRun:
        label = uuid.uuid4().hex[:10]
        return run_wrk(
            self.url, self.script, connections=connections, seconds=seconds, args=self.args(label)
        )


def measure(
    targets: Mapping[str, Target],
    *,
    connections: int,
    plan: LoadPlan,
    said: Callable[[str], None] = lambda line: None,
) -> dict[str, Load]:
    """Warm each target up, then time `plan.runs` runs of each, taking turns, so that what
    else the machine does in the meantime weighs on every side alike."""
    warmups = {
        name: target.run(connections, plan.warmup_seconds) if plan.warmup_seconds else None
        for name, target in targets.items()
    }
    runs: dict[str, list[WrkRun]] = {name: [] for name in targets}
    for _ in range(plan.runs):
        for name, target in targets.items():
            run = target.run(connections, plan.seconds)
            runs[name].append(run)
            said(
                f"{name}, {connections} connections: {run.rate:,.0f} req/s, "
                f"p99 {run.p99_ms:,.1f} ms, {run.failed} failed"
            )
    return {name: Load(connections, warmups[name], tuple(runs[name])) for name in targets}
