"""The terminal view alone: bars to an eighth, states in words, widths in terminal columns,
ids never cut to ambiguity, workers' strings unable to steer the terminal."""

from __future__ import annotations

import pytest

from tests.conftest import FakeClock
from tornado_progress import text_view
from tornado_progress.model import Store
from tornado_progress.text_view import TextOptions, bar, cells, fit


def frame(store: Store, clock: FakeClock, **options: object) -> str:
    return text_view.frame(store.get("j").view(), clock(), 60,
                           TextOptions(**options))  # type: ignore[arg-type]


def test_bars_fill_to_an_eighth_of_a_cell() -> None:
    assert bar(0, 4) == "░░░░"
    assert bar(1, 4) == "████" and bar(2.5, 4) == "████"
    assert bar(0.5, 4) == "██░░"
    assert bar(1 / 32, 4) == "▏░░░"  # an eighth of a cell
    assert bar(0.3, 4) == "█▏░░"  # 1.2 cells: one and an eighth (rounded down)
    assert all(cells(bar(f / 100, 10)) == 10 for f in range(101))


def test_widths_count_terminal_columns() -> None:
    assert cells("abc") == 3 and cells("世界") == 4 and cells("e\u0301") == 1
    assert fit("calibrator", 6) == "calib…" and fit("世界世界", 5) == "世界…"


def test_a_frame_says_every_state_in_words_and_fits_the_width(clock: FakeClock) -> None:
    store = Store(clock=clock)
    store.create("j", "obs 1234", expected=6)
    store.update("j", "quiet", 1, 10, "", True)
    clock.advance(100)
    store.update("j", "w1", 5, 22, "lots of RFI", True)
    store.update("j", "w2", 22, 22, "", True)
    store.update("j", "w10", 3, 10, "disk full", False)
    text = frame(store, clock, width=72)
    lines = text.splitlines()
    assert lines[0].startswith("obs 1234") and "ETA" in lines[0]
    assert lines[1] == "job j"
    assert lines[2] == "1 running · 1 done · 1 failed · 1 stale · 2 waiting"
    rows = {line.split()[0]: line for line in lines[4:]}
    assert list(rows) == ["quiet", "w1", "w2", "w10"]  # natural order
    assert "… stale" in rows["quiet"] and "✓ done" in rows["w2"]
    assert "✗ failed disk full" in rows["w10"] and "22% 5/22  lots of RFI" in rows["w1"]
    assert all(cells(line) <= 72 for line in lines)
    assert "\x1b" not in text


def test_colour_only_when_asked(clock: FakeClock) -> None:
    store = Store(clock=clock)
    store.update("j", "w", 1, 2, "", False)
    assert "\x1b[31;1m" in frame(store, clock, color=True)
    assert "\x1b" not in frame(store, clock)


def test_long_ids_get_a_line_of_their_own_rather_than_a_cut(clock: FakeClock) -> None:
    store = Store(clock=clock)
    for workid in ("calibrator-node-0001", "calibrator-node-0002"):
        store.update("j", workid, 1, 2, "", True)
    lines = frame(store, clock, width=40).splitlines()
    assert "calibrator-node-0001" in lines and "calibrator-node-0002" in lines


@pytest.mark.parametrize("desc", ["\x1b[2J\x1b[H", "\x9b2J", "a\rb\nc"])
def test_a_workers_string_cannot_steer_the_terminal(clock: FakeClock, desc: str) -> None:
    store = Store(clock=clock)
    store.update("j", desc, 1, 2, desc, True)
    text = frame(store, clock)
    assert "\x1b" not in text and "\x9b" not in text and "\r" not in text
    assert text.count("\n") == 4  # header, counts, blank line, one worker


def test_a_big_job_shows_its_problems_first_and_says_how_many_are_left(
        clock: FakeClock) -> None:
    store = Store(clock=clock)
    for index in range(1000):
        store.update("j", f"w{index}", index % 7, 6, "", index != 900)
    lines = frame(store, clock, rows=5).splitlines()
    assert lines[3].startswith("w900") and "✗ failed" in lines[3]
    assert [line.split()[0] for line in lines[4:-1]] == ["w0", "w1", "w2", "w3"]
    assert lines[-1] == "… and 995 more workers (rows= shows more)"


def test_an_empty_job_says_so(clock: FakeClock) -> None:
    store = Store(clock=clock)
    store.create("j", "")
    assert frame(store, clock).splitlines()[-1] == "no worker has reported yet"
