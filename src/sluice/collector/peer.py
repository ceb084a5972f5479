"""What the collector believes about the client: its address (the peer, or `X-Forwarded-For`),
and the scheme and host it used, which only a trusted proxy may tell."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# What a forwarded host may be: a name or IPv4 address, or a bracketed IPv6 one, and a port.
# Anything else (spaces, slashes, `@`, quotes) is ignored: the value goes into URLs SDKs build.
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def is_trusted(address: str | None, networks: tuple[Network, ...]) -> bool:
    """Whether `address` is in one of `networks` (trusted proxies, allowed metrics scrapers)."""
    if address is None or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(
    peer: str | None, forwarded_for: bytes | None, trusted: tuple[Network, ...]
) -> str | None:
    """Walk `X-Forwarded-For` from the right, past trusted proxies, to the first other hop."""
    if peer is None or not forwarded_for or not is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.decode("latin-1").split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def forwarded_origin(
    peer: str | None, headers: Mapping[bytes, bytes], trusted: tuple[Network, ...]
) -> tuple[str | None, str | None]:
    """(scheme, host) the client used, as a trusted proxy says; (None, None) from anyone else.

    `X-Forwarded-Proto` and `X-Forwarded-Host` first, else `proto=` and `host=` of `Forwarded`
    (RFC 7239). Of a comma-separated list, the first value: the one the proxy nearest the
    client wrote. A scheme other than http(s) or a malformed host is ignored.
    """
    if not is_trusted(peer, trusted):
        return None, None
    rfc = _forwarded_pairs(headers.get(b"forwarded"))
    proto = _first(headers.get(b"x-forwarded-proto")) or rfc.get("proto")
    host = _first(headers.get(b"x-forwarded-host")) or rfc.get("host")
    scheme = proto.lower() if proto and proto.lower() in ("http", "https") else None
    return scheme, host if host and _HOST.fullmatch(host) else None


def _first(value: bytes | None) -> str | None:
    if not value:
        return None
    return value.decode("latin-1").split(",")[0].strip() or None


def _forwarded_pairs(value: bytes | None) -> dict[str, str]:
    """The parameters of the first element of a `Forwarded` header, names lower-cased."""
    if not value:
        return {}
    pairs: dict[str, str] = {}
    for pair in value.decode("latin-1").split(",")[0].split(";"):
        name, eq, raw = pair.partition("=")
        if eq:
            pairs.setdefault(name.strip().lower(), raw.strip().strip('"'))
    return pairs
