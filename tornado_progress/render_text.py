"""The chart's text with cairo's toy text API: the fallback where Pango cannot be imported
(text_draw.py). One font, no fallback font for what it lacks (CJK and emoji come out as boxes),
no shaping and no bidi (Arabic unjoined, and left to right); strings reach it through
`printable`.
"""

from __future__ import annotations

import functools
import math
import subprocess
from typing import Any

import cairo

from .printable import ELLIPSIS

Glyph = tuple[int, float, float]  # a glyph's index, x and y, as cairo draws it

FALLBACK_FONT = "sans-serif"  # fontconfig's alias for whatever sans font the machine has
FONT = "DejaVu Sans"


def choose_family(matched: str | None) -> str:
    """FONT when fontconfig has it (or cannot be asked), else the generic sans-serif."""
    if matched is None or FONT.casefold() in matched.casefold():
        return FONT
    return FALLBACK_FONT


@functools.cache
def font_family() -> str:
    """The family to draw with, asked of fontconfig once per process."""
    try:
        found = subprocess.run(["fc-match", "-f", "%{family}", FONT], capture_output=True,
                               text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):  # no fontconfig tools: let cairo choose
        return choose_family(None)
    return choose_family(found.stdout)


def set_font(ctx: Any, size: float, bold: bool = False) -> None:
    weight = cairo.FONT_WEIGHT_BOLD if bold else cairo.FONT_WEIGHT_NORMAL
    ctx.select_font_face(font_family(), cairo.FONT_SLANT_NORMAL, weight)
    ctx.set_font_size(size)


def text_width(ctx: Any, text: str) -> float:
    return float(ctx.text_extents(text).x_advance)


def fit(ctx: Any, text: str, room: float) -> str:
    """The text, or its longest head that fits in `room` px with an ellipsis."""
    if text_width(ctx, text) <= room:
        return text
    if text_width(ctx, ELLIPSIS) > room:
        return ""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if text_width(ctx, text[:middle] + ELLIPSIS) <= room:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + ELLIPSIS


class ToyPen:
    """The text_draw.Pen of cairo's toy API, drawing on `ctx`."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        set_font(ctx, 12.0)

    def font(self, size: float, bold: bool = False) -> None:
        set_font(self.ctx, size, bold)

    def extents(self) -> tuple[float, float]:
        ascent, descent = self.ctx.font_extents()[:2]
        return float(ascent), float(descent)

    def width(self, text: str) -> float:
        return text_width(self.ctx, text)

    def show(self, text: str, x: float, y: float, room: float = math.inf,
             right: bool = False) -> float:
        cut = text if math.isinf(room) else fit(self.ctx, text, room)
        drawn = text_width(self.ctx, cut)
        self.ctx.move_to(x - drawn if right else x, y)
        self.ctx.show_text(cut)
        return drawn

    def placed(self, text: str, x: float, y: float, room: float = math.inf,
               right: bool = False) -> list[Glyph] | None:
        return None  # the toy API shows text whole

    def show_placed(self, glyphs: list[Glyph]) -> None:
        self.ctx.show_glyphs(glyphs)


def plain(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii")
