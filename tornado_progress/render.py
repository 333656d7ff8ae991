"""PNG charts of a job with pycairo: a header with the job's summary, then one anti-aliased,
rounded bar per worker with the worker's string drawn inside it.

Pure functions of immutable inputs (a `ChartInput` holds the job's fields and a tuple of its
worker tuples), so that a large render can run in a worker thread while the job changes.
Strings are drawn as given, never interpreted as markup, format or text direction.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cairo

from . import palette, views
from .model import Worker
from .picture import Style, canvas, drawing_in, paint, style
from .printable import printable
from .render_text import (
    TEXT_ERRORS,
    fit,
    plain,
    set_font,
    show,
    text_width,
)

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
_LEGEND = (("running", "ok"), ("done", "done"), ("failed", "failed"), ("stale", "stale"))
# Which state a strip of several workers shows: the one that most needs to be seen.
_PRIORITY = ("failed", "stale", "ok", "done")
_MARKED = ("stale", "failed")  # drawn in this order, so that failed marks lie on top

Rect = tuple[float, float, float, float]
Mark = tuple[str, float, float]  # colour, top, bottom


@dataclass(frozen=True)
class ChartInput:
    jobid: str
    desc: str
    workers: tuple[Worker, ...]
    now: float
    stale_after: float
    expected: int | None = None  # workers the job expects (create's workers)


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


def chart_summary(chart: ChartInput) -> dict[str, Any]:
    return views.summary_of(chart.workers, chart.now, chart.stale_after, chart.expected)


def order_key(worker: Worker) -> tuple[tuple[int, int | str], ...]:
    return views.natural_key(worker.workid)


def picture_time(now: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))


def rounded(ctx: Any, x: float, y: float, w: float, h: float, radius: float) -> None:
    radius = max(0.0, min(radius, w / 2, h / 2))
    ctx.new_sub_path()
    ctx.arc(x + w - radius, y + radius, radius, -math.pi / 2, 0)
    ctx.arc(x + w - radius, y + h - radius, radius, 0, math.pi / 2)
    ctx.arc(x + radius, y + h - radius, radius, math.pi / 2, math.pi)
    ctx.arc(x + radius, y + radius, radius, math.pi, 3 * math.pi / 2)
    ctx.close_path()


def draw_bar(ctx: Any, box: Rect, fraction: float, colour: str) -> None:
    """A rounded track with its fill, clipped to the track so a short fill keeps its shape."""
    x, y, w, h = box
    radius = min(5.0, h / 2)
    ctx.save()
    rounded(ctx, x, y, w, h, radius)
    paint(ctx, "failed-track" if colour == "failed" else "track")
    if fraction > 0:
        ctx.fill_preserve()
        ctx.clip()
        rounded(ctx, x, y, w * fraction, h, radius)
        paint(ctx, colour)
    ctx.fill()
    ctx.restore()


def draw_header(ctx: Any, chart: ChartInput, counts: dict[str, Any], width: int) -> float:
    """Title, overall percent and bar, counts and time; returns the header's height, so that
    running it on a scratch context measures it."""
    inner = width - 2 * MARGIN
    fraction = float(counts["fraction"])
    set_font(ctx, TITLE_SIZE, bold=True)
    overall = views.percent_text(fraction) if counts["workers"] else ""
    overall_w = text_width(ctx, overall)
    baseline = MARGIN + TITLE_SIZE
    paint(ctx, "text")
    show(ctx, overall, width - MARGIN - overall_w, baseline)
    title = fit(ctx, printable(chart.desc or chart.jobid), inner - overall_w - GAP)
    show(ctx, title, MARGIN, baseline)
    if chart.desc:  # the job's id too, as the page shows it, where there is room
        start = MARGIN + text_width(ctx, title) + GAP
        set_font(ctx, SMALL_SIZE)
        paint(ctx, "muted-text")
        room = width - MARGIN - overall_w - GAP - start
        show(ctx, fit(ctx, "job " + printable(chart.jobid), room), start, baseline)
    bar_y = baseline + 8
    draw_bar(ctx, (MARGIN, bar_y, inner, 8), fraction, "done" if fraction >= 1 else "ok")
    return draw_legend(ctx, counts, picture_time(chart.now), bar_y + 8 + 6, width)


def draw_legend(ctx: Any, counts: dict[str, Any], when: str, top: float, width: int) -> float:
    """Counts by state, each after a swatch of its colour, then the time, flowing onto more
    lines in a narrow picture; returns where the rows start."""
    set_font(ctx, SMALL_SIZE)
    swatch, line_h, right = 9.0, 18.0, width - MARGIN
    x, baseline = MARGIN, top + SMALL_SIZE
    waiting = (("waiting", "track"),) if counts.get("waiting") else ()  # expected, not seen
    for name, colour in (*_LEGEND, *waiting):
        label = f"{counts[name]} {name}"
        item_w = swatch + 4 + text_width(ctx, label)
        if x > MARGIN and x + item_w > right:
            x, baseline = MARGIN, baseline + line_h
        paint(ctx, colour)
        rounded(ctx, x, baseline - swatch, swatch, swatch, 2)
        ctx.fill()
        paint(ctx, "muted-text")
        show(ctx, label, x + swatch + 4, baseline)
        x += item_w + 12
    when_w = text_width(ctx, when)
    if x + when_w > right:
        baseline += line_h
    show(ctx, when, max(MARGIN, right - when_w), baseline)
    return math.ceil(baseline + 6 + GAP)


def scratch_context() -> Any:
    """A context on a 1 x 1 surface, for measuring text and the header without a picture."""
    return cairo.Context(cairo.ImageSurface(cairo.FORMAT_ARGB32, 1, 1))


def chart_height(header_h: float, count: int) -> int:
    """The picture's height in px at scale 1: the header, a row per worker (one for the "no
    worker" line), never past MAX_HEIGHT, where rows get thinner instead."""
    return min(MAX_HEIGHT, math.ceil(header_h + max(count, 1) * ROW_H + MARGIN))


