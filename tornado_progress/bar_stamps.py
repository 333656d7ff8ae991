"""The chart's rounded bars: one bar as its anti-aliased path (`path_bar`), and the bars of
consecutive rows on a raster picture laid from small images drawn once (`lay_bars`).

Where rows lie a whole number of device pixels apart, every row's bar has the same place
within its device pixels, so the track, and the fill up to where its rounded end begins, are
the same pixels in every row. They are drawn once, one row's pitch tall, on the picture's
background on a small surface (a "stamp": a track, or a track with its fill the whole width)
and copied through pixel-aligned rectangles, which move them by whole pixels without
resampling: a row's filled part from one stamp, the rest of its track from the other, every
row of a group that takes the same stamp in one fill, the stamp repeated down the rows by
cairo. (A stamp of one row, not of many, keeps the memory a picture reads small: after a
pause, every byte a render touches comes from main memory again.) The rounded end of each
fill, which moves with its fraction, is copied from a stamp of its own (drawn for that place,
kept for the next bar that ends there), from the pixel edge where the fill's copy stops: the
joins fall on pixel edges and leave no seam. An end close to the track's own end is a path.
A stamp's place is taken to 1/256 of a pixel, and its curves are flattened from coordinates
that differ from the picture's in their last bits, so a pixel on an anti-aliased edge may
differ from the bars' paths by a level of a channel at scale 1, a few on curved edges at other
scales. Which way a bar is drawn depends only on the picture's geometry, so a picture is
always the same.

Stamps are per thread (cairo surfaces are not shared between threads), a few at most.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import cairo

FIXED = 256  # cairo's sub-pixel steps per px: places are taken to that precision
STAMP_BYTES = 1 << 20  # a stamp's pixels at most: paths past it (a wide picture at a high scale)
STAMPS_KEPT = 8  # per thread, the least recently laid going first
ENDS_KEPT = 1024  # stamps of a fill's rounded end (a few KB each) per thread
MIN_GAP_PX = 2  # device px between two rows' bars: closer bars share pixels, which a stamp
#                 would blend otherwise than the paths one after the other
_local = threading.local()

Rgb = tuple[float, float, float]
BarRow = tuple[float, float, Rgb, Rgb]  # a row's bar: its top, fraction, track, fill colour
# A fill's rounded end: the bar's sub-pixel top (device px), height and radius in px, scale,
# where the end is from the stamp's first column (device px), the stamp's columns,
# the background, the track's colour and the fill's.
EndKey = tuple[float, float, float, float, float, int, Rgb, Rgb, Rgb]
# Sub-pixel place (x, y) in device px, size and radius in px, scale, the stamp's height in
# device px (the rows' pitch; a lone row's bar height), the background, the track's colour and
# the fill's (None: a stamp of a track alone).
StampKey = tuple[float, float, float, float, float, float, int, Rgb, Rgb, Rgb | None]


def rounded(ctx: Any, x: float, y: float, w: float, h: float, radius: float) -> None:
    radius = max(0.0, min(radius, w / 2, h / 2))
    ctx.new_sub_path()
    ctx.arc(x + w - radius, y + radius, radius, -math.pi / 2, 0)
    ctx.arc(x + w - radius, y + h - radius, radius, 0, math.pi / 2)
    ctx.arc(x + radius, y + h - radius, radius, math.pi / 2, math.pi)
    ctx.arc(x + radius, y + radius, radius, math.pi, 3 * math.pi / 2)
    ctx.close_path()


def path_bar(ctx: Any, box: tuple[float, float, float, float], radius: float, fraction: float,
             track: Rgb, fill: Rgb) -> None:
    """A rounded track with its fill. A fill shorter than the track's rounded ends is clipped
    to the track so that it keeps the track's shape; a longer one lies inside it already."""
    x, y, w, h = box
    rounded(ctx, x, y, w, h, radius)
    ctx.set_source_rgb(*track)
    if fraction <= 0:
        ctx.fill()
        return
    fill_w = w * fraction
    if fill_w >= 2 * radius:
        ctx.fill()
        rounded(ctx, x, y, fill_w, h, radius)
        ctx.set_source_rgb(*fill)
        ctx.fill()
        return
    ctx.save()
    ctx.fill_preserve()
    ctx.clip()
    rounded(ctx, x, y, fill_w, h, radius)
    ctx.set_source_rgb(*fill)
    ctx.fill()
    ctx.restore()


def kept(name: str) -> OrderedDict[Any, Any]:
    """This thread's stamps of one kind ("stamps", "ends"), the least recently laid first."""
    found: OrderedDict[Any, Any] | None = getattr(_local, name, None)
    if found is None:
        found = OrderedDict()
        setattr(_local, name, found)
    return found


