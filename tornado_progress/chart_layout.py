"""What a chart shows and where: its immutable input (`ChartInput`), the sizes it is drawn at,
and the layout of its rows (`plan`), in px at scale 1.

Rows are 26 px until the picture reaches MAX_HEIGHT; more workers get thinner rows, which
lose their text and then turn into strips of device pixels (several workers to a strip for
thousands of workers).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import views
from .model import Worker
from .printable import printable
from .text_draw import Pen

MAX_HEIGHT = 4096  # px at scale 1: the picture never grows past it, however many workers
MARGIN = 12.0
GAP = 8.0
ROW_H = 26.0  # a row while every row fits
BAR_H = 20.0
TEXT_MIN_ROW = 16.0  # thinner rows lose their labels and strings: they would not be legible
STRIP_MAX_PX = 3.0  # rows thinner than this many device pixels are drawn as crisp strips
MARK_W = 9.0  # a mark beside each failed or stale bar once labels are gone
MARK_MIN_H = 5.0  # so that one failed worker among 10,000 still shows
TITLE_SIZE = 16.0
SMALL_SIZE = 12.0


@dataclass(frozen=True)
class ChartInput:
    jobid: str
    desc: str
    workers: tuple[Worker, ...]
    now: float
    stale_after: float
    expected: int | None = None  # workers the job expects (create's workers)


def chart_summary(chart: ChartInput) -> dict[str, Any]:
    return views.summary_of(chart.workers, chart.now, chart.stale_after, chart.expected)


def order_key(worker: Worker) -> tuple[tuple[int, int | str], ...]:
    return views.natural_key(worker.workid)


def picture_time(now: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))


@dataclass(frozen=True)
class Layout:
    """Where the rows go, in px at scale 1."""

    width: int
    height: int
    scale: float
    header_h: float
    row_h: float
    bar_h: float
    font_size: float
    label_w: float
    figures_w: float
    bar_x: float
    bar_w: float
    text: bool  # rows carry their labels, strings and figures
    full_figures: bool  # current/total besides the percent
    strips: bool  # rows are device-pixel strips, several workers to a strip if need be

    def bar_top(self, index: int) -> float:
        return self.header_h + index * self.row_h + (self.row_h - self.bar_h) / 2

    def figures(self, worker: Worker) -> str:
        return views.figures(worker) if self.full_figures else views.percent_text(worker.fraction)


def chart_height(header_h: float, count: int) -> int:
    """The picture's height in px at scale 1: the header, a row per worker (one for the "no
    worker" line), never past MAX_HEIGHT, where rows get thinner instead."""
    return min(MAX_HEIGHT, math.ceil(header_h + max(count, 1) * ROW_H + MARGIN))


def plan(pen: Pen, header_h: float, workers: Sequence[Worker], width: int,
         scale: float) -> Layout:
    """Row height and columns below a header of `header_h` px, measuring with `pen`."""
    count = len(workers)
    room = MAX_HEIGHT - header_h - MARGIN
    row_h = ROW_H if count * ROW_H <= room else room / count
    bar_h = BAR_H if row_h >= ROW_H else row_h * 0.78
    font_size = min(12.0, bar_h * 0.62)
    inner = width - 2 * MARGIN
    text = row_h >= TEXT_MIN_ROW
    if text:
        pen.font(font_size)
        label_w = min(inner * 0.25, max((pen.width(printable(w.workid)) for w in workers),
                                        default=0.0))
        figures_w = max((pen.width(views.figures(w)) for w in workers), default=0.0)
        full_figures = figures_w <= inner * 0.3  # else a narrow picture: the percent alone
        if not full_figures:
            figures_w = pen.width("100%")
        bar_x = MARGIN + label_w + GAP
        bar_w = inner - label_w - figures_w - 2 * GAP
    else:
        label_w, figures_w, full_figures = MARK_W, 0.0, False
        bar_x = MARGIN + MARK_W + GAP / 2
        bar_w = inner - MARK_W - GAP / 2
    return Layout(width, chart_height(header_h, count), scale, header_h, row_h, bar_h,
                  font_size, label_w, figures_w, bar_x, bar_w, text, full_figures,
                  row_h * scale < STRIP_MAX_PX)
