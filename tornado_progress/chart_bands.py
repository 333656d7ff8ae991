"""A chart with rows of text drawn and compressed in horizontal bands (PNG only). Each band's
compressed bytes are kept by what the band shows, so that after one worker's update only its
band and the header's zones that changed (the overall bar; counts and time now and then) are
drawn and compressed again; the picture is the pieces joined into one zlib stream
(png_encoder.assemble).

The pixels are those of drawing the whole picture at once. The header's zones are drawn
clipped to their own device rows (chart_draw.draw_header), so a zone shows only itself. A run
of neighbouring bands to draw is drawn band by band on a window surface a band and a margin
tall, with the rows just around each band too, so that whatever of a neighbour reaches into a
band (a tall glyph) is there, in the same order; each band is compressed as soon as the rows
that reach into it are drawn, and the window moves down to the next.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import cairo

from . import png_encoder, views
from .chart_draw import HEADER_ZONES, clip_rows, draw_header, draw_rows, header_zones
from .chart_layout import ChartInput, Layout, picture_time
from .model import Worker
from .picture import paint, style
from .png_encoder import Piece
from .text_draw import Pen, new_pen

_local = threading.local()  # each render thread's window surface (window_at)
WINDOW_KEPT_BYTES = 4 << 20  # a larger window (a wide picture at a high scale) is not kept


class PieceCache:
    """Compressed bands by what they show, least recently used out first, within a byte
    budget; shared by the render threads (hence the lock)."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.bytes_used = 0
        self.hits = self.misses = 0
        self._pieces: OrderedDict[Hashable, Piece] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Piece | None:
        with self._lock:
            piece = self._pieces.get(key)
            if piece is None:
                self.misses += 1
                return None
            self.hits += 1
            self._pieces.move_to_end(key)
            return piece

    def put(self, key: Hashable, piece: Piece) -> None:
        with self._lock:
            if len(piece.data) > self.budget_bytes:
                return
            old = self._pieces.pop(key, None)
            if old is not None:
                self.bytes_used -= len(old.data)
            self._pieces[key] = piece
            self.bytes_used += len(piece.data)
            while self.bytes_used > self.budget_bytes:
                _, evicted = self._pieces.popitem(last=False)
                self.bytes_used -= len(evicted.data)


@dataclass(frozen=True)
class Band:
    """Device rows `top` to `bottom` of the picture, and what they show."""

    top: int
    bottom: int
    key: Hashable


class Packing:
    """The pieces of one picture: those kept, and those drawn now, compressed and kept in the
    cache."""

    def __init__(self, bands: Sequence[Band], cache: PieceCache) -> None:
        self.bands = bands
        self.cache = cache
        self._slots: list[Piece | None] = [None] * len(bands)

    def keep(self, index: int, piece: Piece) -> None:
        self._slots[index] = piece

    def pack(self, index: int, rows: Sequence[memoryview]) -> None:
        piece = self._slots[index] = png_encoder.compress(rows)
        self.cache.put(self.bands[index].key, piece)

    def pieces(self) -> list[Piece]:
        done = []
        for band, piece in zip(self.bands, self._slots, strict=True):
            if piece is None:
                raise RuntimeError(f"band {band.top}-{band.bottom} was neither kept nor drawn")
            done.append(piece)
        return done


def window_at(lay: Layout, top: int, height: int) -> tuple[Window, Pen]:
    """This thread's window for `height` device rows of the picture from row `top`, its
    background painted, and a pen on it in the chart's coordinates."""
    found = window(round(lay.width * lay.scale), height)
    clear(found.surface, 0, height)
    ctx = cairo.Context(found.surface)
    ctx.set_matrix(picture_rows(lay, top))
    return found, new_pen(ctx)


def picture_rows(lay: Layout, top: int) -> Any:
    """The matrix from the chart's coordinates to a surface whose first row is the picture's
    device row `top`."""
    return cairo.Matrix(lay.scale, 0, 0, lay.scale, 0, -top)


def clear(surface: Any, top: int, rows: int) -> None:
    """Paints device rows `top` to `top + rows` of `surface` with the background."""
    ctx = cairo.Context(surface)
    paint(ctx, "background")
    ctx.rectangle(0, top, surface.get_width(), rows)
    ctx.fill()


def row_key(worker: Worker, state: str, lay: Layout) -> Hashable:
    """What a row shows."""
    return worker.workid, worker.desc, worker.fraction, state, lay.figures(worker)


def zone_keys(chart: ChartInput, counts: dict[str, Any], first_row: Hashable
              ) -> dict[str, Hashable]:
    """What each zone of the header shows; the legend's band shows the first row's top too."""
    fraction = float(counts["fraction"])
    overall = views.percent_text(fraction) if counts["workers"] else ""
    return {"title": (chart.jobid, chart.desc, overall),
            "bar": fraction,
            "legend": (tuple(counts.get(name) for name in
                             ("ok", "done", "failed", "stale", "waiting")),
                       picture_time(chart.now), first_row)}


