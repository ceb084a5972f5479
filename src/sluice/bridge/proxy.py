"""The Python half of the fetch proxy: a `fetch` message from the sidecar, answered by the
caller's handler, becomes a `fetch_result` and an `Exchange` for trace and parked entries.

The handler is the delivery engine's client in production (timeouts, rate limits, egress
policy); whatever it raises is a network error on the JS side, as node-fetch would report it,
so Segment's code takes its own path for a failed request.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sluice.bridge.results import Exchange

# (exec_id, method, url, headers, body) -> (status, headers, body); raising is a network error.
FetchHandler = Callable[
    [str, str, str, Mapping[str, str], bytes], Awaitable[tuple[int, Mapping[str, str], bytes]]
]


async def no_network(
    exec_id: str, method: str, url: str, headers: Mapping[str, str], body: bytes
) -> tuple[int, Mapping[str, str], bytes]:
    raise ConnectionRefusedError("no fetch handler configured for the bridge")


async def answer_fetch(
    handler: FetchHandler, message: Mapping[str, Any]
) -> tuple[dict[str, Any], Exchange]:
    """Send one proxied request through `handler`: the reply for the sidecar and the record."""
    method, url = str(message["method"]), str(message["url"])
    headers = {str(k): str(v) for k, v in (message.get("headers") or {}).items()}
    if "body_b64" in message:
        body = base64.b64decode(message["body_b64"])
    else:
        body = str(message.get("body") or "").encode()
    reply: dict[str, Any] = {"op": "fetch_result", "id": message["id"]}
    started = time.monotonic()
    try:
        status, answer_headers, answer = await handler(
            str(message["exec"]), method, url, headers, body
        )
    except Exception as exc:
        error, code = network_error(exc)
        reply.update(error=error, code=code)
        elapsed = (time.monotonic() - started) * 1000
        return reply, Exchange(method, url, headers, body, error=error, elapsed_ms=elapsed)
    elapsed = (time.monotonic() - started) * 1000
    answer_headers = {str(k): str(v) for k, v in answer_headers.items()}
    reply.update(status=status, headers=answer_headers)
    try:
        reply["body"] = answer.decode()
    except UnicodeDecodeError:
        reply["body_b64"] = base64.b64encode(answer).decode()
    exchange = Exchange(method, url, headers, body, status, answer_headers, answer, None, elapsed)
    return reply, exchange


def network_error(exc: BaseException) -> tuple[str, str]:
    """What the JS side sees instead of a response: node-fetch's FetchError text and code."""
    if isinstance(exc, TimeoutError):
        return (f"timeout: {exc}" if str(exc) else "timeout"), "ETIMEDOUT"
    if isinstance(exc, ConnectionRefusedError):
        return str(exc) or "connection refused", "ECONNREFUSED"
    if isinstance(exc, ConnectionError | OSError):
        return str(exc) or "connection error", "ECONNRESET"
    return f"{type(exc).__name__}: {exc}", "EPROXY"
