"""A tqdm progress bar that also reports to a tornado_progress server.

`tqdm(iterable, server=..., jobid=..., workid=...)` is a `tqdm.tqdm`: it draws the local bar as
usual and, through a `Reporter`, sends `n` of `total` (and the bar's `desc` and postfix text)
whenever tqdm redraws it (`display`), so iterating costs nothing more per item. A disabled bar
(`disable=True`, or `disable=None` without a terminal, as in batch jobs) draws nothing and
counts nothing itself; the adapter then counts the items and reports them.

`close()`, and the end of a loop over the bar, send the final state. An exception that leaves a
`with tqdm(...)` block marks the worker failed, with the exception's class name as its text.
A loop over the bar cannot see the exception that left its body (Python only closes the
iterator), so the adapter looks at how the loop let go of it: `break` and `return` pop it
(POP_TOP), which is a normal end; otherwise a one-shot trace of the loop's function and its
caller (`_LoopExit`) names the exception from their next event, or finds there was none. That
trace is not set while a debugger or coverage tool traces: the worker is then marked failed
with a general text.

tqdm is an optional dependency: ``pip install 'tornado_progress[client]'``.
"""

from __future__ import annotations

import dis
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from types import FrameType, TracebackType
from typing import Any

from tornado_progress.client import Reporter

try:
    from tqdm import tqdm as _tqdm
except ImportError as error:  # pragma: no cover - exercised in a subprocess
    raise ImportError("tornado_progress.client.tqdm needs tqdm: "
                      "pip install 'tornado_progress[client]'") from error

# How a function lets go of an iterator at `break` or `return` inside a for loop.
_POP_OPCODES = frozenset(dis.opmap[name] for name in ("POP_TOP", "POP_ITER")
                         if name in dis.opmap)
# The first instruction of an exception handler (3.11+), before the exception is "handled".
_HANDLER_START = frozenset(dis.opmap[name] for name in ("PUSH_EXC_INFO",) if name in dis.opmap)
UNKNOWN_EXCEPTION = "failed: an exception left the loop"
REPORT_EVERY_S = 0.1  # how often a disabled bar, which tqdm does not count, reports


class tqdm(_tqdm):  # type: ignore[misc]  # lower case: the name tqdm's users know
    """`tqdm.tqdm` that also reports to a tornado_progress server; see the module's doc."""

    def __init__(self, iterable: Iterable[Any] | None = None, *, server: str, jobid: str,
                 workid: str, key: str | None = None, token: str | None = None,
                 min_interval: float = 1.0, **tqdm_kwargs: Any) -> None:
        # tqdm's __init__ draws the bar once, which reports: the reporter comes first.
        self._reporter = Reporter(server, jobid, workid, key=key, token=token,
                                  min_interval=min_interval)
        self._finished = False  # the final state is reported and the reporter closed
        self._in_loop = False  # a loop over the bar runs: its end decides the final state
        self._next_count_report = 0.0
        self._counting = False
        super().__init__(iterable, **tqdm_kwargs)
        self._counting = bool(self.disable)  # tqdm counts nothing for a disabled bar
        self._report()

    # -- reporting -------------------------------------------------------------------------

    def _text(self) -> str:
        parts = (getattr(self, "desc", "") or "", getattr(self, "postfix", "") or "")
        return ", ".join(part for part in parts if part)

    def _report(self, ok: bool = True, text: str | None = None, final: bool = False) -> None:
        if self._finished:
            return
        n, total = self.n, self.total
        text = self._text() if text is None else text
        if total is None or not math.isfinite(total):
            if final:
                total = n
            else:  # an unknown total: the count goes in the text, the bar stays at 0 %
                count = f"{n} {getattr(self, 'unit', 'it')}"
                text = f"{text} {count}" if text else count
                n, total = 0, 0
        self._reporter.update(n, total, text, ok)

    def display(self, msg: str | None = None, pos: int | None = None) -> Any:
        shown = super().display(msg, pos)
        self._report()
        return shown

    def _count(self, n: float) -> None:
        """Counts for a disabled bar, reporting at most every REPORT_EVERY_S seconds."""
        self.n += n
        now = time.monotonic()
        if now >= self._next_count_report:
            self._next_count_report = now + REPORT_EVERY_S
            self._report()

    def update(self, n: float = 1) -> Any:
        if self._counting and not self._finished:
            self._count(n)
            return None
        return super().update(n)

    # -- the end -----------------------------------------------------------------------------

    def _finish(self, failed: str | None = None) -> None:
        """Reports the final state (failed with `failed` as its text, if given) and closes the
        reporter, which sends it at once; only the first call counts."""
        if self._finished:
            return
        self._report(ok=failed is None, text=failed, final=True)
        self._finished = True
        self._reporter.close()

    def close(self) -> None:
        super().close()
        if not self._in_loop and hasattr(self, "_reporter"):
            self._finish()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if exc_type is not None:
            self._finish(failed=exc_type.__name__)
        super().__exit__(exc_type, exc, traceback)

    def __iter__(self) -> Iterator[Any]:
        self._in_loop = True
        iterator = self._counted() if self._counting else super().__iter__()
        try:
            yield from iterator
        except GeneratorExit:  # the loop let go of the bar before its end
            self._in_loop = False
            self._left_early(sys._getframe(1))
            raise
        except BaseException as error:  # the iterable itself raised
            self._in_loop = False
            self._finish(failed=type(error).__name__)
            raise
        self._in_loop = False
        self._finish()

    def _counted(self) -> Iterator[Any]:
        for item in self.iterable:
            yield item
            self._count(1)

    def _left_early(self, holder: FrameType | None) -> None:
        """`holder` is the frame that dropped the bar's iterator: `break` or `return` is a
        normal end, anything else most likely an exception, which `_LoopExit` names."""
        if holder is None or _let_go_normally(holder):
            self._finish()
        elif not _LoopExit(holder, self._decide).start():
            self._finish(failed=UNKNOWN_EXCEPTION)

    def _decide(self, exception: str | None) -> None:
        self._finish(failed=exception)


