"""Requests and responses as kept for parked events and `sluice trace`: JSON, bodies as text."""

from __future__ import annotations

from typing import Any

import msgspec

from sluice.destinations.base import OutRequest, Response

MAX_KEPT_BODY = 16 * 1024
REDACTED_HEADERS = frozenset({"authorization", "x-api-key", "api-key"})


def _text(body: bytes) -> str:
    text = body[:MAX_KEPT_BODY].decode("utf-8", "replace")
    return text + ("…" if len(body) > MAX_KEPT_BODY else "")


def request_record(request: OutRequest) -> bytes:
    headers = {
        k: ("<redacted>" if k.lower() in REDACTED_HEADERS else v)
        for k, v in request.headers.items()
    }
    record: dict[str, Any] = {
        "method": request.method,
        "url": request.url,
        "headers": headers,
        "body": _text(request.body),
    }
    return msgspec.json.encode(record)


def response_record(response: Response) -> bytes:
    record: dict[str, Any] = {"status": response.status, "headers": dict(response.headers)}
    if response.error:
        record["error"] = response.error
    record["body"] = _text(response.body)
    return msgspec.json.encode(record)
