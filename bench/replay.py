"""B6: `score replay indicators-projection` over a long history, as an operator runs it.

The history is published straight to the running system's `SCORE_ENROLMENT` stream (events
made as the enrolment service makes them, `bench/history.py`); once the served projection has
counted it, as an operator's projection has when they ask for a replay, `score replay` is run
as a process against the system's data folder. The replay builds the projection again beside
the served one (ADR 014), reading every event of its streams. The rate is those events over
the time `score replay` took; the memory is the indicators process's peak resident memory
(VmHWM), which is reached in the replay.

(Until the replay was built beside the served projection, the indicators service was paused
while the history was published, so that it did not count it first: the replay cleared the
projection and read everything anyway. Now the served projection's own catch-up would run
beside the replay and be timed with it.)
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import nats

from bench.history import messages
from bench.measure import Stopwatch, peak_rss_mb
from bench.pipeline import publish_all
from bench.systems import Ours


@dataclass(frozen=True, slots=True)
class Replay:
    published: int
    events: int
    """Events `score replay` says it read (every event of the streams)."""
    seconds: float
    publish_seconds: float
    peak_rss_mb: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "published": self.published,
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.per_second, 1),
            "publish_seconds": round(self.publish_seconds, 3),
            "indicators_peak_rss_mb": round(self.peak_rss_mb, 1),
        }


async def _publish(nats_url: str, count: int) -> int:
    client = await nats.connect(nats_url, name="bench-history")
    try:
        return await publish_all(client.jetstream(), messages(count, first=10_000_000))
    finally:
        await client.close()


def _score() -> str:
    """The `score` command of this environment."""
    beside = Path(sys.executable).parent / "score"
    return str(beside) if beside.exists() else "score"


def measure(ours: Ours, events: int, *, timeout: float) -> Replay:
    indicators = ours.pids["indicators"]
    watch = Stopwatch()
    published = asyncio.run(_publish(ours.nats_url, events))
    _wait_until_counted(ours, timeout=timeout)
    publish_seconds = watch.seconds
    watch = Stopwatch()
    finished = subprocess.run(
        [
            _score(),
            "replay",
            "indicators-projection",
            "--data-dir",
            str(ours.data_dir),
            "--timeout",
            str(timeout),
        ],
        capture_output=True,
        text=True,
        timeout=timeout + 30,
        check=False,
    )
    seconds = watch.seconds
    if finished.returncode != 0:
        raise RuntimeError(f"score replay failed: {finished.stdout}{finished.stderr}")
    read = re.search(r"(\d+) events read", finished.stdout)
    if read is None:
        raise RuntimeError(f"score replay said no count: {finished.stdout}")
    return Replay(
        published=published,
        events=int(read.group(1)),
        seconds=seconds,
        publish_seconds=publish_seconds,
        peak_rss_mb=peak_rss_mb(indicators),
    )


def _wait_until_counted(ours: Ours, *, timeout: float) -> None:
    """Until the served projection holds every event of its streams."""
    progress = f"{ours.url('indicators')}/v1/ops/replay/projection"
    headers = {"Authorization": f"Bearer {ours.token}"}
    deadline = time.monotonic() + timeout
    with httpx.Client(headers=headers, timeout=10, trust_env=False) as http:
        while time.monotonic() < deadline:
            if http.get(progress).json().get("done"):
                return
            time.sleep(0.5)
    raise RuntimeError("the served projection did not count the history in time")
