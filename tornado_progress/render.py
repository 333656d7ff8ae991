"""PNG charts of a job with pycairo: one anti-aliased bar per worker, its string inside.

Pure functions of immutable inputs (a `ChartInput` holds the job's fields and its worker
tuples), so that a large render can run in a worker thread while the job changes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cairo

from . import palette
from .model import Worker
from .views import natural_key

FONT = "DejaVu Sans"
HEADER_H = 40
ROW_H = 24
MAX_HEIGHT = 4096


@dataclass(frozen=True)
class ChartInput:
    jobid: str
    desc: str
    workers: tuple[Worker, ...]
    now: float
    stale_after: float


def _png(surface: cairo.ImageSurface) -> bytes:
    out = io.BytesIO()
    surface.write_to_png(out)
    return out.getvalue()


def _colour(worker: Worker, chart: ChartInput) -> str:
    if not worker.ok:
        return "failed"
    if worker.fraction >= 1.0:
        return "done"
    if chart.now - worker.updated > chart.stale_after:
        return "stale"
    return "ok"


def render_chart(chart: ChartInput, width: int, scale: float) -> bytes:
    workers = sorted(chart.workers, key=lambda worker: natural_key(worker.workid))
    row_h = ROW_H if workers else 0
    if len(workers) * row_h + HEADER_H > MAX_HEIGHT:
        row_h = max(0, (MAX_HEIGHT - HEADER_H) // len(workers))
    height = HEADER_H + max(len(workers) * row_h, ROW_H if not workers else 0) + 8
    surface = cairo.ImageSurface(cairo.FORMAT_ARGB32, int(width * scale), int(height * scale))
    ctx = cairo.Context(surface)
    ctx.scale(scale, scale)
    ctx.set_source_rgb(*palette.rgb("background"))
    ctx.paint()
    ctx.select_font_face(FONT, cairo.FONT_SLANT_NORMAL, cairo.FONT_WEIGHT_BOLD)
    ctx.set_font_size(15)
    ctx.set_source_rgb(*palette.rgb("text"))
    ctx.move_to(8, 24)
    ctx.show_text(chart.desc or chart.jobid)
    ctx.select_font_face(FONT, cairo.FONT_SLANT_NORMAL, cairo.FONT_WEIGHT_NORMAL)
    label_w = width * 0.2
    bar_x, bar_w = label_w + 8, width - label_w - 16
    for index, worker in enumerate(workers):
        y = HEADER_H + index * row_h
        pad = 2 if row_h > 6 else 0
        ctx.set_source_rgb(*palette.rgb("track"))
        ctx.rectangle(bar_x, y + pad, bar_w, max(1, row_h - 2 * pad))
        ctx.fill()
        ctx.set_source_rgb(*palette.rgb(_colour(worker, chart)))
        ctx.rectangle(bar_x, y + pad, bar_w * worker.fraction, max(1, row_h - 2 * pad))
        ctx.fill()
        if row_h >= 14:
            ctx.set_font_size(row_h * 0.5)
            ctx.set_source_rgb(*palette.rgb("text"))
            ctx.move_to(8, y + row_h * 0.68)
            ctx.show_text(worker.workid)
            ctx.move_to(bar_x + 4, y + row_h * 0.68)
            ctx.show_text(worker.desc)
    return _png(surface)


def render_not_found(jobid: str, scale: float = 1.0) -> bytes:
    """A small PNG that says the job is unknown, so an <img> shows text, not a broken icon."""
    width, height = 360, 48
    surface = cairo.ImageSurface(cairo.FORMAT_ARGB32, int(width * scale), int(height * scale))
    ctx = cairo.Context(surface)
    ctx.scale(scale, scale)
    ctx.set_source_rgb(*palette.rgb("background"))
    ctx.paint()
    ctx.select_font_face(FONT, cairo.FONT_SLANT_NORMAL, cairo.FONT_WEIGHT_BOLD)
    ctx.set_font_size(14)
    ctx.set_source_rgb(*palette.rgb("failed"))
    ctx.move_to(10, 20)
    ctx.show_text("No such progress job")
    ctx.select_font_face(FONT, cairo.FONT_SLANT_NORMAL, cairo.FONT_WEIGHT_NORMAL)
    ctx.set_font_size(12)
    ctx.set_source_rgb(*palette.rgb("muted-text"))
    ctx.move_to(10, 38)
    ctx.show_text(jobid if len(jobid) <= 48 else jobid[:47] + "\u2026")
    return _png(surface)
