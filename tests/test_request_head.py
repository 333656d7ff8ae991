"""Header lines parsed in one step (request_head.py): the same headers and errors as Tornado's
parser, whatever the lines, and the server's connections use it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from tornado import httputil

from tests.conftest import Fetch
from tornado_progress import request_head
from tornado_progress.server import ProgressServer

LINE = st.text(alphabet=st.sampled_from("Ab-:; \t\r\n\x00\x7fé,x"), max_size=12)


def outcome(parse: Any, lines: str) -> Any:
    try:
        headers = parse(lines)
    except httputil.HTTPInputError as error:
        return str(error)
    return sorted(headers.get_all())


@given(lines=st.lists(LINE | st.sampled_from(["Host: x", "a: b ", "A:", "a: 1", "B :c"]),
                      max_size=4).map(lambda lines: "\n" + "\r\n".join(lines) + "\r\n\r\n")
       | st.text(max_size=20))
@example(lines="\nHost: x\r\nX-A:\t v  w \t\r\n\r\n")
@example(lines="\nA: 1\r\na: 2\r\n\r\n")
@example(lines="\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: */*\r\n\r\n")
@example(lines="\nA: 1\r\n b\r\n\r\n")
def test_header_lines_parse_as_tornado_parses_them(lines: str) -> None:
    assert outcome(request_head.parse_header_lines, lines) == outcome(
        httputil.HTTPHeaders.parse, lines)


def test_a_missing_header_is_none_without_an_exception() -> None:
    headers = request_head.parse_header_lines("\nHost: x\r\nX-Two: 1\r\n\r\n")
    assert headers.get("host") == "x" and headers.get("Connection") is None
    assert headers.get("Expect", "") == ""
    assert list(headers) == ["Host", "X-Two"]


@pytest.mark.gen_test
async def test_the_servers_connections_parse_heads_so(
        fetch: Fetch, http_server: ProgressServer, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []

    def parse(lines: str) -> httputil.HTTPHeaders:
        parsed.append(lines)
        return parse_header_lines(lines)

    parse_header_lines = request_head.parse_header_lines
    monkeypatch.setattr(request_head, "parse_header_lines", parse)
    answer = await fetch("update", jobid="j", workid="w", current=1, total=2,
                         headers={"X-Test": "yes"})
    assert answer.code == 200
    assert any("X-Test: yes" in lines for lines in parsed)


@pytest.mark.parametrize("blanks", [" " * 64_000, "a" + " " * 64_000, "a " * 32_000,
                                    " \t" * 32_000])
def test_a_line_made_to_backtrack_costs_linear_time(blanks: str) -> None:
    """Blanks that two parts of the expression could both take once made a 64 KB line cost
    seconds of CPU."""
    started = time.process_time()
    with pytest.raises(httputil.HTTPInputError):
        request_head.parse_header_lines(f"\nHost: x\r\nX:{blanks}\x01\r\n\r\n")
    assert time.process_time() - started < 0.5
