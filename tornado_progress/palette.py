"""The colours of the chart, one definition shared by the PNG renderer and the show page (which
gets them as CSS custom properties), so that both say the same thing the same way."""

from __future__ import annotations

import functools

# name: (red, green, blue), 0-255. Every pair a view draws together meets WCAG 2.2 AA
# (tests/test_palette.py): text 4.5:1 on what it lies on, a bar's fill 3:1 on its track.
COLOURS: dict[str, tuple[int, int, int]] = {
    "background": (0xFF, 0xFF, 0xFF),
    "text": (0x1F, 0x23, 0x28),
    "muted-text": (0x59, 0x63, 0x6E),
    "track": (0xE6, 0xE9, 0xED),
    "ok": (0x1A, 0x7F, 0x37),  # running
    "done": (0x0F, 0x51, 0x32),
    "failed": (0xCF, 0x22, 0x2E),
    "stale": (0x7D, 0x4E, 0x00),  # amber: quiet for too long
    "text-on-fill": (0xFF, 0xFF, 0xFF),
    # The track of a failed bar: a failed worker at 0 % still reads as red.
    "failed-track": (0xFF, 0xEB, 0xE9),
}
# The same names on a dark background (the page's dark theme, render?theme=dark).
DARK_COLOURS: dict[str, tuple[int, int, int]] = {
    "background": (0x0D, 0x11, 0x17),
    "text": (0xE6, 0xED, 0xF3),
    "muted-text": (0x9E, 0xA7, 0xB3),
    "track": (0x30, 0x36, 0x3D),
    "ok": (0x3F, 0xB9, 0x50),
    "done": (0x7E, 0xE7, 0x87),
    "failed": (0xFF, 0x7B, 0x72),
    "stale": (0xD2, 0x99, 0x22),
    "text-on-fill": (0x0D, 0x11, 0x17),
    "failed-track": (0x42, 0x19, 0x1B),
}
THEMES = {"light": COLOURS, "dark": DARK_COLOURS}
FILLS = ("ok", "done", "failed", "stale")

def rgb(name: str, theme: str = "light") -> tuple[float, float, float]:
    """A colour as cairo wants it: three floats from 0 to 1."""
    red, green, blue = THEMES[theme][name]
    return red / 255, green / 255, blue / 255


def luminance(name: str, theme: str = "light") -> float:
    """Relative luminance as WCAG defines it: 0 for black, 1 for white."""
    linear = [channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4
              for channel in rgb(name, theme)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str, theme: str = "light") -> float:
    """WCAG's contrast ratio of two of the theme's colours, from 1 to 21."""
    lighter, darker = sorted((luminance(first, theme), luminance(second, theme)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


@functools.cache  # a row's text colour, asked for every row of every picture
def text_on(name: str, theme: str = "light") -> str:
    """The name of the text colour that reads best on colour `name`: of the theme's text and
    its text-on-fill, the one with the higher contrast."""
    return max(("text", "text-on-fill"), key=lambda text: contrast(text, name, theme))


def css_variables(theme: str = "light") -> str:
    """`--name: #rrggbb;` for every colour of a theme, for a `:root` rule."""
    return " ".join(f"--{name}: #{r:02x}{g:02x}{b:02x};"
                    for name, (r, g, b) in THEMES[theme].items())
