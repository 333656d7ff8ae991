"""Drawing a chart's parts on a cairo context with a text pen (text_draw.Pen): the header with
the job's summary and legend, one anti-aliased, rounded bar per worker with its strings, or
device-pixel strips with marks for the failed and stale when workers are many.

Colours are named (picture.paint) and never known here; so is the text engine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cairo

from . import palette, views
from .bar_stamps import lay_bars, path_bar, rounded
from .chart_layout import (
    GAP,
    MARGIN,
    MARK_MIN_H,
    MARK_W,
    SMALL_SIZE,
    TITLE_SIZE,
    ChartInput,
    Layout,
    picture_time,
)
from .model import Worker
from .picture import paint, source, style
from .printable import printable
from .render_text import Glyph
from .text_draw import Pen

_LEGEND = (("running", "ok"), ("done", "done"), ("failed", "failed"), ("stale", "stale"))
# Which state a strip of several workers shows: the one that most needs to be seen.
_PRIORITY = ("failed", "stale", "ok", "done")
_MARKED = ("stale", "failed")  # drawn in this order, so that failed marks lie on top

Rect = tuple[float, float, float, float]
Mark = tuple[str, float, float]  # colour, top, bottom


def draw_bar(ctx: Any, box: Rect, fraction: float, colour: str) -> None:
    """A rounded track with its fill (bar_stamps.path_bar)."""
    path_bar(ctx, box, bar_radius(box[3]), fraction, source(track_of(colour)), source(colour))


def track_of(state: str) -> str:
    """The colour of the track under a fill of `state`."""
    return "failed-track" if state == "failed" else "track"


def bar_radius(height: float) -> float:
    return min(5.0, height / 2)


def draw_bars(ctx: Any, workers: Sequence[Worker], states: Sequence[str], lay: Layout,
              first: int) -> None:
    """The bars of rows `first` on: laid from stamps on a raster picture where they can be,
    else (and for fills too short for them) drawn each as its path."""
    rows = [(lay.bar_top(first + index), worker.fraction, source(track_of(state)), source(state))
            for index, (worker, state) in enumerate(zip(workers, states, strict=True))]
    radius = bar_radius(lay.bar_h)
    by_path: Sequence[int] = range(len(rows))  # a vector picture's bars are all paths
    if style().format == "png":
        by_path = lay_bars(ctx, lay.bar_x, lay.bar_w, lay.bar_h, radius, source("background"),
                           rows)
    for index in by_path:
        top, fraction, track, fill = rows[index]
        path_bar(ctx, (lay.bar_x, top, lay.bar_w, lay.bar_h), radius, fraction, track, fill)


# The header's overall bar: its top and height in px at scale 1, below the title's baseline.
HEADER_BAR_Y = MARGIN + TITLE_SIZE + 8
HEADER_BAR_H = 8.0
LEGEND_TOP = HEADER_BAR_Y + HEADER_BAR_H + 6
# The header's zones from top to bottom: each is drawn clipped to its own device rows, so that
# a picture drawn in bands can keep a zone that did not change (chart_bands.py).
HEADER_ZONES = ("title", "bar", "legend")
_SWATCH, _LINE_H = 9.0, 18.0

LegendItem = tuple[str, str, float, float]  # colour, label, x, baseline


def header_zones(header_h: float, scale: float) -> dict[str, tuple[int, int]]:
    """The device rows (from, to) of each zone of a header `header_h` px tall at `scale`: the
    overall bar's rows, whole, and those above and below it."""
    bar_top = math.floor(HEADER_BAR_Y * scale)
    bar_bottom = math.ceil((HEADER_BAR_Y + HEADER_BAR_H) * scale)
    return {"title": (0, bar_top), "bar": (bar_top, bar_bottom),
            "legend": (bar_bottom, max(bar_bottom, round(header_h * scale)))}


def clip_rows(ctx: Any, top: int, bottom: int, scale: float) -> None:
    """Clips to device rows `top` to `bottom` of the picture, on a context whose user space is
    the picture's at `scale` (maybe moved by whole device rows): an exact, pixel-aligned clip."""
    matrix = ctx.get_matrix()
    first = round(matrix.transform_point(0, top / scale)[1])
    last = round(matrix.transform_point(0, bottom / scale)[1])
    ctx.identity_matrix()
    ctx.rectangle(-1, first, 1 << 16, last - first)
    ctx.clip()
    ctx.set_matrix(matrix)