def picture_height(chart: ChartInput, width: int) -> int:
    """The height `render_chart` gives `chart`, in px at scale 1, without drawing it. Cheap for
    a large job: rows that alone reach MAX_HEIGHT make the header's height (and the job's
    summary it needs) irrelevant."""
    count = len(chart.workers)
    if chart_height(0.0, count) >= MAX_HEIGHT:
        return MAX_HEIGHT
    return chart_height(draw_header(scratch_context(), chart, chart_summary(chart), width),
                        count)


def plan(chart: ChartInput, workers: Sequence[Worker], counts: dict[str, Any], width: int,
         scale: float) -> Layout:
    """Row height and columns: rows get thinner past what fits in MAX_HEIGHT."""
    scratch = scratch_context()
    header_h = draw_header(scratch, chart, counts, width)
    count = len(workers)
    room = MAX_HEIGHT - header_h - MARGIN
    row_h = ROW_H if count * ROW_H <= room else room / count
    height = chart_height(header_h, count)
    bar_h = BAR_H if row_h >= ROW_H else row_h * 0.78
    font_size = min(12.0, bar_h * 0.62)
    inner = width - 2 * MARGIN
    text = row_h >= TEXT_MIN_ROW
    if text:
        set_font(scratch, font_size)
        label_w = min(inner * 0.25, max((text_width(scratch, printable(w.workid))
                                         for w in workers), default=0.0))
        figures_w = max((text_width(scratch, views.figures(w)) for w in workers), default=0.0)
        full_figures = figures_w <= inner * 0.3  # else a narrow picture: the percent alone
        if not full_figures:
            figures_w = text_width(scratch, "100%")
        bar_x = MARGIN + label_w + GAP
        bar_w = inner - label_w - figures_w - 2 * GAP
    else:
        label_w, figures_w, full_figures = MARK_W, 0.0, False
        bar_x = MARGIN + MARK_W + GAP / 2
        bar_w = inner - MARK_W - GAP / 2
    return Layout(width, height, scale, header_h, row_h, bar_h, font_size, label_w, figures_w,
                  bar_x, bar_w, text, full_figures, row_h * scale < STRIP_MAX_PX)


