"""The colours of the chart, one definition shared by the PNG renderer and the show page (which
gets them as CSS custom properties), so that both say the same thing the same way."""

from __future__ import annotations

# name: (red, green, blue), 0-255
COLOURS: dict[str, tuple[int, int, int]] = {
    "background": (255, 255, 255),
    "text": (33, 37, 41),
    "muted-text": (108, 117, 125),
    "track": (233, 236, 239),
    "ok": (40, 167, 69),
    "done": (25, 120, 55),
    "failed": (220, 53, 69),
    "stale": (173, 181, 189),
    "text-on-fill": (255, 255, 255),
    # The track of a failed bar: a failed worker at 0 % still reads as red.
    "failed-track": (248, 215, 218),
}
# The same names on a dark background (render?theme=dark).
DARK_COLOURS: dict[str, tuple[int, int, int]] = {
    "background": (24, 26, 27),
    "text": (230, 232, 234),
    "muted-text": (160, 168, 176),
    "track": (52, 56, 60),
    "ok": (63, 185, 80),
    "done": (46, 160, 67),
    "failed": (248, 81, 73),
    "stale": (110, 118, 129),
    "text-on-fill": (255, 255, 255),
    "failed-track": (90, 30, 34),
}
THEMES = {"light": COLOURS, "dark": DARK_COLOURS}

# Fills lighter than this (relative luminance, 0 to 1) take dark text, darker ones white text.
_LIGHT_FILL = 0.4


def rgb(name: str, theme: str = "light") -> tuple[float, float, float]:
    """A colour as cairo wants it: three floats from 0 to 1."""
    red, green, blue = THEMES[theme][name]
    return red / 255, green / 255, blue / 255


def luminance(name: str, theme: str = "light") -> float:
    """Relative luminance as WCAG defines it: 0 for black, 1 for white."""
    linear = [channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4
              for channel in rgb(name, theme)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def text_on(name: str, theme: str = "light") -> str:
    """The name of the text colour that reads best on colour `name`: white on the strong fills,
    dark on the track and on the light stale fill."""
    if theme == "dark":  # light text everywhere but on a light fill
        return "background" if luminance(name, theme) > _LIGHT_FILL else "text"
    return "text" if luminance(name, theme) > _LIGHT_FILL else "text-on-fill"


def css_variables() -> str:
    """`--name: #rrggbb;` for every colour, for a `:root` rule."""
    return " ".join(f"--{name}: #{r:02x}{g:02x}{b:02x};"
                    for name, (r, g, b) in COLOURS.items())
