"""Text for the PNG renderer: the font, measuring and fitting strings with cairo's toy text
API (strings reach it through `printable`)."""

from __future__ import annotations

import functools
import subprocess
from typing import Any

import cairo

from .printable import ELLIPSIS

FALLBACK_FONT = "sans-serif"  # fontconfig's alias for whatever sans font the machine has
FONT = "DejaVu Sans"
# What pycairo raises for a string it refuses.
TEXT_ERRORS = (cairo.Error, ValueError, TypeError, UnicodeError)


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


def show(ctx: Any, text: str, x: float, y: float) -> None:
    """Draws text with its baseline at y."""
    ctx.move_to(x, y)
    ctx.show_text(text)


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


def plain(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii")


