"""Text for the PNG renderer: the font, and strings made safe for cairo's toy text API.

Strings are drawn as given; only what cairo would refuse or silently drop is replaced by a
visible stand-in (control characters by their pictures, noncharacters by U+FFFD).
"""

from __future__ import annotations

import functools
import subprocess
from typing import Any

import cairo

ELLIPSIS = "\u2026"
FALLBACK_FONT = "sans-serif"  # fontconfig's alias for whatever sans font the machine has
FONT = "DejaVu Sans"
# Control characters as their pictures (U+2400 block). Surrogates, which cannot be encoded,
# and noncharacters, which cairo's UTF-8 check refuses (leaving the context unusable), as
# U+FFFD.
_NONCHARACTERS = [*range(0xFDD0, 0xFDF0), *(plane + low for plane in range(0, 0x110000, 0x10000)
                                           for low in (0xFFFE, 0xFFFF))]
_PICTURES = ({code: 0x2400 + code for code in range(0x20)} | {0x7F: 0x2421}
             | dict.fromkeys([*range(0xD800, 0xE000), *_NONCHARACTERS], 0xFFFD))
# What pycairo raises for a string it refuses.
TEXT_ERRORS = (cairo.Error, ValueError, TypeError, UnicodeError)
def drawable(text: str) -> str:
    """The text as given, but for what cairo would refuse or silently drop."""
    return text.translate(_PICTURES)


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


