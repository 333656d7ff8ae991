"""Charts of a job as pictures: a header with the job's summary, then one anti-aliased,
rounded bar per worker with the worker's strings, as PNG or SVG (picture.py), light or dark.

Pure functions of immutable inputs (a `ChartInput` holds the job's fields and a tuple of its
worker tuples), so that a large render can run in a worker thread while the job changes. Text
goes through text_draw: Pango where it is installed (shaped, right to left where the Unicode
bidi algorithm says so, with fallback fonts), else cairo's toy text. Strings are drawn as
given (but for what `printable` replaces), never interpreted as markup or format.
"""

from __future__ import annotations

from typing import Any

import cairo

from . import png_encoder, views
from .chart_bands import PieceCache, render_banded
from .chart_draw import draw_header, draw_marks, draw_rows, draw_strips, header_height
from .chart_layout import (
    MARGIN,
    MAX_HEIGHT,
    ROW_H,
    SMALL_SIZE,
    ChartInput,
    Layout,
    chart_height,
    chart_summary,
    order_key,
    picture_time,
    plan,
)
from .model import Worker
from .picture import Style, canvas, drawing_in, paint, style
from .printable import printable
from .render_text import plain
from .text_draw import TEXT_ERRORS, Pen, new_pen

__all__ = ["MAX_HEIGHT", "ChartInput", "Layout", "picture_height", "prepare", "render_chart",
           "render_not_found"]


def scratch_pen() -> Pen:
    """A pen on a 1 x 1 surface, for measuring text and the header without a picture."""
    return new_pen(cairo.Context(cairo.ImageSurface(cairo.FORMAT_ARGB32, 1, 1)))


def picture_height(chart: ChartInput, width: int) -> int:
    """The height `render_chart` gives `chart`, in px at scale 1, without drawing it. Cheap for
    a large job: rows that alone reach MAX_HEIGHT make the header's height (and the job's
    summary it needs) irrelevant."""
    count = len(chart.workers)
    if chart_height(0.0, count) >= MAX_HEIGHT:
        return MAX_HEIGHT
    return chart_height(header_height(scratch_pen(), chart_summary(chart), picture_time(chart.now),
                                      width), count)


def prepare(chart: ChartInput, width: int, scale: float
            ) -> tuple[list[Worker], list[str], dict[str, Any], Layout]:
    """Workers in natural order, their states, the job's summary and the layout."""
    workers = sorted(chart.workers, key=order_key)
    states = [views.state(worker, chart.now, chart.stale_after) for worker in workers]
    counts = chart_summary(chart)
    scratch = scratch_pen()
    header_h = header_height(scratch, counts, picture_time(chart.now), width)
    return workers, states, counts, plan(scratch, header_h, workers, width, scale)


def render_chart(chart: ChartInput, width: int, scale: float, how: Style | None = None,
                 pieces: PieceCache | None = None) -> bytes:
    """The chart as PNG (or SVG) bytes, `width` px wide at scale 1, every pixel times `scale`.
    With `pieces`, a PNG with rows of text is drawn in bands, those unchanged taken from it."""
    with drawing_in(how or Style()):
        return _render(chart, width, scale, pieces)


def _render(chart: ChartInput, width: int, scale: float, pieces: PieceCache | None) -> bytes:
    try:
        workers, states, counts, lay = prepare(chart, width, scale)
        if pieces is not None and workers and lay.text and style().format == "png" \
                and png_encoder.DIRECT:
            return render_banded(chart, workers, states, counts, lay, pieces)
        title = f"{printable(chart.desc or chart.jobid)}: {views.percent_text(counts['fraction'])}"
        ctx, finish = canvas(width, lay.height, scale, title)
        pen = new_pen(ctx)
        draw_header(pen, chart, counts, width, scale)
        if not workers:
            pen.font(SMALL_SIZE)
            paint(ctx, "muted-text")
            pen.show("No worker has reported yet.", MARGIN, lay.header_h + ROW_H * 0.6)
        elif lay.strips:
            draw_marks(ctx, draw_strips(ctx, [w.fraction for w in workers], states, lay))
        else:
            draw_marks(ctx, draw_rows(pen, workers, states, lay))
    except TEXT_ERRORS:
        # A string cairo refuses leaves its context in a lasting error state. `printable` knows
        # every such string we know of; should one slip past it, the chart is drawn again with
        # every string as ASCII escapes rather than not at all.
        escaped = ChartInput(plain(chart.jobid), plain(chart.desc), tuple(
            w._replace(workid=plain(w.workid), desc=plain(w.desc)) for w in chart.workers),
            chart.now, chart.stale_after, chart.expected)
        if escaped == chart:
            raise
        return _render(escaped, width, scale, pieces)
    return finish()


def render_not_found(scale: float = 1.0, how: Style | None = None) -> bytes:
    """A small picture that says the job is unknown, so an <img> shows text, not a broken icon.
    The same for every job: the job's id is in the picture's address already, and a picture
    that does not depend on the request can be drawn once and kept."""
    with drawing_in(how or Style()):
        ctx, finish = canvas(360, 52, scale, "No such progress job")
        pen = new_pen(ctx)
        pen.font(14, bold=True)
        paint(ctx, "failed")
        pen.show("No such progress job", MARGIN, 22)
        pen.font(SMALL_SIZE)
        paint(ctx, "muted-text")
        pen.show("Check the jobid in this picture's address.", MARGIN, 40)
        return finish()
