"""The shared palette meets WCAG 2.2 AA in both themes, for every pair a view draws together."""

from __future__ import annotations

import pytest

from tornado_progress import palette
from tornado_progress.palette import FILLS, contrast, text_on

TEXT_AA = 4.5  # text, at any size
NON_TEXT_AA = 3.0  # a bar's fill against its track: what shows the progress


@pytest.mark.parametrize("theme", sorted(palette.THEMES))
def test_text_reads_on_everything_it_is_drawn_on(theme: str) -> None:
    for text in ("text", "muted-text"):
        for ground in ("background", "track"):
            assert contrast(text, ground, theme) >= TEXT_AA, (text, ground)
    assert contrast("text", "failed-track", theme) >= TEXT_AA
    for fill in (*FILLS, "track"):
        assert contrast(text_on(fill, theme), fill, theme) >= TEXT_AA, fill


@pytest.mark.parametrize("theme", sorted(palette.THEMES))
def test_every_fill_stands_out_from_its_track(theme: str) -> None:
    for fill in FILLS:
        assert contrast(fill, "track", theme) >= NON_TEXT_AA, fill
        assert contrast(fill, "background", theme) >= NON_TEXT_AA, fill
    assert contrast("failed", "failed-track", theme) >= NON_TEXT_AA


def test_both_themes_name_the_same_colours() -> None:
    assert palette.COLOURS.keys() == palette.DARK_COLOURS.keys()
    assert "--ok: #1a7f37;" in palette.css_variables()
    assert "--background: #0d1117;" in palette.css_variables("dark")
