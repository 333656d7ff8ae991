"""A chart with rows of text drawn and compressed in horizontal bands (PNG only). Each band's
compressed bytes are kept by what the band shows, so that after one worker's update only its
band and the header (counts and time change) are drawn and compressed again; the picture is
the pieces joined into one zlib stream (png_encoder.assemble).

The pixels are those of drawing the whole picture at once: a band is drawn on a surface of
exactly its device rows, with the rows around it too, so that whatever of a neighbour reaches
into the band (a tall glyph) is there, in the same order.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import cairo

from . import png_encoder
from .chart_draw import draw_header, draw_rows
from .chart_layout import ChartInput, Layout
from .model import Worker
from .picture import paint, style
from .png_encoder import Piece
from .text_draw import Pen, new_pen

# About this many device rows to a band: small enough that one change redraws little, large
# enough that joining the pieces costs little.
BAND_PX = 48


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


def draw_band(lay: Layout, top: int, bottom: int, draw: Callable[[Pen], object]) -> Piece:
    """Device rows `top` to `bottom` of the picture, drawn by `draw` in the chart's
    coordinates, compressed on their own."""
    surface = cairo.ImageSurface(cairo.FORMAT_ARGB32, round(lay.width * lay.scale),
                                 bottom - top)
    ctx = cairo.Context(surface)
    ctx.translate(0, -top)
    ctx.scale(lay.scale, lay.scale)
    paint(ctx, "background")
    ctx.paint()
    draw(new_pen(ctx))
    return png_encoder.encode_piece(surface)


def row_key(worker: Worker, state: str, lay: Layout) -> Hashable:
    """What a row shows."""
    return worker.workid, worker.desc, worker.fraction, state, lay.figures(worker)


def render_banded(chart: ChartInput, workers: Sequence[Worker], states: Sequence[str],
                  counts: dict[str, Any], lay: Layout, cache: PieceCache) -> bytes:
    scale, count = lay.scale, len(workers)
    per_band = max(1, int(BAND_PX // (lay.row_h * scale)))
    height = round(lay.height * scale)

    def rows(low: int, high: int) -> Callable[[Pen], object]:
        low, high = max(0, low), min(count, high)
        return lambda pen: draw_rows(pen, workers[low:high], states[low:high], lay, low)

    def header(pen: Pen) -> None:
        draw_header(pen, chart, counts, lay.width)
        rows(0, 1)(pen)

    edges = [round(lay.header_h * scale)]
    edges += [round((lay.header_h + first * lay.row_h) * scale)
              for first in range(per_band, count, per_band)]
    edges.append(height)
    pieces = [draw_band(lay, 0, edges[0], header)]  # counts and time: new every picture
    keys = [row_key(worker, state, lay) for worker, state in zip(workers, states, strict=True)]
    for band, (top, bottom) in enumerate(itertools.pairwise(edges)):
        low, high = band * per_band - 1, (band + 1) * per_band + 1  # with the neighbours
        key = (style(), lay, top, bottom, tuple(keys[max(0, low):min(count, high)]))
        piece = cache.get(key)
        if piece is None:
            piece = draw_band(lay, top, bottom, rows(low, high))
            cache.put(key, piece)
        pieces.append(piece)
    return png_encoder.assemble(round(lay.width * scale), height, pieces)
