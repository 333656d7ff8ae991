"""The surface a chart is drawn on and the colours it is drawn with: a PNG (an image surface,
encoded by png_encoder) or an SVG (cairo's SVG surface: vectors that scale without blur), in
the light or the dark palette.

A render runs in one thread from start to end, so the style under way is a context variable
that `paint` reads: the drawing code (render.py) names colours and never knows the output.
"""

from __future__ import annotations

import contextvars
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple
from xml.sax.saxutils import escape

import cairo

from . import palette, png_encoder

FORMATS = ("png", "svg")
CONTENT_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


class Style(NamedTuple):
    """What a picture is drawn as: its format and its palette (a tuple: a picture looks its
    colours up several times a row, and a tuple hashes in C)."""

    format: str = "png"
    theme: str = "light"

    def rgb(self, name: str) -> tuple[float, float, float]:
        """Colour `name` as cairo must get it: the PNG encoder writes the surface's bytes as
        they are, so a PNG is drawn with red and blue swapped (png_encoder.surface_rgb)."""
        if self.format == "png":
            return png_encoder.surface_rgb(name, self.theme)
        return palette.rgb(name, self.theme)

    @property
    def swaps_red_blue(self) -> bool:
        """Whether the surface holds red and blue swapped, as `rgb` hands colours to cairo:
        an image drawn on it as it is (a colour glyph) must be swapped too."""
        return self.format == "png" and png_encoder.DIRECT


PNG_LIGHT = Style()
_STYLE: contextvars.ContextVar[Style] = contextvars.ContextVar("style")


@contextmanager
def drawing_in(style: Style) -> Iterator[None]:
    token = _STYLE.set(style)
    try:
        yield
    finally:
        _STYLE.reset(token)


def style() -> Style:
    return _STYLE.get(PNG_LIGHT)


# Colours as cairo gets them, by style, name and png_encoder.DIRECT (which tests change): a
# picture paints several times a row.
_SOURCES: dict[tuple[Style, str, bool], tuple[float, float, float]] = {}


def source(name: str) -> tuple[float, float, float]:
    """Colour `name` of the style under way, as cairo gets it."""
    how = _STYLE.get(PNG_LIGHT)
    key = (how, name, png_encoder.DIRECT)
    found = _SOURCES.get(key)
    if found is None:
        found = _SOURCES[key] = how.rgb(name)
    return found


def paint(ctx: Any, name: str) -> None:
    ctx.set_source_rgb(*source(name))


def device_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """The picture's size in device pixels, as its surface is made."""
    return round(width * scale), round(height * scale)


def canvas(width: int, height: int, scale: float, title: str = ""
           ) -> tuple[Any, Callable[[], bytes]]:
    """A context to draw on at `width` x `height` px (times `scale` for a PNG), its background
    painted, and what turns the drawing into the picture's bytes."""
    if _STYLE.get(PNG_LIGHT).format == "svg":
        out = io.BytesIO()
        surface: Any = cairo.SVGSurface(out, width, height)
        surface.set_document_unit(cairo.SVGUnit.PX)
        ctx = cairo.Context(surface)

        def finish() -> bytes:
            surface.finish()
            return with_title(out.getvalue(), title)
    else:
        surface = cairo.ImageSurface(cairo.FORMAT_ARGB32, *device_size(width, height, scale))
        ctx = cairo.Context(surface)
        ctx.scale(scale, scale)

        def finish() -> bytes:
            return png_encoder.encode(surface)
    paint(ctx, "background")
    ctx.paint()
    return ctx, finish


def with_title(svg: bytes, title: str) -> bytes:
    """The SVG with a <title> (what screen readers and tooltips say) after its root's opening
    tag: cairo draws text as glyph outlines, which say nothing by themselves."""
    if not title:
        return svg
    end = svg.index(b">", svg.index(b"<svg")) + 1
    return svg[:end] + f"\n<title>{escape(title)}</title>".encode() + svg[end:]