def stamps() -> OrderedDict[StampKey, Any]:
    return kept("stamps")


def end_stamps() -> OrderedDict[EndKey, Any]:
    return kept("ends")


def kept_or_made(stamps_kept: OrderedDict[Any, Any], key: Any, make: Callable[[], Any],
                 limit: int) -> Any:
    """The stamp for `key` from `stamps_kept`, or `make()`'s, kept with at most `limit`."""
    found = stamps_kept.get(key)
    if found is not None:
        stamps_kept.move_to_end(key)
        return found
    found = stamps_kept[key] = make()
    while len(stamps_kept) > limit:
        stamps_kept.popitem(last=False)
    return found


def blank(width: int, height: int, background: Rgb, scale: float) -> tuple[Any, Any]:
    """A new stamp's surface of `width` x `height` device px painted with `background`, and a
    context on it at the picture's scale."""
    surface = cairo.ImageSurface(cairo.FORMAT_ARGB32, width, height)
    ctx = cairo.Context(surface)
    ctx.set_source_rgb(*background)
    ctx.paint()
    ctx.scale(scale, scale)
    return surface, ctx


def stamp(key: StampKey) -> Any:
    """The bar `key` describes on the picture's background: the track, and the fill the whole
    width where a fill colour is given. Drawn at the picture's scale, as the picture's own
    paths would be, only moved by whole pixels."""
    return kept_or_made(stamps(), key, lambda: draw_stamp(key), STAMPS_KEPT)


def draw_stamp(key: StampKey) -> Any:
    sub_x, sub_y, w, h, radius, scale, tall, background, track, fill = key
    surface, ctx = blank(math.ceil(sub_x + w * scale), tall, background, scale)
    for colour in (track, fill):
        if colour is not None:
            rounded(ctx, sub_x / scale, sub_y / scale, w, h, radius)
            ctx.set_source_rgb(*colour)
            ctx.fill()
    return surface


class Placing(NamedTuple):
    """Where a group's bars fall in device pixels, and what its stamps are drawn from."""

    left: int  # the bars' first device column
    top: int  # the first bar's first device row
    step: int  # device rows from a bar to the next
    height: int  # device rows of one bar
    width: int  # device columns of one bar
    geometry: tuple[float, float, float, float, float, float, int, Rgb]  # StampKey's start


def placing(ctx: Any, x: float, w: float, h: float, radius: float, background: Rgb,
            tops: Sequence[float]) -> Placing | None:
    """The placing of bars x to x + w and `h` tall from `tops`, if ctx's matrix only scales
    and moves, the bars are the same whole number of device pixels apart, at least MIN_GAP_PX
    between two, and a stamp of one fits in STAMP_BYTES; else None."""
    xx, yx, xy, yy, x0, y0 = tuple(ctx.get_matrix())
    if yx or xy or xx != yy or xx <= 0 or not tops:
        return None
    left, sub_x = whole_and_sub(x0 + x * xx)
    first_top, sub_y = whole_and_sub(y0 + tops[0] * xx)
    step = whole_and_sub(y0 + tops[1] * xx)[0] - first_top if len(tops) > 1 else 0
    if (len(tops) > 1 and step - h * xx < MIN_GAP_PX) or any(
            whole_and_sub(y0 + top * xx) != (first_top + index * step, sub_y)
            for index, top in enumerate(tops)):
        return None
    height, width = math.ceil(sub_y + h * xx), math.ceil(sub_x + w * xx)
    tall = max(step, height)  # a stamp repeats every `step` rows; one row alone: its bar
    if 4 * width * tall > STAMP_BYTES:
        return None
    return Placing(left, first_top, step, height, width,
                   (sub_x, sub_y, w, h, radius, xx, tall, background))


def end_stamp(key: EndKey) -> Any:
    """A fill's rounded end on its flat track, on the picture's background: `columns` device
    columns from the pixel edge where the fill's stamp stops, the end `end` device px after
    it. The track and the fill reach past the stamp on both sides, so that only their flat
    parts and the fill's end are in it."""
    return kept_or_made(end_stamps(), key, lambda: draw_end_stamp(key), ENDS_KEPT)


def draw_end_stamp(key: EndKey) -> Any:
    sub_y, h, radius, scale, end, columns, background, track, fill = key
    surface, ctx = blank(columns, math.ceil(sub_y + h * scale), background, scale)
    beyond = 4 * radius  # past the stamp's edges, in px
    rounded(ctx, -beyond, sub_y / scale, columns / scale + 2 * beyond, h, radius)
    ctx.set_source_rgb(*track)
    ctx.fill()
    rounded(ctx, -beyond, sub_y / scale, end / scale + beyond, h, radius)
    ctx.set_source_rgb(*fill)
    ctx.fill()
    return surface


