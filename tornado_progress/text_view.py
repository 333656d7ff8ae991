"""The terminal view of a job (`text`): one frame of Unicode bars, a worker a line, sized to a
terminal's width, readable without colour (states are written in words) and coloured with ANSI
codes when asked.

A pure function of a `JobView`, like views.py, whose rules (state, summary, order, figures) it
shares, so that the terminal says what the page and the PNG say.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from . import views
from .model import JobView, Worker
from .printable import ELLIPSIS, printable

# Eighths of a cell, so that a bar moves smoothly in an 80-column terminal.
EIGHTHS = " ▏▎▍▌▋▊▉"
FULL = "█"
TRACK = "░"
# A state in words and a glyph: never left to colour alone.
MARKS = {"ok": "", "done": "✓ done", "failed": "✗ failed", "stale": "… stale"}
# ANSI SGR colours of the states (the palette's meaning, in a terminal's 16 colours).
ANSI = {"ok": "32", "done": "32;1", "failed": "31;1", "stale": "90"}
RESET = "\x1b[0m"
MIN_BAR_CELLS = 10
MAX_ID_CELLS = 32


@dataclass(frozen=True)
class TextOptions:
    width: int = 80  # terminal columns
    color: bool = False
    rows: int = 500  # worker lines at most; the problems come first when they are cut


def cells(text: str) -> int:
    """Terminal columns the text takes: East Asian wide characters take two, combining marks
    none."""
    return sum(0 if unicodedata.combining(ch) else
               2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def fit(text: str, width: int) -> str:
    """The text, or its longest head that fits in `width` columns with an ellipsis."""
    if cells(text) <= width:
        return text
    kept, used = [], 0
    for ch in text:
        size = cells(ch)
        if used + size > width - 1:
            break
        kept.append(ch)
        used += size
    return "".join(kept) + ELLIPSIS


def pad(text: str, width: int) -> str:
    text = fit(text, width)
    return text + " " * (width - cells(text))


def bar(fraction: float, width: int) -> str:
    """A bar of `width` cells filled to `fraction`, to an eighth of a cell."""
    eighths = int(max(0.0, min(fraction, 1.0)) * width * 8)
    full, part = divmod(eighths, 8)
    filled = FULL * full + (EIGHTHS[part] if part and full < width else "")
    return filled + TRACK * (width - cells(filled))


def chosen_workers(job: JobView, now: float, stale_after: float,
                   rows: int) -> tuple[list[Worker], int]:
    """The workers to show in natural order, and how many are left out: when they do not all
    fit, the failed and stale ones come first."""
    workers = views.sorted_workers(job)
    if len(workers) <= rows:
        return workers, 0
    rank = {"failed": 0, "stale": 1}
    shown = sorted(workers, key=lambda w: rank.get(views.state(w, now, stale_after), 2))[:rows]
    return shown, len(workers) - rows


def paint(text: str, state: str, options: TextOptions) -> str:
    return f"\x1b[{ANSI[state]}m{text}{RESET}" if options.color and text else text


def header(job: JobView, summary: dict[str, Any], options: TextOptions) -> list[str]:
    name = printable(job.desc or job.jobid)
    tail = f"  {views.percent_text(summary['fraction'])}  ETA {views.duration(summary['eta_s'])}"
    lines = [fit(name, options.width - cells(tail)) + tail]
    if job.desc:
        lines.append(fit(f"job {printable(job.jobid)}", options.width))
    counts = [f"{summary['running']} running", f"{summary['done']} done",
              f"{summary['failed']} failed", f"{summary['stale']} stale"]
    if summary["waiting"]:
        counts.append(f"{summary['waiting']} waiting")
    lines.append(fit(" · ".join(counts), options.width))
    return lines


def worker_line(worker: Worker, state: str, id_cells: int, options: TextOptions) -> str:
    """The worker's id, bar, percent, counts, state in words and desc. An id longer than its
    column gets a line of its own: cut ids would make calibrator1 and calibrator2 one."""
    workid = printable(worker.workid)
    own_line = cells(workid) > id_cells
    head = "  " if own_line else pad(workid, id_cells) + " "
    bar_cells = max(MIN_BAR_CELLS, options.width // 3)
    figures = f"{views.percent_text(worker.fraction):>4} {views.counts_text(worker)}"
    tail = " ".join(part for part in (MARKS[state], printable(worker.desc)) if part)
    room = options.width - cells(head) - bar_cells - 1 - cells(figures) - 2
    tail = f"  {fit(tail, room)}" if tail and room > 1 else ""
    marked = paint(tail, state, options) if MARKS[state] else tail
    line = f"{head}{paint(bar(worker.fraction, bar_cells), state, options)} {figures}{marked}"
    return f"{workid}\n{line}" if own_line else line


def frame(job: JobView, now: float, stale_after: float, options: TextOptions) -> str:
    """The whole job as text, ending with a newline."""
    summary = views.summary(job, now, stale_after)
    lines = [*header(job, summary, options), ""]
    workers, left_out = chosen_workers(job, now, stale_after, options.rows)
    id_cells = min(max((cells(printable(w.workid)) for w in workers), default=0),
                   max(8, min(MAX_ID_CELLS, options.width // 4)))
    lines += [worker_line(w, views.state(w, now, stale_after), id_cells, options)
              for w in workers]
    if left_out:
        lines.append(f"{ELLIPSIS} and {left_out} more workers (rows= shows more)")
    if not workers:
        lines.append("no worker has reported yet")
    return "\n".join(lines) + "\n"
