"""Plain strings drawn from their words' glyphs (pango_words.py): the same pixels and widths as
Pango's own layouts at any size, scale and sub-pixel place; everything else, and every word
whose pixels differ, left to Pango; the kept words and strings bounded."""

from __future__ import annotations

import random
from collections.abc import Iterator

import cairo
import pytest

pytest.importorskip("gi", reason="PyGObject is the pango extra (make setup installs it)")

from tornado_progress import pango_text, pango_words

CORPUS = ["calibrating band 3, pass 1017", "45%  45/100", "w17", " leading", "trailing ",
          "two  spaces", "AVAVA To Ty Wa Yo", "façade Ærø Ŋœ ŵ", "1,2;3:4!5?(6)[7]{8}",
          "x", "The quick brown fox jumps over the lazy dog", "\u00a0nbsp\u00a0inside"]
FONTS = [(12.0, False), (9.857142857142858, False), (16.0, True)]


def plain_strings(count: int) -> list[str]:
    chosen = random.Random(5)
    letters = sorted(pango_words.PLAIN - {" "})
    return [" ".join("".join(chosen.choice(letters) for _ in range(chosen.randint(1, 7)))
                     for _ in range(chosen.randint(1, 5))) for _ in range(count)]


@pytest.fixture
def pango_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(pango_words.WordGlyphs, "run", lambda self, font, text: None)
    yield


def drawn(text: str, font: pango_text.Font, scale: float, x: float, y: float) -> bytes:
    surface = cairo.ImageSurface(cairo.FORMAT_ARGB32, round(520 * scale), round(40 * scale))
    ctx = cairo.Context(surface)
    ctx.scale(scale, scale)
    ctx.set_source_rgb(1, 1, 1)
    ctx.paint()
    ctx.set_source_rgb(0.1, 0.2, 0.4)
    pen = pango_text.PangoPen(ctx)
    pen.font(*font)
    pen.show(text, x, y)
    surface.flush()
    return bytes(surface.get_data())


def widths(texts: list[str]) -> list[float]:
    pen = pango_text.PangoPen(cairo.Context(cairo.ImageSurface(cairo.FORMAT_ARGB32, 1, 1)))
    found = []
    for font in FONTS:
        pen.font(*font)
        found += [pen.width(text) for text in texts]
    return found


def pictures(texts: list[str]) -> list[bytes]:
    return [drawn(text, font, scale, 3 + index % 17 * 0.37, 24.3 + index % 5 * 0.13)
            for index, text in enumerate(texts) for font in FONTS for scale in (1, 1.5, 2)]


def test_plain_strings_draw_and_measure_as_pango_does(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = CORPUS + plain_strings(60)
    ours, our_widths = pictures(texts), widths(texts)
    shelf = pango_text.shelf()
    assert all(shelf.glyphs.run(font, text) is not None for text in CORPUS[:3] for font in FONTS)
    monkeypatch.setattr(pango_words.WordGlyphs, "run", lambda self, font, text: None)
    assert widths(texts) == our_widths
    pangos = pictures(texts)
    assert [i for i, (a, b) in enumerate(zip(ours, pangos, strict=True)) if a != b] == []


@pytest.mark.parametrize("text", ["\u6f22\u5b57 w1", "\u0628\u0627 w1", "e\u0301 w1",
                                  "soft\u00adhyphen", "\U0001f600 w", "tab\tx", "\u2026"])
def test_what_is_not_plain_keeps_its_layout(text: str) -> None:
    assert pango_text.shelf().glyphs.run((12.0, False), text) is None


def test_a_word_whose_pixels_differ_is_left_to_pango(monkeypatch: pytest.MonkeyPatch) -> None:
    """With glyphs taken from another font than Pango's, every word's check fails, and the
    strings still come out as Pango draws them."""
    words = pango_words.WordGlyphs("DejaVu Serif", pango_text.font_options(),
                                   pango_text.shelf().glyphs.layout_of)
    monkeypatch.setattr(pango_text.shelf(), "glyphs", words)
    assert words.run((12.0, False), "calibrating band 3") is None
    assert words.word((12.0, False), "calibrating") is None
    ours = drawn("calibrating band 3", (12.0, False), 1, 3.3, 20.2)
    monkeypatch.setattr(pango_words.WordGlyphs, "run", lambda self, font, text: None)
    assert drawn("calibrating band 3", (12.0, False), 1, 3.3, 20.2) == ours


def test_strings_too_wide_for_their_room_are_ellipsized_by_pango() -> None:
    pen = pango_text.PangoPen(cairo.Context(cairo.ImageSurface(cairo.FORMAT_ARGB32, 300, 30)))
    pen.font(12)
    text = "a plain string far too long for the room it is given"
    assert pango_text.shelf().glyphs.run((12.0, False), text) is not None
    assert 0 < pen.show(text, 0, 20, 100) <= 100 < pen.width(text)


def test_kept_words_and_strings_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pango_words, "WORDS_KEPT", 20)
    monkeypatch.setattr(pango_words, "RUNS_KEPT", 10)
    monkeypatch.setattr(pango_words, "CHARACTERS_KEPT", 400)
    words = pango_words.WordGlyphs("DejaVu Sans", pango_text.font_options(),
                                   pango_text.shelf().glyphs.layout_of)
    for index in range(60):
        assert words.run((12.0, False), f"string w{index} x{index}") is not None
    assert len(words.words) == 20 and len(words.runs) == 10
    for index in range(3):
        words.run((12.0, False), f"{index} " + "x" * 300)
    assert len(words.runs) < 10 and words.characters == sum(
        len(text) for _, text in words.runs) <= 400
