"""What a worker's update does, whichever way it is served: the `update` handler, the fast
path below it (fast_path.py), one line of a batch (`updates`). One implementation of reading a
parameter, of who may write, of an update and of a batch, so that every path applies the same
rules and answers the same sentences.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tornado import httputil
from tornado.escape import parse_qs_bytes

from . import access, params, views
from .config import Settings
from .metrics import Counters
from .model import BadParameter, ModelError, Store

# (name, lenient) -> the parameter as sent, or None.
ArgReader = Callable[[str, bool], "str | None"]
Arguments = Mapping[str, list[bytes]]
# The answer to a request line longer than --max-request-bytes, and to a body.
LINE, BODY = "line", "body"


def parse_query(query: str | bytes, max_num_fields: int | None = None) -> dict[str, list[bytes]]:
    """`parse_qs_bytes(query, keep_blank_values=True, max_num_fields=...)`, as Tornado parses a
    request's query, to the same results and errors. A query of ASCII without `%` or `+` (an
    update's, usually) means what it says: it is split here, without the decoding and
    unquoting round trips; any other is Tornado's to parse."""
    text = query.decode("latin1") if isinstance(query, bytes) else query
    if not text.isascii() or "%" in text or "+" in text or (
            max_num_fields is not None and 1 + text.count("&") > max_num_fields):
        return parse_qs_bytes(query, keep_blank_values=True, max_num_fields=max_num_fields)
    result: dict[str, list[bytes]] = {}
    for field in text.split("&"):
        if field:
            name, _, value = field.partition("=")
            values = result.get(name)
            if values is None:
                result[name] = [value.encode()]
            else:
                values.append(value.encode())
    return result


def read_arg(arguments: Arguments, name: str, lenient: bool = False) -> str | None:
    """A parameter exactly as sent, the last one if repeated. Not Tornado's `get_argument`,
    which strips spaces (ids may hold them) and replaces control characters (strings are kept
    as given and escaped where they are shown). `lenient` text is never refused: bytes that
    are not UTF-8 (a Latin-1 file name in a message) become U+FFFD."""
    values = arguments.get(name)
    if not values:
        return None
    if lenient:
        return values[-1].decode("utf-8", errors="replace")
    try:
        return values[-1].decode("utf-8")
    except UnicodeDecodeError:
        raise BadParameter(f"{name} must be UTF-8 text, got {values[-1][:40]!r}") from None


def reader(arguments: Arguments) -> ArgReader:
    def read(name: str, lenient: bool) -> str | None:
        return read_arg(arguments, name, lenient)
    return read


def too_large(part: str, size: int, limit: int, at_least: bool = False) -> str:
    return (f"the request {part} is {'at least ' if at_least else ''}{size} bytes, more than the "
            f"limit of {limit} (option --max-request-bytes)")


def form_arguments(content_type: str, body: bytes,
                   headers: httputil.HTTPHeaders) -> dict[str, list[bytes]]:
    """A POST body's fields, as Tornado reads them (urlencoded or multipart)."""
    form: dict[str, list[bytes]] = {}
    try:
        httputil.parse_body_arguments(content_type, body, form, {}, headers)
    except httputil.HTTPInputError as error:
        raise BadParameter(f"the request body is not a form this server reads ({error}); send "
                           "application/x-www-form-urlencoded or multipart/form-data") from None
    return form


def check_write(headers: httputil.HTTPHeaders, host: str, arg: ArgReader,
                settings: Settings) -> None:
    """Writes: never from another site's page, and with a token when the server wants one."""
    access.check_same_site(headers, host)
    if settings.write_tokens:
        access.check_token(settings.write_tokens, arg("token", False) or access.bearer(
            headers.get("Authorization")))


def apply_update(arg: ArgReader, store: Store, client: str, counters: Counters) -> bytes:
    """An update's parameters checked, the worker's state stored, the answer's body."""
    jobid = params.identifier("jobid", arg("jobid", False))
    workid = params.identifier("workid", arg("workid", False))
    current = params.number("current", arg("current", False))
    total = params.number("total", arg("total", False))
    desc, truncated = params.description(arg("desc", True))
    ok, desc = params.outcome(arg("ok", False), arg("exit", False), desc)
    worker = store.update(jobid, workid, current, total, desc, ok,
                          params.write_key(arg("key", False)), client)
    counters.updates += 1
    return views.update_answer(worker.version, truncated)


def apply_batch(body: bytes, store: Store, client: str, counters: Counters,
                common: Arguments | None = None) -> bytes:
    """`updates`: one form-encoded update a line, applied in order, each on its own; one JSON
    line a line in the answer (a blank line too: it lacks a jobid). `common` are the request's
    own parameters (its query, say a key), which a line's own fields override."""
    answers = []
    for line in body.splitlines():
        # Fields are only read: the request's own lists are shared, not copied, per line.
        fields = {**(common or {}), **parse_query(line)}
        try:
            answers.append(apply_update(reader(fields), store, client, counters))
        except ModelError as error:  # the status it would have had alone: 429 is worth a retry
            answers.append(views.encode({"error": error.message, "status": error.status}))
    return b"".join(answers)
