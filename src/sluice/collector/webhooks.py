"""`POST /v1/hooks/<token>`: a webhook (cloud app) source's deliveries, verified and stored.

The token is one of the webhook source's write keys (random, unguessable; a webhook source's
keys open nothing else: the Tracking API refuses them). Each delivery is read as raw bytes (every
scheme signs the exact body), verified by its provider's scheme (webhooks/verify.py) before
anything is parsed or stored, parsed, mapped to one Spec event (webhooks/events.py) whose
`messageId` is the provider's delivery id, and acknowledged only once committed, as any event.

A refusal answers with the status the provider's retry logic expects (401 for a signature, 400
for a body that is not JSON, 413 too large, 503 when the log cannot commit: the provider retries)
and JSON `code`/`message`; it is counted per source as `webhook_rejected:<reason>` (`sluice
status`), never stored, never logged with a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec

from sluice.collector.body import BodyError, read_body
from sluice.collector.responses import send_error, send_success
from sluice.config import Settings
from sluice.errors import SluiceError
from sluice.store.base_event_store import SourceRow
from sluice.webhooks.events import describe, parse_body, spec_event
from sluice.webhooks.verify import Delivery, Generic, Rejected, verify
from sluice.workspace.model import WebhookSource

log = logging.getLogger("sluice.collector")

PREFIX = "/v1/hooks/"
Accept = Callable[
    [SourceRow, dict[str, Any], Any, dict[bytes, bytes]],
    Awaitable[tuple[int, str, str, int | None] | None],
]
Count = Callable[[str, str], None]


def config_of(source: SourceRow) -> WebhookSource:
    """The source's stored `webhook:` as the workspace model reads it (a small document:
    decoded per delivery, microseconds)."""
    return msgspec.convert(source.webhook, WebhookSource)


async def receive_webhook(
    scope: Any,
    receive: Any,
    send: Any,
    *,
    token: str,
    sources_by_key: Mapping[str, SourceRow],
    settings: Settings,
    accept: Accept,
    count: Count,
) -> int:
    """Answer one delivery; returns the status sent."""
    source = sources_by_key.get(token)
    if source is None or source.webhook is None:
        count("", "webhook_rejected:unknown_hook")
        await send_error(send, 404, "unknown_webhook", "no webhook source has this URL", [])
        return 404
    if not source.enabled:
        count(source.id, "webhook_rejected:source_disabled")
        await send_error(send, 403, "source_disabled", f"source {source.id!r} is disabled", [])
        return 403
    headers = {
        k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
    }
    try:
        body = await read_body(receive, settings.max_batch_bytes)
    except BodyError as exc:
        count(source.id, f"webhook_rejected:{exc.code}")
        await send_error(send, exc.status, exc.code, exc.message, [])
        return exc.status
    config = config_of(source)
    try:
        delivery = Delivery(body, headers, _public_url(scope, settings, headers),
                            headers.get("content-type", ""))  # fmt: skip
        signature = config.signature
        generic = Generic(**msgspec.structs.asdict(signature)) if signature else None
        verify(config.provider, delivery, config.secrets,
               tolerance_s=config.tolerance_s, generic=generic)  # fmt: skip
        payload = parse_body(body, delivery.content_type)
        kind, delivery_id = describe(config.provider, payload, headers, body)
        event = spec_event(config.provider, payload, headers, kind, delivery_id,
                           config.mappings, config.unmapped)  # fmt: skip
    except Rejected as exc:
        count(source.id, f"webhook_rejected:{exc.reason}")
        await send_error(send, exc.status, f"webhook_{exc.reason}", str(exc), [])
        return exc.status
    except SluiceError as exc:  # the source's mapping does not apply to this delivery
        count(source.id, "webhook_rejected:mapping_failed")
        await send_error(send, 400, "webhook_mapping_failed", str(exc)[:300], [])
        return 400
    except Exception as exc:  # a case the mapping step missed: this delivery only, never a 500
        count(source.id, "webhook_rejected:mapping_failed")
        log.warning("webhook of source %s could not be mapped: %s", source.id, type(exc).__name__)
        await send_error(send, 400, "webhook_mapping_failed", type(exc).__name__, [])
        return 400
    if event is None:
        count(source.id, f"webhook_dropped:{kind}"[:120])
        await send_success(send, [])
        return 200
    failure = await accept(
        source, event, scope, {k.encode(): v.encode() for k, v in headers.items()}
    )
    if failure is None:
        await send_success(send, [])
        return 200
    status, code, text, retry = failure
    await send_error(send, status, code, text, [], retry_after=retry)
    return status


def _public_url(scope: Any, settings: Settings, headers: Mapping[str, str]) -> str:
    """The URL the provider called (Twilio signs it): SLUICE_PUBLIC_URL's origin when set, as a
    proxy in front rewrites scheme and host; else as this request arrived."""
    path: bytes = scope.get("raw_path") or str(scope.get("path", "")).encode()
    query: bytes = scope.get("query_string", b"")
    target = path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
    if settings.public_url:
        return settings.public_url.rstrip("/") + target
    host = headers.get("host", "")
    return f"{scope.get('scheme', 'http')}://{host}{target}"
