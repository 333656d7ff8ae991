"""What memory costs after a pause on this machine: the first touch of each 4 KB page of a
buffer untouched for a while, against the same touches right after.

Run: `.venv/bin/python -m bench.page_touch [--pages 4096] [--rounds 5]`

On the 2-core virtual machine of the README's figures (its Performance section has this
script's), a page untouched for a few tens of milliseconds takes a hundred times longer to
reach again than right after, whatever is in it: most likely the processor's address
translations are walked again from memory, through the guest's and the host's page tables.
A render touches about 2,000 distinct pages (code, Python objects, pixels) and pays that once
after every pause, which is why a render right after a hundred updates takes longer than the
same render drawn right after another. Pages of 2 MB (`madvise(MADV_HUGEPAGE)`) do not pay
it. The loop touches one byte a page, so that the Python around each touch, the same in every
column, is small against what is measured.
"""

from __future__ import annotations

import argparse
import mmap
import statistics
import time

PAGE = 4096
PAUSES_MS = (0, 1, 5, 25, 100)


def touch(view: memoryview, pages: int) -> float:
    """Seconds to read one byte of each of the first `pages` pages."""
    began = time.perf_counter()
    for offset in range(0, pages * PAGE, PAGE):
        view[offset]  # the read is the point
    return time.perf_counter() - began


def buffer(pages: int, huge: bool) -> memoryview:
    """Private anonymous memory, every page written once, in 2 MB pages if `huge` (where the
    kernel allows them)."""
    size = -(-pages * PAGE // (2 << 20)) * (2 << 20)
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if huge and hasattr(mmap, "MADV_HUGEPAGE"):
        memory.madvise(mmap.MADV_HUGEPAGE)
    view = memoryview(memory)
    for offset in range(0, size, PAGE):
        view[offset] = 1
    return view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for huge in (False, True):
        view = buffer(args.pages, huge)
        touch(view, args.pages)
        cells = []
        for pause_ms in PAUSES_MS:
            times = []
            for _ in range(args.rounds):
                time.sleep(pause_ms / 1000)
                times.append(touch(view, args.pages))
            cells.append(f"{pause_ms} ms: {1e6 * statistics.median(times) / args.pages:.2f}")
        print(f"{'2 MB' if huge else '4 KB'} pages, µs a page touched after a pause of "
              + ", ".join(cells))


if __name__ == "__main__":
    main()
