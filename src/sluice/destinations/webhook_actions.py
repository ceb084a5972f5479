"""Webhooks (Actions): the mapped `data` sent to the mapped URL, one event or a JSON array.

What it sends, per segmentio/action-destinations
`packages/destination-actions/src/destinations/webhook/{index.ts,send/index.ts}` and the Segment
docs page `src/connections/destinations/catalog/actions-webhook/index.md`: one action, "Send",
with the fields `url`, `method` (POST, PUT or PATCH; default POST), `headers`, `data` (the
editor's default: the whole event; absent, no body is sent) and the framework's batching
fields (`enable_batching`, `batch_size`: default 1,000, at most 4,000). A single event goes as
its `data`; a batch as the JSON array of the events' `data`, one request per distinct (url,
method, headers), the batch keys Segment uses.
Headers: `User-Agent: Segment (Actions)`, the mapped headers, then `Content-Type:
application/json`; with a shared secret, `X-Signature` = hex HMAC-SHA1(secret, JSON of the
`data`), for a batch the `data` of its first event. Segment ships no preset for this destination:
every mapping names its trigger.

`endpoint`, when set, replaces the scheme and host of every mapped URL (path and query are kept):
for tests and egress proxies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import msgspec

from sluice.destinations.base import (
    Action,
    Destination,
    DestinationSettings,
    Mapped,
    OutRequest,
    Preset,
)
from sluice.destinations.webhook import merge_headers, sign
from sluice.mapping.directives import js_truthy

METHODS = ("POST", "PUT", "PATCH")
DEFAULT_BATCH_SIZE = 1000
MAX_BATCH_SIZE = 4000
USER_AGENT = "Segment (Actions)"


class WebhookActionsSettings(DestinationSettings, kw_only=True, forbid_unknown_fields=True):
    """The shared secret that signs requests (`X-Signature`); URLs live in the mappings."""

    shared_secret: str | None = None

    def __repr__(self) -> str:
        secret = "<redacted>" if self.shared_secret else None
        return f"WebhookActionsSettings(endpoint={self.endpoint!r}, shared_secret={secret})"


def redirect(url: str, endpoint: str | None) -> str:
    """`url` with its scheme and host replaced by those of `endpoint` (unchanged without one)."""
    if not endpoint:
        return url
    target, parts = urlsplit(endpoint), urlsplit(url)
    return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))


def _fields(item: Mapped) -> tuple[str, str, dict[str, str], Any, bool, int]:
    """url, method, headers, data, enable_batching and batch_size, defaulted and checked."""
    payload = item.payload if isinstance(item.payload, dict) else {}
    url = payload.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"message {item.message_id}: `url` must be an http(s) URL, got {url!r}")
    method = str(payload.get("method") or "POST").upper()
    if method not in METHODS:
        raise ValueError(f"message {item.message_id}: `method` must be one of {METHODS}")
    raw_headers = payload.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise ValueError(f"message {item.message_id}: `headers` must be an object")
    headers = {str(k): str(v) for k, v in raw_headers.items() if v is not None}
    # No `data` in the mapping: no body at all, as Segment's code sends `json: undefined` (the
    # field's default, the whole event, is what the editor fills in, not a runtime fallback).
    data = payload.get("data", NO_DATA)
    batching = payload.get("enable_batching") is True
    size = payload.get("batch_size")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        size = DEFAULT_BATCH_SIZE
    return url, method, headers, data, batching, min(size, MAX_BATCH_SIZE)


NO_DATA: Any = object()  # the mapping has no `data`


def _request(
    destination: WebhookActions,
    url: str,
    method: str,
    headers: Mapping[str, str],
    body: bytes | None,
    signed: Any,
    ids: Sequence[str],
) -> OutRequest:
    """`body` None: no body and no Content-Type. Signed, as Segment, only when a shared secret
    is set and the (first) event's `data` is truthy in JavaScript's sense."""
    secret = destination.settings.shared_secret
    first = {"User-Agent": USER_AGENT}
    if secret and signed is not NO_DATA and js_truthy(signed):
        first["X-Signature"] = sign(secret, msgspec.json.encode(signed))
    json_type = {} if body is None else {"Content-Type": "application/json"}
    merged = merge_headers(first, headers, json_type)
    url = redirect(url, destination.settings.endpoint)
    return OutRequest(method, url, merged, b"" if body is None else body, ids)


def _send(destination: WebhookActions, mapped: Sequence[Mapped]) -> list[OutRequest]:
    requests: list[OutRequest] = []
    batches: dict[tuple[str, str, str], tuple[dict[str, str], int, list[tuple[str, Any]]]] = {}
    for item in mapped:
        url, method, headers, data, batching, size = _fields(item)
        if not batching:
            one = (item.message_id,)
            body = None if data is NO_DATA else msgspec.json.encode(data)
            requests.append(_request(destination, url, method, headers, body, data, one))
            continue
        key = (url, method, msgspec.json.encode(headers).decode())
        batches.setdefault(key, (headers, size, []))[2].append((item.message_id, data))
    for (url, method, _), (headers, size, items) in batches.items():
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            datas = [None if data is NO_DATA else data for _, data in chunk]  # JSON: null
            ids = [message_id for message_id, _ in chunk]
            body = msgspec.json.encode(datas)
            requests.append(_request(destination, url, method, headers, body, chunk[0][1], ids))
    return requests


class WebhookActions(Destination):
    """Webhooks (Actions): "Send" with a mapped URL, method, headers and data."""

    id: ClassVar[str] = "webhook-actions"
    name: ClassVar[str] = "Webhooks (Actions)"
    aliases: ClassVar[Sequence[str]] = ("Webhook",)
    segment_types: ClassVar[Sequence[str]] = ("actions-webhook", "614a3c7d791c91c41bae7599")
    segment_settings: ClassVar[Mapping[str, str]] = {"sharedSecret": "shared_secret"}
    Settings: ClassVar[type[DestinationSettings]] = WebhookActionsSettings
    secret_settings: ClassVar[frozenset[str]] = frozenset({"shared_secret"})
    actions: ClassVar[Mapping[str, Action]] = {
        "send": Action("send", "Send", _send, max_batch=MAX_BATCH_SIZE),
    }
    presets: ClassVar[Sequence[Preset]] = ()

    settings: WebhookActionsSettings
