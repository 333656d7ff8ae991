"""Workers' strings made safe to show as they are, in every view that draws text (the PNG, the
SVG, the terminal): one rule, so that a string reads the same everywhere.

Strings are shown as given; only what a view would refuse, silently drop or obey is replaced by
a visible stand-in: C0 control characters and DEL by their pictures (U+2400 block), so that a
desc cannot move a terminal's cursor or clear its screen; C1 controls (a terminal may read
U+009B as an escape), surrogates (which cannot be encoded) and noncharacters (which cairo's
UTF-8 check refuses, leaving its context unusable) by U+FFFD.
"""

from __future__ import annotations

ELLIPSIS = "\u2026"
REPLACEMENT = 0xFFFD
_NONCHARACTERS = [*range(0xFDD0, 0xFDF0), *(plane + low for plane in range(0, 0x110000, 0x10000)
                                           for low in (0xFFFE, 0xFFFF))]
_STAND_INS = ({code: 0x2400 + code for code in range(0x20)} | {0x7F: 0x2421}
              | dict.fromkeys([*range(0x80, 0xA0), *range(0xD800, 0xE000), *_NONCHARACTERS],
                              REPLACEMENT))


def printable(text: str) -> str:
    """The text as given, but for what a view would refuse, drop or obey."""
    # Every character replaced is one Python calls unprintable: most strings are seen so at once.
    return text if text.isprintable() else text.translate(_STAND_INS)
