"""Plain strings drawn from their words' glyphs, each word shaped by Pango once, instead of a
Pango layout per string (pango_text.PangoPen uses it).

A new string costs Pango about 50 µs through PyGObject (a layout, itemizing, shaping, a line),
and a chart of 100 workers draws a hundred new strings after every worker has reported once.
Browsers keep shaped words for the same reason (Blink's word cache): a string of known words is
a few dictionary look-ups and one `cairo_show_glyphs`, about a tenth of that.

Only strings that Pango itself draws as one left-to-right run of the primary font, a glyph a
character, take this way: Latin letters, digits and punctuation (`PLAIN`). Anything else
(other scripts, marks, bidi, fallback fonts, emoji) and anything to be ellipsized keeps its
Pango layout. A word is checked once, when it is first shaped: drawn by Pango and from its
glyphs on a scratch surface, and kept for this way only if every pixel is the same; a word that
differs (a glyph Pango substitutes or places otherwise) sends its strings to Pango. Words are
joined at Pango's own advances: Pango applies no kerning across a space (a test compares whole
strings both ways).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import cairo
import gi

gi.require_version("Pango", "1.0")
gi.require_version("PangoCairo", "1.0")
from gi.repository import Pango, PangoCairo  # noqa: E402  (after require_version)

from .render_text import Glyph  # noqa: E402

SCALE: int = Pango.SCALE  # Pango units a px (a constant looked up through PyGObject is slow)

# Characters that Pango draws left to right, one glyph each, from a Latin font: printable ASCII
# and Latin-1 and Latin Extended-A but the soft hyphen (which Pango draws only at a break).
PLAIN = frozenset(map(chr, (*range(0x20, 0x7F), *range(0xA0, 0xAD), *range(0xAE, 0x180))))
WORDS_KEPT = 8192  # words per thread, least recently used first out
RUNS_KEPT = 2048  # strings per thread, the same way
CHARACTERS_KEPT = 1 << 16  # in the strings kept (a string takes about 90 bytes a character)

Font = tuple[float, bool]  # size in px, bold
_UNKNOWN = object()  # a string not composed yet
# A word's glyph indices, their x from the word's start and its advance, in Pango units; or
# None: the word is drawn by Pango.
Word = tuple[tuple[int, ...], tuple[int, ...], int] | None


class GlyphRun(NamedTuple):
    """A string as glyphs: each glyph's index and x from the string's start (px), and the
    string's advance."""

    glyphs: tuple[tuple[int, float], ...]
    width: float


