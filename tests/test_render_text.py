"""Text in the pictures: CJK, Arabic and Hebrew drawn as Pango itself draws them (glyphs, not
boxes; Arabic joined and right to left), emoji in their own colours, both text engines (Pango,
and cairo's toy text where PyGObject is missing), and the row heights and sizes of jobs of many
workers."""

from __future__ import annotations

import concurrent.futures
import io
import itertools
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import cairo
import pytest

from tests.render_support import Picture, chart, decode, layout, worker
from tornado_progress import chart_layout, palette, render, text_draw
from tornado_progress.picture import Style

gi = pytest.importorskip("gi", reason="PyGObject is the pango extra (make setup installs it)")
gi.require_version("Pango", "1.0")
gi.require_version("PangoCairo", "1.0")
from gi.repository import Pango, PangoCairo  # noqa: E402

CJK = "\u6f22\u5b57\u30c6\u30b9\u30c8"  # 漢字テスト
ARABIC = "\u0628 \u0627\u0644\u0645\u0633\u062a\u0634\u0641\u064a\u0627\u062a"  # ب المستشفيات
HEBREW = "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd"  # שלום עולם
TOFU = "\u0378\u0379\u0380\u0381\u0382"  # unassigned: no font has them
Mask = frozenset[tuple[int, int]]


