"""Which text engine the chart draws with, behind one small interface (`Pen`): Pango through
PangoCairo (pango_text.py: shaping, bidi, font fallback) where PyGObject and Pango's typelibs
are installed (the `pango` extra and Debian's gir1.2-pango-1.0), else cairo's toy text
(render_text.py), which draws only what DejaVu covers, left to right, unshaped.

The choice is made once, at import; the server says which at start (`announce`).
"""

from __future__ import annotations

import functools
import logging
import math
from types import ModuleType
from typing import Any, Protocol

import cairo

from . import picture
from .render_text import Glyph, ToyPen

log = logging.getLogger("tornado_progress.render")

PANGO: ModuleType | None
try:
    from . import pango_text as PANGO  # a module, or None: tests set it so
    MISSING = ""
except (ImportError, ValueError) as missing:  # no PyGObject, or no Pango typelib
    PANGO = None
    MISSING = f"{type(missing).__name__}: {missing}"

# What cairo or PyGObject raise for a string they refuse.
TEXT_ERRORS = (cairo.Error, ValueError, TypeError, UnicodeError)


class Pen(Protocol):
    """Draws strings on one cairo context (`ctx`), in one thread."""

    ctx: Any

    def font(self, size: float, bold: bool = False) -> None:
        """Strings from now on in `size` px (user space), bold or not."""

    def extents(self) -> tuple[float, float]:
        """The font's ascent and descent in px."""

    def width(self, text: str) -> float:
        """The advance of `text` in px."""

    def show(self, text: str, x: float, y: float, room: float = math.inf,
             right: bool = False) -> float:
        """Draws `text` with its baseline at y, starting at x (ending there if `right`), cut
        with an ellipsis to `room` px, nothing if not even the ellipsis fits; the width
        drawn."""

    def placed(self, text: str, x: float, y: float, room: float = math.inf,
               right: bool = False) -> list[Glyph] | None:
        """`text` as the glyphs `show` would draw, where the engine can hand them out (a
        plain string that fits), else None."""

    def show_placed(self, glyphs: list[Glyph]) -> None:
        """Draws glyphs from `placed` in the current font and colour, in one call: glyphs of
        strings that do not overlap come out as drawn string by string."""


def engine() -> str:
    return "pango" if PANGO is not None else "cairo-toy"


def new_pen(ctx: Any) -> Pen:
    """A pen for `ctx`, whose surface is drawn in the style under way (picture.style())."""
    if PANGO is not None:
        pen: Pen = PANGO.PangoPen(ctx, swapped=picture.style().swaps_red_blue)
        return pen
    return ToyPen(ctx)


@functools.cache
def announce() -> str:
    """Logs once which engine draws text (a warning for the fallback), and loads the fonts
    so that the first picture does not wait for fontconfig; returns the engine's name."""
    if PANGO is None:
        log.warning("pictures draw text with cairo's toy text API (no Pango: %s): no font "
                    "fallback or shaping; install tornado_progress[pango] and "
                    "gir1.2-pango-1.0 for CJK, emoji, Arabic and Hebrew", MISSING or "turned off")
    else:
        log.debug("pictures draw text with Pango %s", PANGO.version())
    pen = new_pen(cairo.Context(cairo.ImageSurface(cairo.FORMAT_ARGB32, 1, 1)))
    pen.width("w")
    return engine()