def legend_flow(pen: Pen, counts: dict[str, Any], when: str, width: int
                ) -> tuple[list[LegendItem], LegendItem, float]:
    """Where the legend's items go: counts by state, each after a swatch of its colour, then
    the time, flowing onto more lines in a narrow picture; and the header's height."""
    pen.font(SMALL_SIZE)
    right = width - MARGIN
    x, baseline = MARGIN, LEGEND_TOP + SMALL_SIZE
    waiting = (("waiting", "track"),) if counts.get("waiting") else ()  # expected, not seen
    items: list[LegendItem] = []
    for name, colour in (*_LEGEND, *waiting):
        label = f"{counts[name]} {name}"
        item_w = _SWATCH + 4 + pen.width(label)
        if x > MARGIN and x + item_w > right:
            x, baseline = MARGIN, baseline + _LINE_H
        items.append((colour, label, x, baseline))
        x += item_w + 12
    when_w = pen.width(when)
    if x + when_w > right:
        baseline += _LINE_H
    return items, ("muted-text", when, max(MARGIN, right - when_w), baseline), math.ceil(
        baseline + 6 + GAP)


def header_height(pen: Pen, counts: dict[str, Any], when: str, width: int) -> float:
    """The header's height in px, measured with `pen` and not drawn."""
    return legend_flow(pen, counts, when, width)[2]


def draw_header(pen: Pen, chart: ChartInput, counts: dict[str, Any], width: int,
                scale: float, zones: Sequence[str] = HEADER_ZONES) -> float:
    """Title, overall percent and bar, counts and time, each zone of `zones` clipped to its
    device rows at `scale`; returns the header's height."""
    ctx = pen.ctx
    items, when, header_h = legend_flow(pen, counts, picture_time(chart.now), width)
    for zone in zones:
        ctx.save()
        clip_rows(ctx, *header_zones(header_h, scale)[zone], scale)
        if zone == "title":
            draw_title(pen, chart, counts, width)
        elif zone == "bar":
            fraction = float(counts["fraction"])
            draw_bar(ctx, (MARGIN, HEADER_BAR_Y, width - 2 * MARGIN, HEADER_BAR_H), fraction,
                     "done" if fraction >= 1 else "ok")
        else:
            draw_legend(pen, items, when)
        ctx.restore()
    return header_h


def draw_title(pen: Pen, chart: ChartInput, counts: dict[str, Any], width: int) -> None:
    """The job's description (or id), its id after a description, and the overall percent."""
    ctx = pen.ctx
    pen.font(TITLE_SIZE, bold=True)
    overall = views.percent_text(float(counts["fraction"])) if counts["workers"] else ""
    baseline = MARGIN + TITLE_SIZE
    paint(ctx, "text")
    overall_w = pen.show(overall, width - MARGIN, baseline, right=True)
    room = width - 2 * MARGIN - overall_w - GAP
    title_w = pen.show(printable(chart.desc or chart.jobid), MARGIN, baseline, room)
    if chart.desc:  # the job's id too, as the page shows it, where there is room
        start = MARGIN + title_w + GAP
        pen.font(SMALL_SIZE)
        paint(ctx, "muted-text")
        pen.show("job " + printable(chart.jobid), start,
                 baseline, width - MARGIN - overall_w - GAP - start)


def draw_legend(pen: Pen, items: Sequence[LegendItem], when: LegendItem) -> None:
    """The legend's items where `legend_flow` put them."""
    ctx = pen.ctx
    pen.font(SMALL_SIZE)
    for colour, label, x, baseline in items:
        paint(ctx, colour)
        rounded(ctx, x, baseline - _SWATCH, _SWATCH, _SWATCH, 2)
        ctx.fill()
        paint(ctx, "muted-text")
        pen.show(label, x + _SWATCH + 4, baseline)
    colour, label, x, baseline = when
    paint(ctx, colour)
    pen.show(label, x, baseline)