@pytest.fixture
def toy_text(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Draws with cairo's toy text, as where PyGObject or Pango is missing."""
    monkeypatch.setattr(text_draw, "PANGO", None)
    yield


def ink(picture: Picture, box: tuple[int, int, int, int], theme: str) -> Mask:
    """The pixels of `box` nearer the theme's text colour than its background, moved so that
    the ink's bounding box starts at (0, 0)."""
    def grey(colour: tuple[int, int, int]) -> float:
        return sum(colour) / 3
    background, text = (grey(palette.THEMES[theme][name]) for name in ("background", "text"))
    left, top, right, bottom = box
    found = [(x, y) for y in range(top, bottom) for x in range(left, right)
             if abs(grey(channels(picture.at(x, y))) - background) > abs(text - background) / 2]
    if not found:
        return frozenset()
    x0, y0 = min(x for x, _ in found), min(y for _, y in found)
    return frozenset((x - x0, y - y0) for x, y in found)


def channels(pixel: int) -> tuple[int, int, int]:
    return pixel >> 16, pixel >> 8 & 0xFF, pixel & 0xFF


def overlap(first: Mask, second: Mask) -> float:
    return len(first & second) / max(1, len(first | second))


def label_picture(text: str, theme: str = "light", scale: float = 1
                  ) -> tuple[Picture, chart_layout.Layout, tuple[int, int, int, int]]:
    """A chart whose one worker is named `text`, its layout, and the box of the name's column
    in device pixels."""
    job = chart(worker(text, 0, 1), desc="")
    lay = layout(job, 800, scale)
    picture = decode(render.render_chart(job, 800, scale, Style("png", theme)))
    box = (0, int(lay.header_h * scale), int((lay.bar_x - 2) * scale),
           int((lay.header_h + lay.row_h) * scale))
    return picture, lay, box


def pango_reference(text: str, lay: chart_layout.Layout, theme: str, scale: float) -> Picture:
    """`text` drawn by Pango itself (unhinted metrics and unrounded positions, as the chart's
    text engine asks) in the label's font, colour and place, for comparison."""
    surface = cairo.ImageSurface(cairo.FORMAT_RGB24, round(400 * scale), round(80 * scale))
    ctx = cairo.Context(surface)
    ctx.scale(scale, scale)
    ctx.set_source_rgb(*palette.rgb("background", theme))
    ctx.paint()
    ctx.set_source_rgb(*palette.rgb("text", theme))
    text_layout = PangoCairo.create_layout(ctx)
    options = cairo.FontOptions()
    options.set_hint_metrics(cairo.HINT_METRICS_OFF)
    text_layout.get_context().set_round_glyph_positions(False)
    PangoCairo.context_set_font_options(text_layout.get_context(), options)
    text_layout.context_changed()
    font = Pango.FontDescription.from_string("DejaVu Sans")
    font.set_absolute_size(lay.font_size * Pango.SCALE)
    text_layout.set_font_description(font)
    text_layout.set_text(text, -1)
    metrics = text_layout.get_context().get_metrics(font, None)
    ascent, descent = (value / Pango.SCALE for value in (metrics.get_ascent(),
                                                          metrics.get_descent()))
    # The chart centres each row's text on its bar by the font's ascent and descent.
    baseline = 40 + (lay.bar_top(0) + (lay.bar_h + ascent - descent) / 2) % 1
    ctx.move_to(chart_layout.MARGIN, baseline - text_layout.get_baseline() / Pango.SCALE)
    PangoCairo.show_layout(ctx, text_layout)
    out = io.BytesIO()
    surface.write_to_png(out)
    return decode(out.getvalue())


def whole(picture: Picture) -> tuple[int, int, int, int]:
    return 0, 0, picture.width, picture.height


@pytest.mark.parametrize("text", [CJK, ARABIC, HEBREW])
@pytest.mark.parametrize("theme,scale", [("light", 1), ("dark", 2)])
def test_scripts_are_drawn_as_pango_draws_them(text: str, theme: str, scale: float) -> None:
    picture, lay, box = label_picture(text, theme, scale)
    drawn = ink(picture, box, theme)
    reference = pango_reference(text, lay, theme, scale)
    assert len(drawn) > 40 * scale
    assert overlap(drawn, ink(reference, whole(reference), theme)) >= 0.9
    boxes = pango_reference(TOFU[:len(text.replace(" ", ""))], lay, theme, scale)
    assert overlap(drawn, ink(boxes, whole(boxes), theme)) < 0.3  # glyphs, not boxes


@pytest.mark.parametrize("text", [CJK, ARABIC])
def test_the_toy_fallback_draws_boxes_or_unjoined_letters(text: str, toy_text: None) -> None:
    """What the chart drew before Pango, and draws without it: unlike Pango's glyphs."""
    picture, lay, box = label_picture(text)
    reference = pango_reference(text, lay, "light", 1)
    assert overlap(ink(picture, box, "light"), ink(reference, whole(reference), "light")) < 0.5


def columns_with_ink(mask: Mask) -> list[int]:
    return sorted({x for x, _ in mask})


@pytest.mark.parametrize("text", [ARABIC, HEBREW.replace("\u05e9\u05dc\u05d5\u05dd", "\u05d1")])
def test_right_to_left_text_starts_at_the_right(text: str) -> None:
    """A one-letter word, then a long one: right to left, the short word is at the right."""
    picture, _, box = label_picture(text)
    columns = columns_with_ink(ink(picture, box, "light"))
    gaps = [(b - a, a, b) for a, b in itertools.pairwise(columns) if b - a > 1]
    _, gap_left, gap_right = max(gaps)  # the space between the words
    assert columns[-1] - gap_right < gap_left - columns[0]  # the narrow word on the right


def test_emoji_come_in_their_colours_in_png() -> None:
    picture, _, box = label_picture("\U0001f600\U0001f600")  # 😀, a yellow face
    colours = [channels(picture.at(x, y)) for y in range(box[1], box[3])
               for x in range(box[0], box[2])]
    assert sum(1 for r, g, b in colours if r > 200 and g > 140 and b < 90) > 30
    assert not any(b > 200 and g > 140 and r < 90 for r, g, b in colours)  # not red-blue swapped


def test_emoji_and_scripts_render_in_svg() -> None:
    job = chart(worker(CJK, 1, 2, ARABIC + " \U0001f600"), desc=HEBREW)
    svg = render.render_chart(job, 600, 1, Style("svg", "dark")).decode()
    assert f"<title>{HEBREW}: 50%</title>" in svg and svg.count("<path") > 10


def test_the_fallback_still_draws_every_string(toy_text: None) -> None:
    assert text_draw.engine() == "cairo-toy"
    workers = [worker("w1", 8, 10, "lots of RFI"), worker(CJK, 1, 10, ARABIC)]
    picture = decode(render.render_chart(chart(*workers, desc=HEBREW), 800, 1))
    lay = layout(chart(*workers, desc=HEBREW))
    assert ink(picture, (0, int(lay.header_h), int(lay.bar_x), picture.height), "light")
    light = [p for p in picture.pixels if min(channels(p)) >= 200 and p != 0xFFFFFF]
    assert len(light) > 20  # text on the first fill


def test_without_pygobject_the_server_logs_once_and_draws() -> None:
    script = (
        "import sys, logging; sys.modules['gi'] = None\n"
        "logging.basicConfig(format='%(levelname)s %(message)s')\n"
        "from tornado_progress import render, render_handler, text_draw\n"
        "render_handler.ChartRenderer(); render_handler.ChartRenderer()\n"
        "from tests.render_support import chart, worker\n"
        f"png = render.render_chart(chart(worker({CJK!r}, 1, 2, 'x')), 400, 1)\n"
        "print(text_draw.engine(), png[:4] == b'\\x89PNG')\n")
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=True, cwd=Path(__file__).parent.parent)
    assert ran.stdout.split() == ["cairo-toy", "True"]
    lines = ran.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("WARNING pictures draw text with cairo's toy")


