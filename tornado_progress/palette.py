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
}


def rgb(name: str) -> tuple[float, float, float]:
    """A colour as cairo wants it: three floats from 0 to 1."""
    red, green, blue = COLOURS[name]
    return red / 255, green / 255, blue / 255


def css_variables() -> str:
    """`--name: #rrggbb;` for every colour, for a `:root` rule."""
    return " ".join(f"--{name}: #{r:02x}{g:02x}{b:02x};"
                    for name, (r, g, b) in COLOURS.items())