def draw_rows(ctx: Any, workers: Sequence[Worker], states: Sequence[str],
              lay: Layout) -> list[Mark]:
    """One rounded bar per worker, with its texts when rows are tall enough for them."""
    marks: list[Mark] = []
    set_font(ctx, lay.font_size)
    ascent, descent = ctx.font_extents()[:2]
    for index, worker in enumerate(workers):
        top = lay.bar_top(index)
        draw_bar(ctx, (lay.bar_x, top, lay.bar_w, lay.bar_h), worker.fraction, states[index])
        if not lay.text:
            if states[index] in _MARKED:
                marks.append((states[index], top, top + lay.bar_h))
            continue
        baseline = top + (lay.bar_h + ascent - descent) / 2
        paint(ctx, "text")
        show(ctx, fit(ctx, printable(worker.workid), lay.label_w), MARGIN, baseline)
        numbers = fit(ctx, lay.figures(worker), lay.figures_w)
        paint(ctx, "muted-text")
        show(ctx, numbers, lay.width - MARGIN - text_width(ctx, numbers), baseline)
        on_fill = palette.text_on(states[index], style().theme)
        draw_inside(ctx, printable(worker.desc), (lay.bar_x, top, lay.bar_w, lay.bar_h),
                    lay.bar_w * worker.fraction, baseline, on_fill)
    return marks


def draw_inside(ctx: Any, text: str, box: Rect, fill_w: float, baseline: float,
                on_fill: str) -> None:
    """The worker's string in its bar: in the fill if it fits there, else just after the fill,
    else from the bar's start, cut to the bar, each part in the colour that reads on what lies
    under it."""
    if not text:
        return
    x, y, w, h = box
    pad = min(6.0, h * 0.3)
    text_w = text_width(ctx, text)
    if text_w <= fill_w - 2 * pad:
        paint(ctx, on_fill)
        show(ctx, text, x + pad, baseline)
        return
    if text_w <= w - fill_w - 2 * pad:
        paint(ctx, "text")
        show(ctx, text, x + fill_w + pad, baseline)
        return
    text = fit(ctx, text, w - 2 * pad)
    for colour, clip_x, clip_w in ((on_fill, x, fill_w), ("text", x + fill_w, w - fill_w)):
        ctx.save()
        ctx.rectangle(clip_x, y, clip_w, h)
        ctx.clip()
        paint(ctx, colour)
        show(ctx, text, x + pad, baseline)
        ctx.restore()


def draw_strips(ctx: Any, fractions: Sequence[float], states: Sequence[str],
                lay: Layout) -> list[Mark]:
    """Rows thinner than a few device pixels: crisp strips on whole device rows, each worker
    its own strip while there are enough rows, else several workers to a strip showing their
    mean progress in the colour of the state that most needs to be seen."""
    scale, count = lay.scale, len(fractions)
    top = round(lay.header_h * scale)
    rows = max(1, int((lay.header_h + count * lay.row_h) * scale) - top)
    strips = min(count, rows)
    x, full = round(lay.bar_x * scale), round(lay.bar_w * scale)
    rects: dict[str, list[Rect]] = {}
    marks: list[Mark] = []
    for strip in range(strips):
        low, high = strip * count // strips, (strip + 1) * count // strips
        y0, y1 = top + strip * rows // strips, top + (strip + 1) * rows // strips
        group = states[low:high]
        colour = group[0] if len(group) == 1 else next(s for s in _PRIORITY if s in group)
        track = "failed-track" if colour == "failed" else "track"
        rects.setdefault(track, []).append((x, y0, full, y1 - y0))
        fill_w = round(full * sum(fractions[low:high]) / (high - low))
        if fill_w:
            rects.setdefault(colour, []).append((x, y0, fill_w, y1 - y0))
        if colour in _MARKED:
            marks.append((colour, y0 / scale, y1 / scale))
    ctx.save()
    ctx.identity_matrix()
    ctx.set_antialias(cairo.ANTIALIAS_NONE)
    for colour in ("track", "failed-track", "ok", "done", "stale", "failed"):
        for rect in rects.get(colour, ()):
            ctx.rectangle(*rect)
        paint(ctx, colour)
        ctx.fill()
    ctx.restore()
    return marks


