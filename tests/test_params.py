"""The parameter rules of the contract, each with its error sentence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tornado.escape import parse_qs_bytes

from tornado_progress import params, writes
from tornado_progress.model import BadParameter


@pytest.mark.parametrize(("text", "value"), [
    ("5", 5), ("0", 0), ("22.5", 22.5), (".5", 0.5), ("5.", 5.0), ("1e3", 1000.0),
    ("12345678901234567890", 1.2345678901234567e19),
])
def test_numbers_accepted(text: str, value: float) -> None:
    parsed = params.number("total", text)
    assert parsed == value
    assert type(parsed) is type(value)


@pytest.mark.parametrize("text", ["abc", "-1", "nan", "inf", "Infinity", "", "1_000", "0x10",
                                  "1e999", "5 5", "--5", "٨٠٠", "5\u0665"])
def test_numbers_rejected_with_a_sentence_naming_the_parameter(text: str) -> None:
    with pytest.raises(BadParameter) as raised:
        params.number("total", text)
    assert raised.value.message == f"total must be a number >= 0, got {text.strip()!r}"


def test_missing_number_is_required() -> None:
    with pytest.raises(BadParameter, match=r"^current is required$"):
        params.number("current", None)


@pytest.mark.parametrize("text", ["0", "false", "No", "OFF", "FALSE"])
def test_ok_false_values(text: str) -> None:
    assert params.flag("ok", text, default=True) is False


@pytest.mark.parametrize("text", ["1", "true", "Yes", "ON"])
def test_ok_true_values(text: str) -> None:
    assert params.flag("ok", text, default=False) is True


def test_ok_absent_is_true_and_garbage_is_rejected() -> None:
    assert params.flag("ok", None, default=True) is True
    with pytest.raises(BadParameter, match=r"^ok must be one of"):
        params.flag("ok", "maybe", default=True)
    with pytest.raises(BadParameter, match=r"^ok must be one of"):
        params.flag("ok", "", default=True)


def test_identifier_bounds() -> None:
    assert params.identifier("jobid", "x" * 256) == "x" * 256
    assert params.identifier("workid", " ") == " "
    with pytest.raises(BadParameter, match=r"^jobid must be at most 256 characters, got 257$"):
        params.identifier("jobid", "x" * 257)
    with pytest.raises(BadParameter, match=r"^workid must not be empty$"):
        params.identifier("workid", "")
    with pytest.raises(BadParameter, match=r"^jobid is required$"):
        params.identifier("jobid", None)


def test_identifier_counts_characters_not_bytes() -> None:
    assert params.identifier("jobid", "é" * 256) == "é" * 256


def test_description_is_cut_and_says_so() -> None:
    assert params.description(None) == ("", False)
    assert params.description("d" * 1024) == ("d" * 1024, False)
    assert params.description("d" * 1025) == ("d" * 1024, True)


@pytest.mark.parametrize("text", ["-1", "61", "abc", "nan", ""])
def test_bounded_rejects_out_of_range(text: str) -> None:
    with pytest.raises(BadParameter, match=r"^timeout must be a number from 0 to 60, got"):
        params.bounded("timeout", text, 25, 0, 60)


def test_bounded_default_and_whole_numbers() -> None:
    assert params.bounded("timeout", None, 25, 0, 60) == 25
    assert params.bounded("width", "300", 800, 200, 4000, integer=True) == 300
    with pytest.raises(BadParameter, match=r"^width must be a whole number from 200 to 4000"):
        params.bounded("width", "300.5", 800, 200, 4000, integer=True)


def test_long_values_are_cut_in_sentences() -> None:
    with pytest.raises(BadParameter) as raised:
        params.number("total", "x" * 10_000)
    assert len(raised.value.message) < 120


def test_version_cursor() -> None:
    assert params.version("since", "17") == 17
    assert params.version("since", "0000001795930767471922") == 1795930767471922
    assert params.version("since", "0") == 0
    with pytest.raises(BadParameter, match=r"^since must be a whole number >= 0, got '-1'$"):
        params.version("since", "-1")


@pytest.mark.parametrize(("ok", "exit", "desc", "expected"), [
    (None, None, "", (True, "")),
    (None, "0", "fine", (True, "fine")),
    (None, "1", "", (False, "exit 1")),
    (None, " 255 ", "disk full", (False, "exit 255: disk full")),
    ("1", "0", "", (True, "")),
    ("0", "3", "", (False, "exit 3")),
])
def test_a_shell_exit_status_decides_ok_and_names_itself(
        ok: str | None, exit: str | None, desc: str, expected: tuple[bool, str]) -> None:
    assert params.outcome(ok, exit, desc) == expected


@pytest.mark.parametrize(("ok", "exit", "sentence"), [
    (None, "256", "exit must be a shell exit status, a whole number from 0 to 255, got '256'"),
    (None, "-1", "exit must be a shell exit status"),
    (None, "x", "exit must be a shell exit status"),
    ("1", "2", "ok='1' and exit=2 disagree"),
    ("0", "0", "ok='0' and exit=0 disagree"),
])
def test_a_bad_or_contradicted_exit_status_is_refused(ok: str | None, exit: str,
                                                       sentence: str) -> None:
    with pytest.raises(BadParameter, match=sentence.replace("(", r"\(").replace(")", r"\)")):
        params.outcome(ok, exit, "")


def test_the_exit_desc_stays_within_the_desc_limit() -> None:
    assert len(params.outcome(None, "9", "d" * 1024)[1]) == 1024


@pytest.mark.parametrize(("text", "value"), [("43200", 43200.0), ("0.5", 0.5), (" 1e3", 1000.0)])
def test_maxage_is_seconds_above_zero(text: str, value: float) -> None:
    assert params.seconds("maxage", text) == value


@pytest.mark.parametrize("text", ["0", "-5", "nan", "inf", "1e999", "soon", ""])
def test_a_bad_maxage_is_refused(text: str) -> None:
    with pytest.raises(BadParameter, match="maxage must be a number of seconds > 0"):
        params.seconds("maxage", text)


@pytest.mark.parametrize("text", ["0", "-1", "2.5", "many", ""])
def test_a_bad_worker_count_is_refused(text: str) -> None:
    with pytest.raises(BadParameter, match="workers must be a whole number >= 1"):
        params.count("workers", text)


QUERY_TEXT = st.text(alphabet=st.sampled_from("ab=&%+;2Fé\x00\x7f \u20ac"), max_size=30)


@given(query=QUERY_TEXT | st.binary(max_size=30), fields=st.none() | st.integers(1, 5))
def test_a_query_parses_as_tornado_parses_it(query: str | bytes, fields: int | None) -> None:
    """writes.parse_query splits plain queries itself: the same fields, values and errors as
    Tornado's parse_qs_bytes, whatever the query."""
    def outcome(parse: Callable[[], dict[str, list[bytes]]]) -> Any:
        try:
            return parse()
        except (ValueError, UnicodeError) as error:
            return type(error), str(error)

    assert outcome(lambda: writes.parse_query(query, fields)) == outcome(
        lambda: parse_qs_bytes(query, keep_blank_values=True, max_num_fields=fields))


@pytest.mark.parametrize(("query", "parsed"), [
    ("jobid=j&workid=w&current=1&current=2&&desc=&flag", {
        "jobid": [b"j"], "workid": [b"w"], "current": [b"1", b"2"], "desc": [b""],
        "flag": [b""]}),
    ("desc=a+b%20c%C3%A9&w%3D=1", {"desc": ["a b cé".encode()], "w=": [b"1"]}),
    (b"desc=\xe9", {"desc": [b"\xe9"]}),
])
def test_a_query_keeps_blanks_repeats_and_raw_bytes(query: str | bytes,
                                                    parsed: dict[str, list[bytes]]) -> None:
    assert writes.parse_query(query, 1000) == parsed
