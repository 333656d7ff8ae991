"""What a chart shows and where: its immutable input (`ChartInput`), the sizes it is drawn at,
and the layout of its rows (`plan`), in px at scale 1.

Rows are 26 px while a job's rows fit in ROWS_H; more workers get thinner rows with smaller
text, so that 100 workers make a picture about 1,500 px tall, down to TEXT_MIN_ROW; past that
the picture grows, up to MAX_HEIGHT, where rows lose their text and then turn into strips of
device pixels (several workers to a strip for thousands of workers).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import views
from .model import Number, Worker
from .printable import printable
from .text_draw import Pen

MAX_HEIGHT = 4096  # px at scale 1: the picture never grows past it, however many workers
MARGIN = 12.0
GAP = 8.0
ROW_H = 26.0  # a row of a job with few workers
BAR_H = 20.0
FONT_SIZE = 12.0  # a row's text in a row of ROW_H
ROWS_H = 1400.0  # rows get thinner than ROW_H to keep within this height, down to TEXT_MIN_ROW
TEXT_MIN_ROW = 12.0  # thinner rows lose their labels and strings: they would not be legible
TEXT_MIN_BAR = 10.0
TEXT_MIN_FONT = 9.5
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


# Sort keys of worker names, kept: a job's names are sorted again for every picture of it.
ORDER_KEYS_KEPT = 1 << 16
_order_keys: dict[str, tuple[tuple[int, int | str], ...]] = {}


def order_key(worker: Worker) -> tuple[tuple[int, int | str], ...]:
    found = _order_keys.get(worker.workid)
    if found is None:
        if len(_order_keys) >= ORDER_KEYS_KEPT:
            _order_keys.clear()
        found = _order_keys[worker.workid] = views.natural_key(worker.workid)
    return found


@functools.lru_cache(maxsize=1 << 12, typed=True)  # typed: 10**20 and 1e20 read differently
def figures_text(current: Number, total: Number) -> str:
    """A worker's percent and counts (views.figures), by its counts."""
    return views.figures(Worker("", current, total, "", True, 0.0, 0, None))


def picture_time(now: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))


# About this many device rows to a band of a picture drawn in bands (chart_bands.py): small
# enough that one change redraws and compresses little, large enough that the pieces' overhead
# (a compressor each, a flush) stays small. Rows are drawn a band at a time in any picture
# (chart_draw.draw_rows), so that a picture drawn whole and one drawn in bands are the same.
BAND_PX = 128


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

    @property
    def band_rows(self) -> int:
        """Rows to a band (BAND_PX)."""
        return max(1, int(BAND_PX // (self.row_h * self.scale)))

    def figures(self, worker: Worker) -> str:
        if self.full_figures:
            return figures_text(worker.current, worker.total)
        return views.percent_text(worker.fraction)


def text_row(count: int) -> float:
    """The height of a row with text for `count` workers: ROW_H while they fit in ROWS_H,
    thinner down to TEXT_MIN_ROW beyond."""
    if count * ROW_H <= ROWS_H:
        return ROW_H
    return max(TEXT_MIN_ROW, ROWS_H / count)


def row_sizes(row_h: float) -> tuple[float, float]:
    """A row's bar height and font size: from BAR_H and FONT_SIZE in a row of ROW_H to
    TEXT_MIN_BAR and TEXT_MIN_FONT in a row of TEXT_MIN_ROW; thinner rows have no text."""
    if row_h < TEXT_MIN_ROW:
        return row_h * 0.78, TEXT_MIN_FONT
    along = min(1.0, (row_h - TEXT_MIN_ROW) / (ROW_H - TEXT_MIN_ROW))
    return (TEXT_MIN_BAR + along * (BAR_H - TEXT_MIN_BAR),
            TEXT_MIN_FONT + along * (FONT_SIZE - TEXT_MIN_FONT))


def chart_height(header_h: float, count: int) -> int:
    """The picture's height in px at scale 1: the header, a row per worker (one for the "no
    worker" line), never past MAX_HEIGHT, where rows get thinner instead."""
    rows = max(count, 1)
    return min(MAX_HEIGHT, math.ceil(header_h + rows * text_row(rows) + MARGIN))


def plan(pen: Pen, header_h: float, workers: Sequence[Worker], width: int,
         scale: float) -> Layout:
    """Row height and columns below a header of `header_h` px, measuring with `pen`."""
    count = len(workers)
    room = MAX_HEIGHT - header_h - MARGIN
    row_h = text_row(count) if count * text_row(count) <= room else room / count
    bar_h, font_size = row_sizes(row_h)
    inner = width - 2 * MARGIN
    text = row_h >= TEXT_MIN_ROW
    if text:
        pen.font(font_size)
        label_w = min(inner * 0.25, max((pen.width(printable(w.workid)) for w in workers),
                                        default=0.0))
        figures_w = max((pen.width(figures_text(w.current, w.total)) for w in workers),
                        default=0.0)
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