def render_banded(chart: ChartInput, workers: Sequence[Worker], states: Sequence[str],
                  counts: dict[str, Any], lay: Layout, cache: PieceCache) -> bytes:
    """The chart as PNG bytes: the header's zones, then bands of `per_band` rows, each taken
    from `cache` or drawn (missing neighbours in runs) and kept there."""
    scale, count = lay.scale, len(workers)
    per_band = lay.band_rows
    keys = [row_key(worker, state, lay) for worker, state in zip(workers, states, strict=True)]
    how = style()
    zones = header_zones(lay.header_h, scale)
    shown = zone_keys(chart, counts, keys[0])
    bands = [Band(*zones[zone], (how, lay, zone, shown[zone])) for zone in HEADER_ZONES]
    edges = [zones["legend"][1]]
    edges += [round((lay.header_h + first * lay.row_h) * scale)
              for first in range(per_band, count, per_band)]
    edges.append(round(lay.height * scale))
    for band, (top, bottom) in enumerate(itertools.pairwise(edges)):
        low, high = band * per_band - 1, (band + 1) * per_band + 1  # with the neighbours
        bands.append(Band(top, bottom,
                          (how, lay, top, bottom, tuple(keys[max(0, low):min(count, high)]))))
    found = [cache.get(band.key) for band in bands]
    missing = {index for index, piece in enumerate(found) if piece is None}
    packing = Packing(bands, cache)
    for index, piece in enumerate(found):
        if piece is not None:
            packing.keep(index, piece)

    def rows(pen: Pen, low: int, high: int) -> None:
        low, high = max(0, low), min(count, high)
        draw_rows(pen, workers[low:high], states[low:high], lay, low)

    zones_missing = [index for index in range(len(HEADER_ZONES)) if index in missing]
    if zones_missing:
        draw_zones(chart, counts, lay, bands, zones_missing, rows, packing)
    first_band = len(HEADER_ZONES)
    runs = [index for index in sorted(missing) if index >= first_band]
    for run in consecutive(runs):
        draw_run(lay, bands, [index - first_band for index in run], per_band, rows, packing,
                 first_band)
    return png_encoder.assemble(round(lay.width * scale), round(lay.height * scale),
                                packing.pieces())


def consecutive(indices: Sequence[int]) -> list[list[int]]:
    """Sorted indices in runs of consecutive ones: [1, 2, 5] as [[1, 2], [5]]."""
    runs: list[list[int]] = []
    for index in indices:
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs


def draw_zones(chart: ChartInput, counts: dict[str, Any], lay: Layout, bands: Sequence[Band],
               zones: Sequence[int], rows: Callable[[Pen, int, int], None],
               packing: Packing) -> None:
    """The header's zones `zones` (indices into HEADER_ZONES) on one surface of the header's
    rows, each clipped to its own (chart_draw.draw_header), the legend's with the first row,
    which may reach up into it, clipped to the legend too; then handed to `packing` zone by
    zone."""
    top, bottom = bands[0].top, bands[len(HEADER_ZONES) - 1].bottom
    if bottom == top:  # a header of no rows at this scale
        for index in zones:
            packing.pack(index, [])
        return
    (surface, rows_of), pen = window_at(lay, top, bottom - top)
    draw_header(pen, chart, counts, lay.width, lay.scale, [HEADER_ZONES[index] for index in zones])
    legend = HEADER_ZONES.index("legend")
    if legend in zones:
        pen.ctx.save()
        clip_rows(pen.ctx, bands[legend].top, bands[legend].bottom, lay.scale)
        rows(pen, 0, 1)
        pen.ctx.restore()
    surface.flush()
    for index in zones:
        packing.pack(index, rows_of[bands[index].top - top:bands[index].bottom - top])


def draw_run(lay: Layout, bands: Sequence[Band], run: Sequence[int], per_band: int,
             rows: Callable[[Pen, int, int], None], packing: Packing, offset: int) -> None:
    """Bands of rows `run` (consecutive) drawn one after the other on a window of the picture a
    band and a margin tall, with the rows just around them; each band handed to `packing` once
    the rows that may reach into it are drawn, then the window moved down to the next band,
    what is drawn of it kept. A window the size of a band stays in the processor's cache:
    drawing, copying and compressing a picture's worth of rows in one surface reached for
    memory at every step and took twice as long."""
    first, last = bands[offset + run[0]], bands[offset + run[-1]]
    margin = 2 * math.ceil(lay.row_h * lay.scale) + 2  # the row below a band, and its overflow
    height = min(last.bottom - first.top,
                 max(bands[offset + band].bottom - bands[offset + band].top for band in run)
                 + margin)
    top = first.top
    (surface, rows_of), pen = window_at(lay, top, height)
    ctx = pen.ctx
    drawn = run[0] * per_band - 1  # the row above the run's first: it may reach down into it
    for band in run:
        here = bands[offset + band]
        if here.bottom + margin - top > height:
            move_up(surface, here.top - top, height)
            top = here.top
            ctx.set_matrix(picture_rows(lay, top))
        high = (band + 1) * per_band + 1  # the row below the band's last, for the same reason
        rows(pen, drawn, high)
        drawn = high
        surface.flush()
        packing.pack(offset + band, rows_of[here.top - top:here.bottom - top])


class Window(NamedTuple):
    """A surface a band and a margin tall (or the header's rows), and views of its rows."""

    surface: Any
    rows: list[memoryview]


def window(width: int, height: int) -> Window:
    """A window at least `height` device rows of `width`: this thread's, kept for its next
    pictures, unless larger than WINDOW_KEPT_BYTES."""
    found: Window | None = getattr(_local, "window", None)
    if found is None or found.surface.get_width() != width or not height <= len(found.rows) \
            <= 4 * height:
        surface = cairo.ImageSurface(cairo.FORMAT_ARGB32, width, height)
        rows = png_encoder.row_views(memoryview(surface.get_data()), 4 * width,
                                     surface.get_stride(), 0, height)
        found = Window(surface, rows)
        _local.window = found if 4 * width * height <= WINDOW_KEPT_BYTES else None
    return found


def move_up(surface: Any, rows: int, height: int) -> None:
    """Moves the window's first `height` device rows up by `rows`, the background below."""
    surface.flush()
    stride = surface.get_stride()
    pixels = memoryview(surface.get_data())
    pixels[:(height - rows) * stride] = pixels[rows * stride:height * stride]
    surface.mark_dirty()
    clear(surface, height - rows, rows)