def lay_bars(ctx: Any, x: float, w: float, h: float, radius: float, background: Rgb,
             rows: Sequence[BarRow]) -> list[int]:
    """Lays the bars of consecutive rows, x to x + w and `h` tall from each row's top, on the
    picture's `background`, from stamps where `placing` allows; answers the indices of the
    rows it left to `path_bar` (all of them where stamps cannot serve, and fills too short to
    reach past both rounded ends). A stamp is copied, not blended: the bar's box is the
    background and the bar, whatever lay there."""
    where = placing(ctx, x, w, h, radius, background, [top for top, _, _, _ in rows])
    if where is None:
        return list(range(len(rows)))
    sub_x, sub_y, scale = where.geometry[0], where.geometry[1], where.geometry[5]
    x0 = ctx.get_matrix()[4]
    columns = math.ceil(radius * scale) + 2  # of an end stamp: from its edge past the fill's end
    flat = math.floor(sub_x + (w - radius) * scale)  # the track's right end starts after this
    spans: dict[tuple[Rgb, Rgb | None], list[tuple[int, int, int]]] = {}
    ends: list[tuple[int, int, EndKey]] = []  # rows, the column where their end starts, its key
    paths: dict[Rgb, list[tuple[int, int]]] = {}  # ends near the track's end: as paths
    by_path = []
    for index, (_, fraction, track, fill) in enumerate(rows):
        if fraction <= 0:
            spans.setdefault((track, None), []).append((index, 0, where.width))
            continue
        end = sub_x + w * fraction * scale
        cut = math.floor(end - radius * scale)
        if cut < sub_x + radius * scale:
            by_path.append(index)  # its fill's two rounded ends meet: the path's shape
            continue
        spans.setdefault((track, fill), []).append((index, 0, cut))
        if cut + columns <= flat:
            # The end's place from the stamp's edge as the path would have it, not rounded:
            # arcs from places a 256th of a pixel apart are flattened otherwise.
            exact = x0 + (x + w * fraction) * scale - where.left - cut
            ends.append((index, cut, (sub_y, h, radius, scale, exact, columns,
                                      where.geometry[-1], track, fill)))
            spans.setdefault((track, None), []).append((index, cut + columns, where.width))
        else:
            spans.setdefault((track, None), []).append((index, cut, where.width))
            paths.setdefault(fill, []).append((index, cut))
    ctx.save()
    ctx.identity_matrix()
    ctx.set_operator(cairo.OPERATOR_SOURCE)
    for (track_colour, fill_colour), laid in spans.items():
        lay(ctx, stamp((*where.geometry, track_colour, fill_colour)), where, laid)
    for index, cut, key in ends:
        ctx.set_source_surface(end_stamp(key), where.left + cut, where.top + index * where.step)
        ctx.rectangle(where.left + cut, where.top + index * where.step, columns, where.height)
        ctx.fill()
    ctx.restore()
    for fill, cuts in paths.items():
        draw_ends(ctx, x, w, h, radius, where, [(rows[index], cut) for index, cut in cuts])
        ctx.set_source_rgb(*fill)
        ctx.fill()
    return by_path


def draw_ends(ctx: Any, x: float, w: float, h: float, radius: float, where: Placing,
              cuts: Sequence[tuple[BarRow, int]]) -> None:
    """Adds to ctx's path each fill's rounded end, from the device column where its stamp's
    part stops, in the picture's own coordinates (arcs drawn at another scale come out
    differently)."""
    x0, scale = ctx.get_matrix()[4], where.geometry[5]
    for (top, fraction, _, _), cut in cuts:
        edge = (where.left + cut - x0) / scale  # a pixel edge
        end = x + w * fraction
        ctx.move_to(edge, top)
        ctx.arc(end - radius, top + radius, radius, -math.pi / 2, 0)
        ctx.arc(end - radius, top + h - radius, radius, 0, math.pi / 2)
        ctx.line_to(edge, top + h)
        ctx.close_path()


def lay(ctx: Any, surface: Any, where: Placing, spans: Sequence[tuple[int, int, int]]) -> None:
    """The stamp's columns `start` to `end` of each (row index, start, end) of `spans`, laid
    at the row's place: the stamp, repeated every `where.step` rows from the first row's top,
    through one rectangle a row."""
    ctx.set_source_surface(surface, where.left, where.top)
    ctx.get_source().set_extend(cairo.EXTEND_REPEAT)
    for index, start, end in spans:
        if end > start:
            ctx.rectangle(where.left + start, where.top + index * where.step, end - start,
                          where.height)
    ctx.fill()


def whole_and_sub(device: float) -> tuple[int, float]:
    """A device coordinate as its whole pixel and the place within it, to 1/FIXED px."""
    steps = round(device * FIXED)
    return steps // FIXED, steps % FIXED / FIXED
