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
    # The lowest and highest of the figures the value is the median of (one per round).
    spread: tuple[float, float] | None = None

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


def spread_of(values: Sequence[float | None]) -> tuple[float, float] | None:
    """(lowest, highest) of the figures that are there; None when there is none or one."""
    present = [value for value in values if value is not None]
    return (min(present), max(present)) if len(present) > 1 else None


def median_row(scenario: int, figure: str, values: Sequence[float | None], unit: str,
               goal_op: str | None = None, goal: float | None = None,
               note: str = "") -> Row:
    """A row whose value is the median of `values` (one per round), their spread beside it."""
    present = [value for value in values if value is not None]
    return Row(scenario, figure, median(present) if present else None, unit, goal_op, goal,
               note, spread_of(present))


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


def show_spread(row: Row) -> str:
    """"low-high" in the value's unit, without the unit."""
    if row.spread is None:
        return ""
    low, high = (show(value, row.unit).rsplit(" ", 1)[0] for value in row.spread)
    return f"{low}-{high}"


def table(rows: Sequence[Row]) -> str:
    """The table the benchmark prints: scenario, figure, value (the median over rounds), its
    spread over rounds (min-max), goal, verdict, note."""
    head = ("#", "figure", "value", "min-max", "goal", "result", "note")
    lines = [(str(row.scenario), row.figure, show(row.value, row.unit), show_spread(row),
              f"{row.goal_op} {show(row.goal, row.unit)}" if row.goal_op else "",
              row.verdict, row.note) for row in rows]
    widths = [max(len(head[i]), *(len(line[i]) for line in lines)) for i in range(6)]
    right = (True, False, True, True, False, False)

    def fmt(cells: Sequence[str]) -> str:
        aligned = [cell.rjust(width) if flush else cell.ljust(width)
                   for cell, width, flush in zip(cells[:6], widths, right, strict=True)]
        return " | ".join([*aligned, cells[6]]).rstrip()
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
