"""Figures against their goals: the rows of the table, how it is printed, and the JSON.

A row holds one figure, its unit and, when the issue sets one, its goal (`>=` or `<=` a
number); a row without a goal is reported for information.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Row:
    scenario: int
    figure: str
    value: float | None
    unit: str  # "x", "ms", "B", "s", "req/s", "B/worker"
    goal_op: str | None = None  # ">=" or "<="
    goal: float | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.figure.startswith("failed:"):
            return "ERROR"
        if self.goal_op is None or self.goal is None:
            return "info"
        if self.value is None:
            return "MISS"
        met = self.value >= self.goal if self.goal_op == ">=" else self.value <= self.goal
        return "PASS" if met else "MISS"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The value below which `fraction` of `values` lie (nearest rank); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("inf")


def show(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    digits = {"x": 2, "ms": 2, "s": 2, "B": 0, "B/worker": 0, "req/s": 0, "/s": 0}.get(unit, 2)
    if unit == "ms" and value >= 100:
        digits = 0
    return f"{value:,.{digits}f} {unit}"


def table(rows: Sequence[Row]) -> str:
    """The table the benchmark prints: scenario, figure, value, goal, verdict, note."""
    head = ("#", "figure", "value", "goal", "result", "note")
    lines = [(str(row.scenario), row.figure, show(row.value, row.unit),
              f"{row.goal_op} {show(row.goal, row.unit)}" if row.goal_op else "",
              row.verdict, row.note) for row in rows]
    widths = [max(len(head[i]), *(len(line[i]) for line in lines)) for i in range(5)]
    def fmt(cells: Sequence[str]) -> str:
        aligned = [cells[0].rjust(widths[0]), cells[1].ljust(widths[1]),
                   cells[2].rjust(widths[2]), cells[3].ljust(widths[3]),
                   cells[4].ljust(widths[4]), cells[5]]
        return " | ".join(aligned).rstrip()
    rule = "-+-".join("-" * width for width in widths) + "-+------"
    return "\n".join([fmt(head), rule, *(fmt(line) for line in lines)])


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model, Python and kernel: the context of absolute figures."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"cores": os.cpu_count(), "memory_gib": round(pages / 2**30, 1), "cpu": model,
            "python": platform.python_version(), "kernel": platform.release()}


def write_json(path: Path, rows: Sequence[Row], raw: dict[str, Any],
               config: dict[str, Any], wall_s: float) -> None:
    document = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "machine": machine(),
                "config": config, "wall_s": round(wall_s, 1),
                "rows": [row.as_dict() for row in rows], "raw": raw}
    path.write_text(json.dumps(document, indent=1, default=str) + "\n")
