"""Who may write, and whose proxy headers are believed: write tokens, cross-site refusal and
trusted proxies. Pure functions of request fields, shared by every writing endpoint; nothing
here knows about Tornado.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Mapping
from pathlib import Path

from .model import Forbidden, ModelError

# The id a proxy that routes jobs by their id chose for a create without a jobid: the one it
# routed the create by, so that the job's later requests reach this same process.
NEW_JOBID_HEADER = "X-Progress-New-Jobid"
# Proxy headers that set what the client cannot know by itself: its address, the server's
# public scheme, host, port and path prefix, and a routed create's id.
PROXY_HEADERS = frozenset({"X-Forwarded-For", "X-Real-Ip", "X-Forwarded-Proto", "X-Scheme",
                           "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Prefix",
                           NEW_JOBID_HEADER})
# Fetch metadata that a browser sends with a request another site's page made; scripts, curl
# and requests send none of it.
_CROSS_SITE = frozenset({"cross-site", "same-site"})
# Addresses whose trust was decided, kept until this many, then decided again.
_DECIDED_MAX = 4096


class Unauthorized(ModelError):
    status = 401


def parse_networks(text: str) -> tuple[str, ...]:
    """`--trusted-proxies`: comma-separated addresses or networks; '' trusts none."""
    networks = []
    for part in text.replace(" ", ",").split(","):
        if part:
            try:
                networks.append(str(ipaddress.ip_network(part, strict=False)))
            except ValueError:
                raise ValueError(f"not an address or network: {part!r}") from None
    return tuple(networks)


def peer_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A peer's address as an IP (an IPv4-mapped IPv6 address as the IPv4 one), or None for a
    Unix socket or nothing."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped or ip


class TrustedProxies:
    """Decides whether a peer address is one of the trusted proxies."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = tuple(ipaddress.ip_network(network) for network in networks)
        self._decided: dict[str, bool] = {}

    def trusts(self, address: str) -> bool:
        decided = self._decided.get(address)
        if decided is None:
            ip = peer_ip(address)
            decided = ip is not None and any(ip in network for network in self.networks)
            if len(self._decided) >= _DECIDED_MAX:
                self._decided.clear()
            self._decided[address] = decided
        return decided


def client_group(address: str) -> str:
    """What counts as one client in per-client limits: its IPv4 address, or the /64 network of
    its IPv6 address (one host usually holds a whole /64 and may pick any address in it)."""
    if ":" not in address:  # IPv4, the common case, without parsing
        return address
    ip = peer_ip(address)
    if ip is None:
        return address
    if ip.version == 4:
        return str(ip)
    return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))


def read_tokens(path: Path) -> frozenset[str]:
    """`--write-tokens FILE`: one token a line; blank lines and lines starting # are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise SystemExit(f"--write-tokens: cannot read {path}: {error}") from None
    tokens = frozenset(line.strip() for line in lines
                       if line.strip() and not line.lstrip().startswith("#"))
    if not tokens:
        raise SystemExit(f"--write-tokens: {path} holds no token")
    return tokens


def check_token(tokens: frozenset[str], given: str | None) -> None:
    """Raises `Unauthorized` unless `given` is one of `tokens` (any token when there are none).
    Every token is compared, in constant time, so timing tells nothing of which is near."""
    if not tokens:
        return
    if given is None:
        raise Unauthorized("this server accepts writes only with a token (option "
                           "--write-tokens): add token=... or an Authorization: Bearer header")
    encoded = given.encode()
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(token.encode(), encoded)
    if not matched:
        raise Unauthorized("the token is not one this server accepts")


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer T` header."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def check_same_site(headers: Mapping[str, str], host: str) -> None:
    """Refuses a write that another site's page made a browser send (an <img> or a form
    pointing at `delete`): browsers say so in Sec-Fetch-Site, or in an Origin that is not ours.
    Scripts, curl and requests send neither header."""
    site = headers.get("Sec-Fetch-Site")
    origin = headers.get("Origin")
    if site in _CROSS_SITE:
        raise Forbidden(f"a page of another site asked this browser to change a job "
                        f"(Sec-Fetch-Site: {site}); writes come from scripts or this server's "
                        "own pages")
    if origin is not None and site != "same-origin" and (
            origin == "null" or origin.partition("://")[2].lower() != host.lower()):
        raise Forbidden(f"a page of another origin ({origin[:100]}) asked this browser to "
                        "change a job; writes come from scripts or this server's own pages")