def draw_marks(ctx: Any, marks: Sequence[Mark]) -> None:
    """A mark in the gutter for each failed or stale row, never thinner than MARK_MIN_H:
    failed marks last, on top, because they matter most."""
    for wanted in _MARKED:
        for colour, top, bottom in marks:
            if colour == wanted:
                height = max(bottom - top, MARK_MIN_H)
                rounded(ctx, MARGIN, (top + bottom - height) / 2, MARK_W, height, 1.5)
        paint(ctx, wanted)
        ctx.fill()


def prepare(chart: ChartInput, width: int, scale: float
            ) -> tuple[list[Worker], list[str], dict[str, Any], Layout]:
    """Workers in natural order, their states, the job's summary and the layout."""
    workers = sorted(chart.workers, key=order_key)
    states = [views.state(worker, chart.now, chart.stale_after) for worker in workers]
    counts = chart_summary(chart)
    return workers, states, counts, plan(chart, workers, counts, width, scale)


def render_chart(chart: ChartInput, width: int, scale: float,
                 how: Style | None = None) -> bytes:
    """The chart as PNG (or SVG) bytes, `width` px wide at scale 1, every pixel times `scale`."""
    with drawing_in(how or Style()):
        return _render(chart, width, scale)


def _render(chart: ChartInput, width: int, scale: float) -> bytes:
    try:
        workers, states, counts, lay = prepare(chart, width, scale)
        title = f"{printable(chart.desc or chart.jobid)}: {views.percent_text(counts['fraction'])}"
        ctx, finish = canvas(width, lay.height, scale, title)
        draw_header(ctx, chart, counts, width)
        if not workers:
            set_font(ctx, SMALL_SIZE)
            paint(ctx, "muted-text")
            show(ctx, "No worker has reported yet.", MARGIN, lay.header_h + ROW_H * 0.6)
        elif lay.strips:
            draw_marks(ctx, draw_strips(ctx, [w.fraction for w in workers], states, lay))
        else:
            draw_marks(ctx, draw_rows(ctx, workers, states, lay))
    except TEXT_ERRORS:
        # A string cairo refuses leaves its context in a lasting error state. `printable` knows
        # every such string we know of; should one slip past it, the chart is drawn again with
        # every string as ASCII escapes rather than not at all.
        escaped = ChartInput(plain(chart.jobid), plain(chart.desc), tuple(
            w._replace(workid=plain(w.workid), desc=plain(w.desc)) for w in chart.workers),
            chart.now, chart.stale_after, chart.expected)
        if escaped == chart:
            raise
        return _render(escaped, width, scale)
    return finish()


def render_not_found(scale: float = 1.0, how: Style | None = None) -> bytes:
    """A small picture that says the job is unknown, so an <img> shows text, not a broken icon.
    The same for every job: the job's id is in the picture's address already, and a picture
    that does not depend on the request can be drawn once and kept."""
    with drawing_in(how or Style()):
        ctx, finish = canvas(360, 52, scale, "No such progress job")
        set_font(ctx, 14, bold=True)
        paint(ctx, "failed")
        show(ctx, "No such progress job", MARGIN, 22)
        set_font(ctx, SMALL_SIZE)
        paint(ctx, "muted-text")
        show(ctx, "Check the jobid in this picture's address.", MARGIN, 40)
        return finish()
