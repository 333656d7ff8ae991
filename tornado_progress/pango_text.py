"""The chart's text through Pango and PangoCairo (PyGObject): shaping (Arabic joined, marks
on their letters), the Unicode bidi algorithm (Arabic and Hebrew right to left), font fallback
through fontconfig (CJK, emoji in colour where the font has them) and ellipsizing by Pango.

Importing this module raises ImportError or ValueError where PyGObject or Pango's typelibs are
missing; text_draw then falls back to cairo's toy text (render_text.py).

Pango objects are not thread-safe: PangoCairo's default font map is per thread, and so is the
Pango context made from it here (`Shelf`) with the strings it has shaped. A pen belongs to one
cairo context, and so to one render in one thread.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from typing import Any

import cairo
import gi

gi.require_version("Pango", "1.0")
gi.require_version("PangoCairo", "1.0")
from gi.repository import Pango, PangoCairo  # noqa: E402  (after require_version)

from .pango_words import GlyphRun, WordGlyphs  # noqa: E402
from .printable import ELLIPSIS  # noqa: E402
from .render_text import Glyph  # noqa: E402

FAMILIES = "DejaVu Sans, sans-serif"  # fontconfig adds the fallback fonts for what DejaVu lacks
# Characters that may come out of a colour font (emoji): a line holding one is drawn through
# a small surface of its own when the picture swaps red and blue (see PangoPen._show_swapped).
# Wider than emoji (arrows, dingbats): a line drawn that way needlessly looks the same.
_MAYBE_COLOUR = re.compile("[\u203c-\u2bff\u3030\u303d\u3297\u3299\ufe0f\U0001f000-\U0001faff]")
# Shaped strings kept per thread, the least recently drawn going first: at most this many, of
# at most this many characters in all (a layout takes about 32 bytes a character).
LAYOUTS_KEPT = 2048
CHARACTERS_KEPT = 1 << 18
_local = threading.local()

Font = tuple[float, bool]  # size in px, bold
Shaped = tuple[Any, float, float]  # a layout, its line's logical x and width in px


def version() -> str:
    return str(Pango.version_string())


def description(size: float, bold: bool) -> Any:
    found = Pango.FontDescription.from_string(FAMILIES)
    found.set_absolute_size(size * Pango.SCALE)
    found.set_weight(Pango.Weight.BOLD if bold else Pango.Weight.NORMAL)
    return found


def font_options() -> Any:
    """Unhinted metrics: a string measures the same at every scale and on every surface, so
    that the layout planned on a scratch surface holds on the picture."""
    options = cairo.FontOptions()
    options.set_hint_metrics(cairo.HINT_METRICS_OFF)
    return options


class Layouts:
    """One thread's Pango context (of the thread's font map, not of any cairo context: its
    strings measure and draw alike on every surface) and its font descriptions; new layouts
    of one line. It refers to nothing else of the thread's, so that it is freed, with its
    Pango objects, in the thread that made them."""

    def __init__(self) -> None:
        self.context = PangoCairo.FontMap.get_default().create_context()
        self.context.set_round_glyph_positions(False)
        PangoCairo.context_set_font_options(self.context, font_options())
        self.descriptions: dict[Font, Any] = {}

    def description(self, font: Font) -> Any:
        found = self.descriptions.get(font)
        if found is None:
            found = self.descriptions[font] = description(*font)
        return found

    def new(self, font: Font, text: str, room: float = math.inf) -> Any:
        """A new layout of `text` as one line, ellipsized to `room` px (inf: never)."""
        layout = Pango.Layout.new(self.context)
        layout.set_single_paragraph_mode(True)
        layout.set_font_description(self.description(font))
        if not math.isinf(room):
            layout.set_ellipsize(Pango.EllipsizeMode.END)
            layout.set_width(max(0, int(room * Pango.SCALE)))
        layout.set_text(text, -1)
        return layout


class Shelf:
    """One thread's layouts and the strings it has shaped, so that a string measured for the
    layout is drawn without shaping it again, and so is a row that did not change since the
    job's last picture; plain strings as glyphs of words shaped once (pango_words.py)."""

    def __init__(self) -> None:
        self.layouts = Layouts()
        self.context = self.layouts.context
        self.description = self.layouts.description
        self.extents: dict[Font, tuple[float, float]] = {}
        self.shaped: OrderedDict[tuple[Font, str, float], Shaped] = OrderedDict()
        self.characters = 0  # in the strings of `shaped`
        # No reference back to the shelf: a cycle would leave the thread's Pango objects to
        # the garbage collector, which may run in another thread.
        self.glyphs = WordGlyphs(FAMILIES.split(",")[0], font_options(), self.layouts.new)

    def shape(self, font: Font, text: str, room: float) -> Shaped:
        """`text` as one line, ellipsized to `room` px (inf: never)."""
        key = (font, text, room)
        found = self.shaped.get(key)
        if found is not None:
            self.shaped.move_to_end(key)
            return found
        layout = self.layouts.new(font, text, room)
        logical = layout.get_line_readonly(0).get_extents()[1]
        found = self.shaped[key] = (layout, logical.x / Pango.SCALE, logical.width / Pango.SCALE)
        self.characters += len(text)
        while len(self.shaped) > LAYOUTS_KEPT or self.characters > CHARACTERS_KEPT:
            (_, gone, _), _ = self.shaped.popitem(last=False)
            self.characters -= len(gone)
        return found


def shelf() -> Shelf:
    """This thread's shelf: Pango objects are never shared between threads."""
    found: Shelf | None = getattr(_local, "shelf", None)
    if found is None:
        found = _local.shelf = Shelf()
    return found