class WordGlyphs:
    """One thread's words and strings as glyphs. `layout_of(font, text)` is the thread's Pango
    layout of `text` on one line, never ellipsized; `family` the font Pango finds first."""

    def __init__(self, family: str, options: Any, layout_of: Callable[[Font, str], Any]) -> None:
        self.options = options
        self.layout_of = layout_of
        self.faces = {bold: cairo.ToyFontFace(family, cairo.FONT_SLANT_NORMAL,
                                              cairo.FONT_WEIGHT_BOLD if bold
                                              else cairo.FONT_WEIGHT_NORMAL)
                      for bold in (False, True)}
        self.scaled: dict[Font, Any] = {}
        self.words: OrderedDict[tuple[Font, str], Word] = OrderedDict()
        self.runs: OrderedDict[tuple[Font, str], GlyphRun | None] = OrderedDict()
        self.characters = 0  # in the strings of `runs`

    def run(self, font: Font, text: str) -> GlyphRun | None:
        """`text` as glyphs, or None if Pango must draw it."""
        key = (font, text)
        found = self.runs.get(key, _UNKNOWN)
        if found is not _UNKNOWN:
            self.runs.move_to_end(key)
            return found  # type: ignore[return-value]
        found = self._compose(font, text) if PLAIN.issuperset(text) else None
        self.runs[key] = found
        self.characters += len(text)
        while len(self.runs) > RUNS_KEPT or self.characters > CHARACTERS_KEPT:
            (_, gone), _ = self.runs.popitem(last=False)
            self.characters -= len(gone)
        return found

    def show(self, ctx: Any, font: Font, run: GlyphRun, x: float, y: float) -> None:
        """Draws `run` on `ctx` with its baseline at y from x."""
        self.draw(ctx, font, self.place(ctx, run, x, y))

    def place(self, ctx: Any, run: GlyphRun, x: float, y: float) -> list[Glyph]:
        """`run`'s glyphs with its baseline at y from x, which go through cairo's current point
        first as Pango's do (cairo keeps it to 1/256 of a device pixel)."""
        ctx.move_to(x, y)
        x, y = ctx.get_current_point()
        return [(index, x + offset, y) for index, offset in run.glyphs]

    def draw(self, ctx: Any, font: Font, glyphs: list[Glyph]) -> None:
        """Draws placed glyphs of `font` in the context's colour."""
        ctx.set_scaled_font(self._scaled(font))
        ctx.show_glyphs(glyphs)

    def _compose(self, font: Font, text: str) -> GlyphRun | None:
        space = self.word(font, " ")
        if space is None:
            return None
        glyphs: list[tuple[int, float]] = []
        x = 0
        for number, part in enumerate(text.split(" ")):
            if number:
                x += space[2]
            if part:
                word = self.word(font, part)
                if word is None:
                    return None
                glyphs.extend(word_glyphs(word, x))
                x += word[2]
        return GlyphRun(tuple(glyphs), x / SCALE)

    def word(self, font: Font, text: str) -> Word:
        """`text` (no space inside, or one space) shaped by Pango, if drawing its glyphs gives
        Pango's pixels."""
        key = (font, text)
        if key in self.words:
            self.words.move_to_end(key)
            return self.words[key]
        found = self._shape(font, text)
        self.words[key] = found
        if len(self.words) > WORDS_KEPT:
            self.words.popitem(last=False)
        return found

    def _shape(self, font: Font, text: str) -> Word:
        layout = self.layout_of(font, text)
        line = layout.get_line_readonly(0)
        runs = line.runs
        if len(runs) != 1 or runs[0].glyphs.num_glyphs != len(text):
            return None
        offsets, index = [], 0
        for character in text:
            offsets.append(int(line.index_to_x(index, False)))
            index += len(character.encode())
        glyphs = self._scaled(font).text_to_glyphs(0, 0, text, False)
        if len(glyphs) != len(text):
            return None
        word = (tuple(glyph.index for glyph in glyphs), tuple(offsets),
                int(line.get_extents()[1].width))
        return word if text == " " or self._same_pixels(font, line, word) else None

    def _scaled(self, font: Font) -> Any:
        found = self.scaled.get(font)
        if found is None:
            size = pango_size(font[0])
            found = self.scaled[font] = cairo.ScaledFont(
                self.faces[font[1]], cairo.Matrix(size, 0, 0, size), cairo.Matrix(),
                self.options)
        return found

    def _same_pixels(self, font: Font, line: Any, word: tuple[tuple[int, ...], tuple[int, ...],
                                                              int]) -> bool:
        """Whether Pango's line and the word's glyphs draw the same pixels."""
        size = font[0]
        width = math.ceil(word[2] / SCALE + 2 * size)
        height = math.ceil(3 * size)
        drawn = []
        for by_pango in (True, False):
            surface = cairo.ImageSurface(cairo.FORMAT_ARGB32, width, height)
            ctx = cairo.Context(surface)
            if by_pango:
                ctx.move_to(size, 2 * size)
                PangoCairo.show_layout_line(ctx, line)
            else:
                run = GlyphRun(tuple(word_glyphs(word, 0)), 0.0)
                self.show(ctx, font, run, size, 2 * size)
            surface.flush()
            drawn.append(bytes(surface.get_data()))
        return drawn[0] == drawn[1]


def word_glyphs(word: tuple[tuple[int, ...], tuple[int, ...], int], x: int
                ) -> Iterator[tuple[int, float]]:
    """A word's glyphs, each its index and x (px), the word starting `x` Pango units in."""
    return ((index, (x + dx) / SCALE) for index, dx in zip(word[0], word[1], strict=True))


def pango_size(size: float) -> float:
    """The size in px that Pango draws a font of `size` px at (it keeps whole Pango units)."""
    return int(size * SCALE) / SCALE
