"""Send one request to a destination with the shared aiohttp session; never raise for HTTP.

Timeouts and connection errors become a `Response` with status 0 and the error text, so the
retry policy sees every failure the same way.
"""

from __future__ import annotations

import asyncio

import aiohttp

from sluice.destinations.base import OutRequest, Response

MAX_RESPONSE_BYTES = 64 * 1024  # kept for `sluice trace` and parked events; enough to read why


def new_session(limit: int = 256) -> aiohttp.ClientSession:
    """One session per worker process: a connection pool shared by every destination."""
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector, auto_decompress=True, trust_env=False)


async def send(session: aiohttp.ClientSession, request: OutRequest, timeout_s: float) -> Response:
    try:
        async with session.request(
            request.method,
            request.url,
            data=request.body,
            headers=dict(request.headers),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as answer:
            body = await answer.content.read(MAX_RESPONSE_BYTES)
            headers = {k.lower(): v for k, v in answer.headers.items()}
            return Response(answer.status, headers, body)
    except TimeoutError:
        return Response(0, {}, b"", error=f"timeout after {timeout_s:g} s")
    except aiohttp.ClientError as exc:
        return Response(0, {}, b"", error=f"{type(exc).__name__}: {exc}")
    except asyncio.CancelledError:
        raise
    except OSError as exc:
        return Response(0, {}, b"", error=f"{type(exc).__name__}: {exc}")
