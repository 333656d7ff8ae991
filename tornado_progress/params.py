"""Parameter rules of the contract (docs/API.md): turn request strings into typed values or raise
`BadParameter` with one sentence that names the parameter and says what was wrong.

Pure functions, shared by every handler, so that a rule is written once.
"""

from __future__ import annotations

import math
import re

from .model import DESC_MAX_CHARS, ID_MAX_CHARS, KEY_MIN_CHARS, BadParameter, Number

# Integers or decimals, optionally with an exponent: no signs, no nan/inf, no "1_000".
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_INT = re.compile(r"\d{1,18}", re.ASCII)
# A version cursor: zero padding is harmless, so only the value is bounded.
_CURSOR = re.compile(r"0*(\d{1,18})", re.ASCII)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# What reaches a user in a sentence: enough to recognise the value, never a flood.
_QUOTE_MAX = 60
# A routed create's id chosen by the proxy: at least 96 bits, as nginx's 32-hex-digit
# $request_id is; anything shorter is not taken.
NEW_JOBID_MIN_CHARS = 24


def quoted(value: str) -> str:
    """A client's value as it is quoted inside an error sentence."""
    if len(value) > _QUOTE_MAX:
        value = value[:_QUOTE_MAX] + "..."
    return repr(value)


def required(name: str, value: str | None) -> str:
    if value is None:
        raise BadParameter(f"{name} is required")
    return value


def identifier(name: str, value: str | None) -> str:
    """A jobid or workid: 1 to 256 characters of any text."""
    value = required(name, value)
    if not value:
        raise BadParameter(f"{name} must not be empty")
    if len(value) > ID_MAX_CHARS:
        raise BadParameter(
            f"{name} must be at most {ID_MAX_CHARS} characters, got {len(value)}")
    return value


def write_key(value: str | None) -> str | None:
    """A job's key: 8 to 256 characters, or None when the request carries none."""
    if value is None:
        return None
    if not KEY_MIN_CHARS <= len(value) <= ID_MAX_CHARS:
        raise BadParameter(f"key must be {KEY_MIN_CHARS} to {ID_MAX_CHARS} characters, got "
                           f"{len(value)}")
    return value


def number(name: str, value: str | None) -> Number:
    """A finite number >= 0; kept as an int when it was written as one."""
    value = required(name, value).strip()
    if _INT.fullmatch(value):
        return int(value)
    if _NUMBER.fullmatch(value):
        parsed = float(value)
        if math.isfinite(parsed):
            return parsed
    raise BadParameter(f"{name} must be a number >= 0, got {quoted(value)}")


def flag(name: str, value: str | None, default: bool) -> bool:
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise BadParameter(
        f"{name} must be one of 0, 1, false, true, no, yes, off, on; got {quoted(value)}")


def description(value: str | None) -> tuple[str, bool]:
    """Optional text, cut to 1,024 characters; also says whether it was cut."""
    if value is None:
        return "", False
    if len(value) > DESC_MAX_CHARS:
        return value[:DESC_MAX_CHARS], True
    return value, False


def bounded(name: str, value: str | None, default: float, low: float, high: float,
            integer: bool = False) -> float:
    """A number within [low, high], for options such as timeout, width and scale."""
    if value is None:
        return default
    text = value.strip()
    pattern = _INT if integer else _NUMBER
    parsed = float(text) if pattern.fullmatch(text) else math.nan
    if not low <= parsed <= high:
        kind = "a whole number" if integer else "a number"
        raise BadParameter(
            f"{name} must be {kind} from {low:g} to {high:g}, got {quoted(value)}")
    return parsed


def version(name: str, value: str | None) -> int:
    """A version cursor: a whole number >= 0."""
    text = required(name, value).strip()
    match = _CURSOR.fullmatch(text)
    if match is None:
        raise BadParameter(f"{name} must be a whole number >= 0, got {quoted(text)}")
    return int(match.group(1))


def seconds(name: str, value: str | None) -> float | None:
    """Optional seconds, a decimal > 0 (create's maxage)."""
    if value is None:
        return None
    text = value.strip()
    parsed = float(text) if _NUMBER.fullmatch(text) else math.nan
    if not (math.isfinite(parsed) and parsed > 0):
        raise BadParameter(f"{name} must be a number of seconds > 0, got {quoted(value)}")
    return parsed


def count(name: str, value: str | None) -> int | None:
    """An optional whole number >= 1 (create's workers); its upper bound is the model's."""
    if value is None:
        return None
    text = value.strip()
    if not _INT.fullmatch(text) or int(text) < 1:
        raise BadParameter(f"{name} must be a whole number >= 1, got {quoted(value)}")
    return int(text)


def outcome(ok_value: str | None, exit_value: str | None, desc: str) -> tuple[bool, str]:
    """A worker's ok flag and desc from `ok` and a shell's `exit` status: exit 0 is ok, any
    other status failed, and the desc then starts with "exit N" so that every view shows it."""
    ok = flag("ok", ok_value, default=True)
    if exit_value is None:
        return ok, desc
    text = exit_value.strip()
    status = int(text) if _INT.fullmatch(text) else -1
    if not 0 <= status <= 255:
        raise BadParameter(f"exit must be a shell exit status, a whole number from 0 to 255, "
                           f"got {quoted(exit_value)}")
    if ok_value is not None and ok != (status == 0):
        raise BadParameter(f"ok={quoted(ok_value)} and exit={status} disagree: exit 0 means ok, "
                           "any other status failed; send one of them")
    if status == 0:
        return True, desc
    return False, (f"exit {status}: {desc}" if desc else f"exit {status}")[:DESC_MAX_CHARS]


def choice(name: str, value: str | None, choices: tuple[str, ...]) -> str:
    """One of `choices` (case-insensitive); the first when absent."""
    if value is None:
        return choices[0]
    lowered = value.strip().lower()
    if lowered not in choices:
        raise BadParameter(f"{name} must be one of {', '.join(choices)}; got {quoted(value)}")
    return lowered


NOTIFY_MAX_CHARS = 2048


def notify_url(value: str | None, allowed: tuple[str, ...]) -> str | None:
    """create's notify: a URL that starts with one of the server's allowed prefixes (option
    --notify-allow), since the server itself will POST there."""
    if value is None:
        return None
    if not allowed:
        raise BadParameter("notify is turned off on this server: its operator allows URLs with "
                           "the option --notify-allow PREFIX")
    if len(value) > NOTIFY_MAX_CHARS or not value.startswith(("http://", "https://")) or \
            not value.startswith(allowed):
        raise BadParameter(f"notify must be an http(s) URL of at most {NOTIFY_MAX_CHARS} "
                           f"characters starting with one of {', '.join(allowed)} (option "
                           f"--notify-allow), got {quoted(value)}")
    return value
