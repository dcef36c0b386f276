"""What the scenarios measure with: the spread of repeated runs, and a process's memory."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self


@dataclass(frozen=True, slots=True)
class Spread:
    """Runs of one measurement: the median is the figure, low and high its spread."""

    runs: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def low(self) -> float:
        return min(self.runs)

    @property
    def high(self) -> float:
        return max(self.runs)

    def as_json(self) -> dict[str, object]:
        return {
            "median": round(self.median, 3),
            "low": round(self.low, 3),
            "high": round(self.high, 3),
            "runs": [round(run, 3) for run in self.runs],
        }


def spread(values: Iterable[float]) -> Spread:
    runs = tuple(values)
    if not runs:
        raise ValueError("a spread of no runs")
    return Spread(runs)


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (nearest rank)."""
    if not values:
        raise ValueError("a percentile of nothing")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise LookupError(f"no {field} for process {pid}")


def rss_mb(pid: int) -> float:
    """The process's resident memory now, in MiB."""
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_mb(pid: int) -> float:
    """The most resident memory the process has had since it started (VmHWM), in MiB."""
    return _status_kib(pid, "VmHWM") / 1024


class RssSampler:
    """Samples the resident memory of some processes in a thread, keeping each one's peak:

    ```
    with RssSampler({"enrolment": pid}) as sampler:
        ...
    sampler.peaks["enrolment"]
    ```
    """

    def __init__(self, pids: Mapping[str, int], interval: float = 0.2) -> None:
        self.pids = dict(pids)
        self.interval = interval
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        while True:
            for name, pid in self.pids.items():
                try:
                    self.peaks[name] = max(self.peaks.get(name, 0.0), rss_mb(pid))
                except (OSError, LookupError):
                    pass  # the process ended: its peak so far stands
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()


class Stopwatch:
    """Seconds since it was made, on the monotonic clock."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started
