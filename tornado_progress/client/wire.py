"""What the client puts on the wire and reads back: a server's address (`Target`), an update as
a form, a batch's lines and the answer to them, and the sender's kept-alive connection.

Standard library only, like the rest of tornado_progress.client.
"""

from __future__ import annotations

import http.client
import json
import os
from dataclasses import dataclass
from urllib.parse import quote_plus, urlsplit

from tornado_progress import __version__

USER_AGENT = f"tornado_progress.client/{__version__}"

# A worker's state as `Reporter.update()` stores it: current, total, desc, ok.
State = tuple[float, float, str, bool]


@dataclass(frozen=True)
class Target:
    """A server as the client reaches it: `http://host:8000` spelled any usual way."""

    scheme: str
    host: str
    port: int
    prefix: str  # a path in front of /progress/, "" for most servers

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.prefix}"

    def path(self, endpoint: str) -> str:
        return f"{self.prefix}/progress/{endpoint}"

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)


def parse_server(server: str) -> Target:
    """`http://host:8000`, with or without a trailing `/` or `/progress/` (or a path prefix in
    front of it, behind a proxy); a missing scheme means http. ValueError for anything else."""
    text = server.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    if scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise ValueError(f"server must be a URL like http://host:8000, got {server!r}")
    prefix = parts.path.rstrip("/")
    if prefix.endswith("/progress"):
        prefix = prefix[: -len("/progress")]
    return Target(scheme, parts.hostname, port or (443 if scheme == "https" else 80), prefix)


def normalise_server(server: str) -> str:
    """The base URL every spelling of `server` stands for, e.g. `http://host:8000`."""
    return parse_server(server).base_url


def headers(token: str | None) -> dict[str, str]:
    """A write's headers: a form, the client's name, the token if any."""
    fields = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": USER_AGENT}
    if token:
        fields["Authorization"] = f"Bearer {token}"
    return fields


def error_sentence(status: int, body: bytes) -> str:
    """The `error` sentence of a JSON error answer, else the start of whatever came."""
    try:
        sentence = json.loads(body)["error"]
        if isinstance(sentence, str):
            return sentence
    except (ValueError, TypeError, KeyError):
        pass
    text = body[:200].decode("utf-8", "replace").strip()
    return f"HTTP {status}" + (f": {text}" if text else "")


def number(value: object) -> str:
    """A number as the server reads it: `7`, `2.5`, `1e+16`."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return str(value)  # numpy and other number types print themselves


def form(prefix: str, state: State) -> bytes:
    """One update as a form (the body of `update`, a line of `updates`: it holds no newline,
    every field being percent-encoded); `prefix` holds the worker's own fields."""
    current, total, desc, ok = state
    body = f"{prefix}&current={number(current)}&total={number(total)}&desc={quote_plus(desc)}"
    return (body if ok else body + "&ok=0").encode()


def line_answers(body: bytes, count: int) -> list[tuple[str, int] | None] | None:
    """The answer to a batch of `count` lines, line by line: None for an update recorded, the
    server's sentence and the status the line would have had alone for one refused. None when
    the body is not one JSON answer a line."""
    lines = body.splitlines()
    if len(lines) != count:
        return None
    if b'"error"' not in body and all(line.startswith(b'{"version":') for line in lines):
        return [None] * count  # the usual answer, read without decoding it
    answers: list[tuple[str, int] | None] = []
    for line in lines:
        try:
            answer = json.loads(line)
        except ValueError:
            return None
        if isinstance(answer, dict) and isinstance(answer.get("error"), str):
            status = answer.get("status")
            answers.append((answer["error"], status if isinstance(status, int) else 400))
        elif isinstance(answer, dict) and "version" in answer:
            answers.append(None)
        else:
            return None
    return answers


class KeptAlive:
    """One kept-alive connection to a server, used by one thread; replaced after an error,
    and in a forked child, which must never write to its parent's socket."""

    def __init__(self, target: Target, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self.connection: http.client.HTTPConnection | None = None
        self._pid = 0
        self._used = False  # has served a request: it may have gone stale since

    def post(self, path: str, body: bytes,
             fields: dict[str, str]) -> tuple[int, str | None, bytes]:
        """POSTs `body`: the status, the Retry-After header and the answer's body. A kept-alive
        connection the server has closed meanwhile is replaced once at once (an update can be
        sent twice: it sets a state). OSError or HTTPException when the server is not
        reached."""
        for attempt in (1, 2):
            connection, reused = self._connect()
            try:
                connection.request("POST", path, body, fields)
                response = connection.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as error:
                self.close()
                stale = isinstance(error, (ConnectionError, http.client.BadStatusLine))
                if attempt == 1 and reused and stale:
                    continue
                raise
            self._used = True
            if response.will_close:
                self.close()
            return response.status, response.getheader("Retry-After"), answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _connect(self) -> tuple[http.client.HTTPConnection, bool]:
        if self.connection is not None and self._pid != os.getpid():
            self.connection = None  # the parent's socket: never write to it from here
        if self.connection is None:
            self.connection = self.target.connection(self.timeout)
            self._pid = os.getpid()
            self._used = False
        return self.connection, self._used

    def close(self) -> None:
        if self.connection is not None:
            if self._pid == os.getpid():
                self.connection.close()
            self.connection = None