def test_pango_ellipsizes_to_the_room_given() -> None:
    pen = render.scratch_pen()
    pen.font(12)
    for text in ("a long string " * 50, ARABIC * 20, CJK * 40):
        assert pen.width(text) > 150 and 0 < pen.show(text, 0, 20, 150) <= 150
    assert pen.show("short", 0, 20, 150) == pen.width("short") < 150
    assert pen.show("anything", 0, 20, 2) == 0  # not even the ellipsis fits


def test_renders_in_several_threads_match_one_thread() -> None:
    names = [CJK, ARABIC, HEBREW, "\U0001f600 w", "w1", "w2"]
    jobs = [chart(*[worker(f"{names[(i + k) % 6]}{k}", k, 7, names[k % 6]) for k in range(8)])
            for i in range(6)]
    alone = [render.render_chart(job, 500, 1) for job in jobs]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda job: render.render_chart(job, 500, 1), jobs * 3))
    assert together == alone * 3


def test_a_threads_shelf_goes_with_the_thread_not_with_the_collector() -> None:
    """Pango's objects are not thread-safe: a shelf held in a reference cycle would be freed
    by the garbage collector in whichever thread runs it (once in a while a thread's picture
    came out different)."""
    import gc
    import threading
    import weakref

    from tornado_progress import pango_text
    kept: list[weakref.ref[pango_text.Shelf]] = []

    def draw() -> None:
        pen = render.scratch_pen()
        pen.width("calibrating band 3")
        pen.width(CJK)
        kept.append(weakref.ref(pango_text.shelf()))
    gc.disable()
    try:
        thread = threading.Thread(target=draw)
        thread.start()
        thread.join()
        assert kept[0]() is None
    finally:
        gc.enable()


def test_shaped_strings_kept_per_thread_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from tornado_progress import pango_text
    monkeypatch.setattr(pango_text, "LAYOUTS_KEPT", 10)
    monkeypatch.setattr(pango_text, "CHARACTERS_KEPT", 2000)
    pen = render.scratch_pen()
    for index in range(50):  # not plain: each gets a layout of its own (pango_words.PLAIN)
        pen.width(f"{CJK} never shaped before {index}")
    shelf = pango_text.shelf()
    assert len(shelf.shaped) == 10
    for index in range(5):
        pen.width(f"{CJK}{index}" + "x" * 1000)
    assert len(shelf.shaped) < 10 and shelf.characters == sum(
        len(text) for _, text, _ in shelf.shaped) <= 2000


def png_size(png: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def many(count: int, name: Callable[[int], str] = "worker {}".format) -> render.ChartInput:
    return chart(*[worker(name(i), i % 101, 100, f"calibrating band {i % 7}", ok=i % 97 != 3)
                   for i in range(count)], desc="A reduction of many parts")


@pytest.mark.parametrize("width", [200, 800, 4000])
def test_100_workers_keep_their_names_under_1600_px(width: int) -> None:
    lay = layout(many(100), width)
    assert lay.text and lay.height < 1600
    assert chart_layout.TEXT_MIN_ROW <= lay.row_h < chart_layout.ROW_H
    assert png_size(render.render_chart(many(100), width, 1)) == (width, lay.height)


def test_rows_get_thinner_with_more_workers_then_lose_their_text() -> None:
    rows = [layout(many(count)).row_h for count in (10, 53, 54, 100, 116, 200, 330, 400)]
    assert rows[:2] == [chart_layout.ROW_H] * 2
    assert rows[1] > rows[2] > rows[3] > rows[4] >= rows[5] == rows[6] == 12
    assert not layout(many(400)).text and layout(many(330)).text


def test_200_workers_at_width_1200_and_scale_2_stay_well_under_the_old_size() -> None:
    png = render.render_chart(many(200), 1200, 2)
    width, height = png_size(png)
    assert width == 2400 and height <= 5000  # was 2400 x 8192 with 26 px rows
    assert len(png) < 1_650_000  # was 1.8 MB: the same text on fewer pixels
