"""Raw ASGI responses for the ingest paths: the few shapes Segment's clients rely on."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

SUCCESS_BODY = b'{"success":true}'
JSON = (b"content-type", b"application/json")
# The smallest transparent 1x1 GIF: the pixel endpoint answers it whatever happens.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


async def send_bytes(
    send: Send, status: int, body: bytes, headers: Headers, content_type: tuple[bytes, bytes]
) -> None:
    all_headers = [content_type, (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def send_success(send: Send, headers: Headers) -> None:
    await send_bytes(send, 200, SUCCESS_BODY, headers, JSON)


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: Headers,
    retry_after: int | None = None,
) -> None:
    """`{"success": false, "code", "message"}`: analytics-python reads `code` and `message`."""
    body = msgspec.json.encode({"success": False, "code": code, "message": message})
    extra = list(headers)
    if retry_after is not None:
        extra.append((b"retry-after", str(retry_after).encode()))
        extra.append((b"x-ratelimit-reset", str(retry_after).encode()))
    await send_bytes(send, status, body, extra, JSON)


async def send_json(send: Send, status: int, value: Any, headers: Headers) -> None:
    await send_bytes(send, status, msgspec.json.encode(value), headers, JSON)


async def send_pixel(send: Send, headers: Headers) -> None:
    await send_bytes(
        send,
        200,
        PIXEL_GIF,
        [*headers, (b"cache-control", b"no-cache, no-store, must-revalidate")],
        (b"content-type", b"image/gif"),
    )
