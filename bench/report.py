"""The table `make bench` prints, and the JSON it writes beside it."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure of ours, its baseline's, and the target it is held to.

    `ratio_target` is the least ours/baseline that meets the target, for the rows that
    compare; `limit` and `floor` the most and the least `ours` may be, for those that bound.
    A row whose scenario could not run has `skipped` set to the reason.
    """

    id: str
    scenario: str
    unit: str
    ours: float | None = None
    baseline: float | None = None
    ratio_target: float | None = None
    limit: float | None = None
    floor: float | None = None
    target_text: str = ""
    skipped: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.baseline:
            return None
        return self.ours / self.baseline

    @property
    def met(self) -> bool | None:
        if self.skipped is not None or self.ours is None:
            return None
        checks: list[bool] = []
        if self.ratio_target is not None:
            ratio = self.ratio
            checks.append(ratio is not None and ratio >= self.ratio_target)
        if self.limit is not None:
            checks.append(self.ours <= self.limit)
        if self.floor is not None:
            checks.append(self.ours >= self.floor)
        return all(checks) if checks else None

    @property
    def target(self) -> str:
        if self.target_text:
            return self.target_text
        parts: list[str] = []
        if self.ratio_target is not None:
            parts.append(f"≥ {self.ratio_target:g}×")
        if self.floor is not None:
            parts.append(f"≥ {_number(self.floor)} {self.unit}".rstrip())
        if self.limit is not None:
            parts.append(f"≤ {_number(self.limit)} {self.unit}".rstrip())
        return ", ".join(parts) or "—"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scenario": self.scenario,
            "unit": self.unit,
            "ours": self.ours,
            "baseline": self.baseline,
            "ratio": None if self.ratio is None else round(self.ratio, 3),
            "target": self.target,
            "met": self.met,
            "skipped": self.skipped,
            "details": self.details,
        }


def _number(value: float) -> str:
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{_number(value)} {unit}".rstrip()


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table, to read in a terminal or paste into docs/BENCHMARKS.md."""
    lines = [
        "| # | scenario | ours | baseline | ratio | target | met |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        if row.skipped is not None:
            lines.append(f"| {row.id} | {row.scenario} | skipped: {row.skipped} | | | | |")
            continue
        ratio = "—" if row.ratio is None or row.ratio_target is None else f"{row.ratio:.2f}×"
        met = {True: "yes", False: "**no**", None: "—"}[row.met]
        lines.append(
            f"| {row.id} | {row.scenario} | {_value(row.ours, row.unit)} | "
            f"{_value(row.baseline, row.unit)} | {ratio} | {row.target} | {met} |"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    memory_kib = 0
    try:
        with open("/proc/meminfo") as meminfo:
            memory_kib = int(meminfo.readline().split()[1])
    except OSError:
        pass
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(memory_kib / 1024**2, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }


def write_json(
    path: Path,
    rows: Sequence[Row],
    *,
    profile: str,
    started: dt.datetime,
    seconds: float,
    machine_before: dict[str, Any],
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "date": started.isoformat(timespec="seconds"),
        "profile": profile,
        "seconds": round(seconds, 1),
        "machine": machine_before,
        "load_average_after": machine()["load_average"],
        "rows": [row.as_json() for row in rows],
    }
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
