"""Requests and responses as kept for parked events and `sluice trace`: JSON, bodies as text."""

from __future__ import annotations

from typing import Any

import msgspec

from sluice.destinations.base import OutRequest, Response

MAX_KEPT_BODY = 16 * 1024
# A failed request of many events is kept with each of them (retry set, parked): less of it.
SHARED_KEPT_BODY = 1024
REDACTED_HEADERS = frozenset({"authorization", "x-api-key", "api-key"})


def _text(body: bytes, limit: int = MAX_KEPT_BODY) -> str:
    text = body[:limit].decode("utf-8", "replace")
    return text + ("…" if len(body) > limit else "")


def request_record(request: OutRequest, limit: int = MAX_KEPT_BODY) -> bytes:
    headers = {
        k: ("<redacted>" if k.lower() in REDACTED_HEADERS else v)
        for k, v in request.headers.items()
    }
    record: dict[str, Any] = {
        "method": request.method,
        "url": request.url,
        "headers": headers,
        "body": _text(request.body, limit),
    }
    return msgspec.json.encode(record)


def response_record(response: Response, limit: int = MAX_KEPT_BODY) -> bytes:
    record: dict[str, Any] = {"status": response.status, "headers": dict(response.headers)}
    if response.error:
        record["error"] = response.error
    record["body"] = _text(response.body, limit)
    return msgspec.json.encode(record)
