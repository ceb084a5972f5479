"""Where destinations may send: an allow/deny policy on the addresses requests go to.

Destination URLs come from settings (a webhook's URL) or from code Sluice runs (Segment's
destinations choose theirs), so without a policy a workspace edit could make the worker fetch
from anything it can reach, such as a cloud's metadata service. The policy is checked on the
address a host resolves to (a resolver of the worker's HTTP session), so a name pointing at a
denied network is refused too, and on IP literals before sending. Defaults: every address is
allowed except link-local ones (169.254.0.0/16, fe80::/10: where clouds serve instance
metadata and credentials); `SLUICE_EGRESS_ALLOW` narrows it to the networks given,
`SLUICE_EGRESS_DENY` replaces the denied list. Self-hosted deliveries to private networks are
common, so those stay allowed unless denied.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from sluice.collector.peer import Network, parse_networks
from sluice.config import Settings, load_settings
from sluice.destinations.base import EGRESS_DENIED


class EgressDenied(OSError):
    """The policy refuses the address a request would go to."""


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    allow: tuple[Network, ...]  # empty: any address not denied
    deny: tuple[Network, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressPolicy:
        return cls(parse_networks(settings.egress_allow), parse_networks(settings.egress_deny))

    def refusal(self, address: str) -> str | None:
        """Why a request may not go to this IP address, or None."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return None  # a host name: checked once resolved
        if any(ip in net for net in self.deny):
            return f"{EGRESS_DENIED}: {address} is in a denied network (SLUICE_EGRESS_DENY)"
        if self.allow and not any(ip in net for net in self.allow):
            return f"{EGRESS_DENIED}: {address} is not in an allowed network (SLUICE_EGRESS_ALLOW)"
        return None

    def url_refusal(self, url: str) -> str | None:
        """For a URL whose host is an IP literal (names are checked by the resolver)."""
        host = urlsplit(url).hostname
        return self.refusal(host) if host else None


@functools.cache
def policy() -> EgressPolicy:
    """This process's policy, from its settings (`policy.cache_clear()` after changing them)."""
    return EgressPolicy.from_settings(load_settings())


class PolicyResolver(AbstractResolver):
    """Resolves as usual, then drops the addresses the policy refuses (all refused: an error
    naming the host, which the request reports)."""

    def __init__(self, policy: EgressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        allowed = [r for r in found if self.policy.refusal(r["host"]) is None]
        if not allowed:
            why = self.policy.refusal(found[0]["host"]) if found else "no address"
            raise EgressDenied(f"{why} ({host} resolves there)")
        return allowed

    async def close(self) -> None:
        await self.inner.close()
