"""Send one request to a destination with the shared aiohttp session; never raise for HTTP.

Timeouts and connection errors become a `Response` with status 0 and the error text, so the
retry policy sees every failure the same way.
"""

from __future__ import annotations

import asyncio

import aiohttp
import yarl

from sluice.delivery import egress
from sluice.delivery.egress import PolicyResolver
from sluice.destinations.base import OutRequest, Response

NODE_FETCH_MAX_REDIRECTS = 20  # node-fetch's `follow` limit
MAX_RESPONSE_BYTES = 64 * 1024  # kept for `sluice trace` and parked events; enough to read why


def new_session(limit: int = 256) -> aiohttp.ClientSession:
    """One session per worker process: a connection pool shared by every destination, resolving
    host names under this process's egress policy (delivery/egress.py)."""
    resolver = PolicyResolver(egress.policy())
    connector = aiohttp.TCPConnector(
        limit=limit, limit_per_host=0, ttl_dns_cache=300, resolver=resolver
    )
    return aiohttp.ClientSession(connector=connector, auto_decompress=True, trust_env=False)


async def send(
    session: aiohttp.ClientSession,
    request: OutRequest,
    timeout_s: float,
    *,
    as_made: bool = False,
    url_as_built: bool = False,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> Response:
    """Send one request; read at most `max_bytes` of the answer.

    `as_made`: the request is sent exactly as code Sluice runs made it (Segment's, through the
    bridge), so the API sees what Segment's own would: the URL as node-fetch puts it on the
    wire, not re-quoted by yarl (`%` alone would become `%25`, `[` `%5B`, `%40` `@`, changing a
    path or query an API reads and breaking signatures over it); no Content-Type unless that
    code set one; redirects followed, as node-fetch follows them (native destinations' are
    not). Any request: no Content-Type unless it sets one (aiohttp would add
    application/octet-stream to any body), no body when empty."""
    refusal = egress.policy().url_refusal(request.url)
    if refusal is not None:  # an IP literal: names are checked by the session's resolver
        return Response(0, {}, b"", error=refusal)
    url: str | yarl.URL = request.url
    skip: tuple[str, ...] = ()
    if as_made or url_as_built:  # `url_as_built`: a native destination that escapes as Node
        url = yarl.URL(request.url, encoded=True)
    if not any(name.lower() == "content-type" for name in request.headers):
        skip = ("Content-Type",)  # a request that sets none has none (aiohttp would add one)
    try:
        async with session.request(
            request.method,
            url,
            data=request.body or None,
            headers=dict(request.headers),
            skip_auto_headers=skip,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=as_made,
            max_redirects=NODE_FETCH_MAX_REDIRECTS,
        ) as answer:
            chunks: list[bytes] = []
            size = 0
            while size < max_bytes:  # read(n) returns what has arrived so far, not n bytes
                chunk = await answer.content.read(max_bytes - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            headers = {k.lower(): v for k, v in answer.headers.items()}
            return Response(answer.status, headers, b"".join(chunks))
    except TimeoutError:
        return Response(0, {}, b"", error=f"timeout after {timeout_s:g} s")
    except aiohttp.ClientError as exc:
        return Response(0, {}, b"", error=f"{type(exc).__name__}: {exc}")
    except asyncio.CancelledError:
        raise
    except (OSError, ValueError) as exc:  # ValueError: a URL or header aiohttp cannot send
        return Response(0, {}, b"", error=f"{type(exc).__name__}: {exc}")