def draw_rows(pen: Pen, workers: Sequence[Worker], states: Sequence[str],
              lay: Layout, first: int = 0) -> list[Mark]:
    """One rounded bar per worker, with its texts when rows are tall enough for them; the
    workers are the chart's rows from row `first` on (a band of the picture draws a few).
    Rows go in groups, the bars of a group before its texts, the groups ending where a band's
    rows drawn with the row below end (chart_bands.draw_run), so that a string reaching into
    the next row lies over or under its bar, and a group's names are drawn together, alike in
    a picture drawn whole or in bands."""
    marks: list[Mark] = []
    pen.font(lay.font_size)
    step, count, low = lay.band_rows, len(workers), 0
    while low < count:
        row = first + low
        high = min(count, ((row - 1) // step + 1) * step + 1 - first)
        draw_bars(pen.ctx, workers[low:high], states[low:high], lay, row)
        if lay.text:
            draw_texts(pen, workers[low:high], states[low:high], lay, row)
        else:
            for index in range(low, high):
                if states[index] in _MARKED:
                    top = lay.bar_top(first + index)
                    marks.append((states[index], top, top + lay.bar_h))
        low = high
    return marks


def draw_texts(pen: Pen, workers: Sequence[Worker], states: Sequence[str], lay: Layout,
               first: int) -> None:
    """The rows' strings, names and figures. The strings that lie on one colour (in the fill,
    or after it), the names, and the figures of a group go to cairo in one call of each colour
    where the pen can place them (pen.placed), after the strings cut by the fill's end: cairo
    draws glyphs of rows apart as it would row by row, and only the faint edge of a glyph that
    reaches into the next row's string may blend in another order."""
    ascent, descent = pen.extents()
    theme = style().theme
    names: list[Glyph] = []
    figures: list[Glyph] = []
    inside: dict[str, list[Glyph]] = {}
    for index, (worker, state) in enumerate(zip(workers, states, strict=True)):
        top = lay.bar_top(first + index)
        baseline = top + (lay.bar_h + ascent - descent) / 2
        draw_inside(pen, printable(worker.desc), (lay.bar_x, top, lay.bar_w, lay.bar_h),
                    lay.bar_w * worker.fraction, baseline, palette.text_on(state, theme),
                    inside)
        gather(pen, names, "text", printable(worker.workid), MARGIN, baseline, lay.label_w)
        gather(pen, figures, "muted-text", lay.figures(worker), lay.width - MARGIN, baseline,
               lay.figures_w, right=True)
    for colour, glyphs in (*inside.items(), ("text", names), ("muted-text", figures)):
        if glyphs:
            paint(pen.ctx, colour)
            pen.show_placed(glyphs)


def gather(pen: Pen, column: list[Glyph], colour: str, text: str, x: float,
           baseline: float, room: float = math.inf, right: bool = False) -> None:
    """A string of one colour: its glyphs added to `column`, drawn later with the group's
    others of that colour, or drawn at once if the pen cannot place them."""
    glyphs = pen.placed(text, x, baseline, room, right)
    if glyphs is None:
        paint(pen.ctx, colour)
        pen.show(text, x, baseline, room, right)
    else:
        column.extend(glyphs)


def draw_inside(pen: Pen, text: str, box: Rect, fill_w: float, baseline: float,
                on_fill: str, later: dict[str, list[Glyph]]) -> None:
    """The worker's string in its bar: in the fill if it fits there, else just after the fill,
    else from the bar's start, cut to the bar, each part in the colour that reads on what lies
    under it. A string of one colour goes to `later` under its colour if the pen can place
    it."""
    if not text:
        return
    ctx = pen.ctx
    x, y, w, h = box
    pad = min(6.0, h * 0.3)
    text_w = pen.width(text)
    for colour, start, fits in ((on_fill, x + pad, text_w <= fill_w - 2 * pad),
                                ("text", x + fill_w + pad, text_w <= w - fill_w - 2 * pad)):
        if fits:
            gather(pen, later.setdefault(colour, []), colour, text, start, baseline)
            return
    for colour, clip_x, clip_w in ((on_fill, x, fill_w), ("text", x + fill_w, w - fill_w)):
        ctx.save()
        ctx.rectangle(clip_x, y, clip_w, h)
        ctx.clip()
        paint(ctx, colour)
        pen.show(text, x + pad, baseline, w - 2 * pad)
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
        track = track_of(colour)
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
