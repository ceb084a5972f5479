"""The client's address: the peer, or `X-Forwarded-For` when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(
    peer: str | None, forwarded_for: bytes | None, trusted: tuple[Network, ...]
) -> str | None:
    """Walk `X-Forwarded-For` from the right, past trusted proxies, to the first other hop."""
    if peer is None or not forwarded_for or not trusted or not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.decode("latin-1").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer
