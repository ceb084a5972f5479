"""CORS for the Tracking API: analytics.js posts from any site, with credentials when the
page's origin is known, and asks first (preflight) for the headers it sends."""

from __future__ import annotations

from sluice.collector.responses import Headers, Send

DEFAULT_ALLOWED_HEADERS = b"Content-Type, Authorization, X-Retry-Count, Content-Encoding"


def cors_headers(origin: bytes | None) -> Headers:
    if not origin:
        return [(b"access-control-allow-origin", b"*")]
    return [
        (b"access-control-allow-origin", origin),
        (b"access-control-allow-credentials", b"true"),
        (b"vary", b"Origin"),
    ]


async def send_preflight(send: Send, headers: dict[bytes, bytes], cors: Headers) -> None:
    """204 to an OPTIONS request: the methods, and the headers it asked for, for a day."""
    requested = headers.get(b"access-control-request-headers") or DEFAULT_ALLOWED_HEADERS
    await send(
        {
            "type": "http.response.start",
            "status": 204,
            "headers": [
                *cors,
                (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                (b"access-control-allow-headers", requested),
                (b"access-control-max-age", b"86400"),
                (b"content-length", b"0"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
