"""Helpers of the render tests: charts built from worker tuples, and PNGs read back with pycairo
itself so that tests can ask questions of pixels (which colour is where, how far a fill goes)
instead of comparing against golden files."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from dataclasses import dataclass

import cairo

from tornado_progress import palette, render
from tornado_progress.model import Job, Number, Worker

NOW = 1_764_391_200.0
STALE_AFTER = 300.0
Box = tuple[int, int, int, int]  # left, top, right, bottom; right and bottom excluded
# Strings a picture must draw (or draw escaped) without failing: controls, a lone surrogate,
# right-to-left text and an override, emoji sequences, a lone mark, format strings, markup,
# invisible characters, noncharacters, the longest desc.
HOSTILE = ["\x00nul", "a\nb\tc\rd\x1b[31m\x7f", "\ud800lone", "\u05e9\u05dc\u05d5\u05dd RTL",
           "\u202eevil\u202c", "\U0001f600\U0001f468\u200d\U0001f469\u200d\U0001f467",
           "\u0301", "%s %d {0} <b>&amp;</b>", "\ufeff\u200b", "\U0010ffff" * 40, "x" * 1024]


def worker(workid: str, current: Number, total: Number, desc: str = "", ok: bool = True,
           age: float = 1.0) -> Worker:
    """A worker last heard from `age` seconds before NOW."""
    return Worker(workid, current, total, desc, ok, NOW - age, 1, None)


def chart(*workers: Worker, desc: str = "a job", jobid: str = "job1") -> render.ChartInput:
    return render.ChartInput(jobid, desc, tuple(workers), NOW, STALE_AFTER)


def layout(chart_input: render.ChartInput, width: int = 800, scale: float = 1) -> render.Layout:
    return render.prepare(chart_input, width, scale)[3]


def job_layout(job: Job, now: float, stale_after: float, width: int = 800,
               scale: float = 1) -> render.Layout:
    """The layout of the picture the server draws of `job` at `now`."""
    copy = render.ChartInput(job.jobid, job.desc, tuple(job.workers.values()), now, stale_after)
    return layout(copy, width, scale)


def rgb(name: str) -> int:
    """A palette colour as a pixel value of `Picture.pixels`."""
    red, green, blue = palette.COLOURS[name]
    return red << 16 | green << 8 | blue


@dataclass(frozen=True)
class Picture:
    """A decoded PNG: `pixels[y * width + x]` is 0xRRGGBB (the image is opaque)."""

    width: int
    height: int
    pixels: list[int]

    def at(self, x: float, y: float) -> int:
        return self.pixels[int(y) * self.width + int(x)]

    def count(self, colour: int | Callable[[int], bool], box: Box | None = None) -> int:
        """Pixels of exactly `colour` (or for which it is true) inside `box`."""
        left, top, right, bottom = box or (0, 0, self.width, self.height)
        match = colour if callable(colour) else colour.__eq__
        return sum(1 for y in range(top, bottom)
                   for pixel in self.pixels[y * self.width + left:y * self.width + right]
                   if match(pixel))

    def rightmost(self, colour: int, y: float) -> int | None:
        """The x of the rightmost pixel of `colour` on row y."""
        start = int(y) * self.width
        row = self.pixels[start:start + self.width]
        return max((x for x, pixel in enumerate(row) if pixel == colour), default=None)

    def rows_with(self, colour: int, box: Box) -> list[int]:
        left, top, right, bottom = box
        return [y for y in range(top, bottom)
                if colour in self.pixels[y * self.width + left:y * self.width + right]]


def decode(png: bytes) -> Picture:
    surface = cairo.ImageSurface.create_from_png(io.BytesIO(png))
    width, height = surface.get_width(), surface.get_height()
    data = bytearray(surface.get_data())
    assert surface.get_stride() == 4 * width
    # Cairo keeps a pixel as one native-endian 32-bit word 0xAARRGGBB; setting the alpha byte
    # makes RGB24 and ARGB32 pictures read alike.
    alpha = 3 if sys.byteorder == "little" else 0
    data[alpha::4] = b"\xff" * (width * height)
    pixels = [value & 0xFFFFFF for value in memoryview(data).cast("I").tolist()]
    return Picture(width, height, pixels)


def light(pixel: int) -> bool:
    """Near white: text drawn on a fill."""
    return min(pixel >> 16, pixel >> 8 & 0xFF, pixel & 0xFF) >= 200


def dark(pixel: int) -> bool:
    """Near the text colour: text drawn on a track or the background."""
    return max(pixel >> 16, pixel >> 8 & 0xFF, pixel & 0xFF) <= 120


def near(name: str, tolerance: int = 40) -> Callable[[int], bool]:
    """Within `tolerance` of a palette colour in every channel: anti-aliased text of it."""
    want = palette.COLOURS[name]

    def match(pixel: int) -> bool:
        got = (pixel >> 16, pixel >> 8 & 0xFF, pixel & 0xFF)
        return all(abs(a - b) <= tolerance for a, b in zip(got, want, strict=True))
    return match


def inset(box: tuple[float, float, float, float], by: float = 3) -> Box:
    """The inside of an (x, y, w, h) box, away from its anti-aliased edges."""
    x, y, w, h = box
    return int(x + by), int(y + by), int(x + w - by), int(y + h - by)


def fill_box(lay: render.Layout, index: int, fraction: float) -> Box:
    return inset((lay.bar_x, lay.bar_top(index), lay.bar_w * fraction, lay.bar_h))


def track_box(lay: render.Layout, index: int, fraction: float) -> Box:
    start = lay.bar_x + lay.bar_w * fraction
    return inset((start, lay.bar_top(index), lay.bar_x + lay.bar_w - start, lay.bar_h))


def body(lay: render.Layout, picture: Picture) -> Box:
    """Everything below the header (whose legend has a swatch of every colour)."""
    return 0, int(lay.header_h * lay.scale), picture.width, picture.height