def _at(frame: FrameType, opcodes: frozenset[int]) -> bool:
    code, offset = frame.f_code.co_code, frame.f_lasti
    return 0 <= offset < len(code) and code[offset] in opcodes


def _let_go_normally(frame: FrameType) -> bool:
    """True when `frame` is at the instruction `break` or `return` pops a for loop's iterator
    with; an exception unwinding it stands elsewhere (at the raise or the call)."""
    return _at(frame, _POP_OPCODES)


class _LoopExit:
    """Learns, from the first events after a loop let go of its iterator, whether an exception
    left it and which: a one-shot trace of the frame that held the loop and of its caller.

    - the holder's next line: inside an exception handler (`except`, `finally`, `with`) it is
      the handled exception, else there was none (the iterator was only dropped early);
    - the caller's first event: an exception arriving there, else none;
    - at module level (no caller) an exception that ends the program: through sys.excepthook.

    `decide(class name or None)` is called once, and the trace removed at once; the events of
    every other frame are not traced. Refused (`start()` answers False) while a debugger or a
    coverage tool traces, or while any of the two frames is traced.
    """

    def __init__(self, holder: FrameType, decide: Callable[[str | None], None]) -> None:
        self.holder = holder
        self.caller = holder.f_back
        self.decide: Callable[[str | None], None] | None = decide
        self.previous_hook: Callable[..., Any] | None = None

    def start(self) -> bool:
        if sys.gettrace() is not None or any(frame.f_trace is not None
                                             for frame in self._frames()):
            return False
        for frame in self._frames():
            frame.f_trace = self.on_event
        sys.settrace(self.on_event)
        if self.caller is None:
            self.previous_hook = sys.excepthook
            sys.excepthook = self.on_uncaught
        return True

    def _frames(self) -> list[FrameType]:
        return [self.holder] if self.caller is None else [self.holder, self.caller]

    def on_event(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "call" or self.decide is None:
            return None  # no new frame is traced
        if frame is self.holder:
            if event != "line" or _at(frame, _HANDLER_START):
                return self.on_event  # not yet telling: wait for the next event
            handled = sys.exc_info()[0]
            self.finish(None if handled is None else handled.__name__)
        elif frame is self.caller:
            self.finish(arg[0].__name__ if event == "exception" else None)
        return None

    def on_uncaught(self, exc_type: type[BaseException], exc: BaseException,
                    traceback: TracebackType | None) -> None:
        hook = self.previous_hook or sys.__excepthook__
        self.finish(exc_type.__name__)
        hook(exc_type, exc, traceback)

    def finish(self, exception: str | None) -> None:
        decide, self.decide = self.decide, None
        if decide is None:
            return
        sys.settrace(None)
        for frame in self._frames():
            frame.f_trace = None
        if self.previous_hook is not None and sys.excepthook == self.on_uncaught:
            sys.excepthook = self.previous_hook
        decide(exception)


__all__ = ["tqdm"]