class PangoPen:
    """Draws strings on one cairo context, each as the one line of a Pango layout (strings
    reach it through `printable`, so they hold no line breaks)."""

    def __init__(self, ctx: Any, swapped: bool = False) -> None:
        self.ctx = ctx
        self.swapped = swapped  # the surface's red and blue are swapped (png_encoder)
        self.shelf = shelf()
        self._glyphs = self.shelf.glyphs
        self._font: Font = (12.0, False)

    def font(self, size: float, bold: bool = False) -> None:
        self._font = (size, bold)

    def extents(self) -> tuple[float, float]:
        """Ascent and descent of the font itself, whatever fallback fonts a string needs, so
        that every row's baseline sits at the same height in its bar."""
        found = self.shelf.extents.get(self._font)
        if found is None:
            metrics = self.shelf.context.get_metrics(self.shelf.description(self._font), None)
            found = self.shelf.extents[self._font] = (metrics.get_ascent() / Pango.SCALE,
                                                      metrics.get_descent() / Pango.SCALE)
        return found

    def width(self, text: str) -> float:
        """The advance of `text` in px."""
        run = self._glyphs.run(self._font, text)
        if run is not None:
            return run.width
        return self.shelf.shape(self._font, text, math.inf)[2]

    def show(self, text: str, x: float, y: float, room: float = math.inf,
             right: bool = False) -> float:
        """Draws `text` with its baseline at y from x (to x if `right`), ellipsized to fit in
        `room` px, or not at all if not even the ellipsis fits; returns the width drawn."""
        if not text:
            return 0.0
        run = self._fitting(text, room)
        if run is not None:
            self._glyphs.show(self.ctx, self._font, run, x - run.width if right else x, y)
            return run.width
        if self.width(text) <= room:
            room = math.inf
        elif self.width(ELLIPSIS) > room:
            return 0.0
        layout, logical_x, drawn = self.shelf.shape(self._font, text, room)
        left = (x - drawn if right else x) - logical_x
        line = layout.get_line_readonly(0)
        if self.swapped and _MAYBE_COLOUR.search(text):
            self._show_swapped(line, left, y)
        else:
            self.ctx.move_to(left, y)
            PangoCairo.show_layout_line(self.ctx, line)
        return drawn

    def placed(self, text: str, x: float, y: float, room: float = math.inf,
               right: bool = False) -> list[Glyph] | None:
        """`text` as the glyphs `show` would draw, if it is plain and fits in `room`."""
        run = self._fitting(text, room) if text else None
        if run is None:
            return None
        return self._glyphs.place(self.ctx, run, x - run.width if right else x, y)

    def _fitting(self, text: str, room: float) -> GlyphRun | None:
        """`text` as glyphs, if it is plain and fits in `room` (else Pango's to draw)."""
        run = self._glyphs.run(self._font, text)
        return run if run is not None and run.width <= room else None

    def show_placed(self, glyphs: list[Glyph]) -> None:
        """Draws glyphs from `placed` (of the current font) in one call."""
        self._glyphs.draw(self.ctx, self._font, glyphs)

    def _show_swapped(self, line: Any, x: float, y: float) -> None:
        """The layout's line at (x, y) on a surface whose red and blue are swapped: a colour
        glyph is an image that cairo copies as it is, so the line is drawn in true colours on
        a small surface of its own, whose red and blue are then swapped, and laid on."""
        ink = line.get_extents()[0]
        corners = [self.ctx.user_to_device(x + (ink.x + dx * ink.width) / Pango.SCALE,
                                           y + (ink.y + dy * ink.height) / Pango.SCALE)
                   for dx in (0, 1) for dy in (0, 1)]
        left = math.floor(min(cx for cx, _ in corners)) - 1
        top = math.floor(min(cy for _, cy in corners)) - 1
        width = math.ceil(max(cx for cx, _ in corners)) + 1 - left
        height = math.ceil(max(cy for _, cy in corners)) + 1 - top
        if width <= 0 or height <= 0:
            return
        piece = cairo.ImageSurface(cairo.FORMAT_ARGB32, width, height)
        on = cairo.Context(piece)
        on.set_matrix(self.ctx.get_matrix().multiply(cairo.Matrix(x0=-left, y0=-top)))
        blue, green, red, alpha = self.ctx.get_source().get_rgba()
        on.set_source_rgba(red, green, blue, alpha)
        on.move_to(x, y)
        PangoCairo.show_layout_line(on, line)
        swap_red_blue(piece)
        self.ctx.save()
        self.ctx.identity_matrix()
        self.ctx.set_source_surface(piece, left, top)
        self.ctx.paint()
        self.ctx.restore()


def check_cairo() -> None:
    """Raises ImportError unless PangoCairo can draw on pycairo's contexts, which a PyGObject
    built without pycairo's support cannot: the toy text is better than no text."""
    try:
        ctx = cairo.Context(cairo.ImageSurface(cairo.FORMAT_ARGB32, 1, 1))
        PangoCairo.show_layout_line(ctx, PangoCairo.create_layout(ctx).get_line_readonly(0))
    except (TypeError, ValueError, RuntimeError) as error:
        raise ImportError(f"PangoCairo cannot draw on pycairo's contexts: {error}") from error


def swap_red_blue(surface: Any) -> None:
    """Swaps bytes 0 and 2 of every pixel of an ARGB32 image surface."""
    surface.flush()
    data = surface.get_data()
    pixels = bytearray(data)
    pixels[0::4], pixels[2::4] = pixels[2::4], pixels[0::4]
    data[:] = pixels
    surface.mark_dirty()


check_cairo()
