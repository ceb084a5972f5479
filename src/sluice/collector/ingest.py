"""The collector's ingest: the Tracking API's paths, and a request's items read, checked against
the source's write key and limits, and handed to the group committer.

Mixed into `Collector` (`app.py`), which keeps the process's lifecycle and routes each request:
this is the work of an ingest request once routed, kept apart from the routing.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from msgspec import Raw

from sluice.collector.auth import key_from_body, key_from_header
from sluice.collector.batch import build_batch, text_value
from sluice.collector.body import (
    BodyError,
    decode_item,
    inflate,
    parse_batch,
    parse_message,
    read_body,
)
from sluice.collector.committer import GroupCommitter
from sluice.collector.peer import Network, client_ip
from sluice.collector.pixel import decode_pixel_query
from sluice.collector.ratelimit import SharedTokenBuckets
from sluice.collector.responses import (
    Headers,
    Receive,
    Scope,
    Send,
    send_error,
    send_pixel,
    send_success,
)
from sluice.collector.sanitize import clean_body
from sluice.collector.workspace_view import WorkspaceView
from sluice.config import Settings
from sluice.spec.calls import CALL_TYPES, SHORT_FORMS
from sluice.spec.normalize import make_envelope
from sluice.store.base_event_store import SourceRow

log = logging.getLogger("sluice.collector.app")  # the collector's logger, as batch.py's
REFUSAL_LOG_EVERY_S = 60.0

_SINGLE = "single"
_BATCH = "batch"

# path -> (kind, call type from the path)
ROUTES: dict[str, tuple[str, str | None]] = {}
for _call in CALL_TYPES:
    ROUTES[f"/v1/{_call}"] = (_SINGLE, _call)
for _short, _call in SHORT_FORMS.items():
    ROUTES[f"/v1/{_short}"] = (_SINGLE, _call)
for _path in ("/v1/batch", "/v1/import", "/v1/b"):
    ROUTES[_path] = (_BATCH, None)


class CollectorIngest:
    """Mixed into `Collector`: uses its settings, workspace view, committer (None before
    startup), rate limits (None when off), trusted proxies and refusal log times."""

    settings: Settings
    workspace: WorkspaceView
    committer: GroupCommitter | None
    _buckets: SharedTokenBuckets | None
    _trusted: tuple[Network, ...]
    _refusals_logged: dict[str, float]

    async def _ingest(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[bytes, bytes],
        cors: Headers,
        route: tuple[str, str | None],
    ) -> int:
        """Answer one Tracking API request; returns the HTTP status sent (for metrics)."""
        kind, path_type = route
        settings = self.settings
        limit = settings.max_batch_bytes if kind == _BATCH else settings.max_message_bytes
        try:
            raw = await read_body(receive, limit)
            body = inflate(raw, headers.get(b"content-encoding", b"").decode("latin-1"), limit)
            body = clean_body(body)
            if kind == _BATCH:
                envelope = parse_batch(body)
                raws: list[Raw] | None = envelope.batch
                items: list[dict[str, Any] | None] = [decode_item(r) for r in envelope.batch]
                body_key = envelope.writeKey
            else:
                message = parse_message(body)
                items = [message]
                raws = [Raw(body)]
                body_key = message.get("writeKey")
        except BodyError as exc:
            self._count_refused_request(headers, exc.code, exc.message)
            await send_error(send, exc.status, exc.code, exc.message, cors)
            return exc.status
        key = text_value(body_key) or key_from_header(headers.get(b"authorization"))
        if key is None and items and items[0] is not None:
            key = text_value(items[0].get("writeKey"))
        if kind == _BATCH:
            context = envelope.context if isinstance(envelope.context, dict) else None
            integrations = envelope.integrations
            if not isinstance(integrations, dict):
                integrations = None
            fields = (envelope.sentAt, context, integrations)
        else:
            fields = (None, None, None)
        failure = await self._accept(scope, headers, key, fields, items, path_type, raws)
        if failure is None:
            await send_success(send, cors)
            return 200
        status, code, text, retry = failure
        await send_error(send, status, code, text, cors, retry_after=retry)
        return status

    async def _accept(
        self,
        scope: Scope,
        headers: dict[bytes, bytes],
        key: str | None,
        envelope_fields: tuple[Any, dict[str, Any] | None, dict[str, Any] | None],
        items: list[dict[str, Any] | None],
        path_type: str | None,
        raws: list[Raw] | None = None,
    ) -> tuple[int, str, str, int | None] | None:
        """Store the items durably; None on success, else the error response's arguments."""
        committer = self.committer
        assert committer is not None, "collector used before startup"
        source = self.workspace.sources_by_key.get(key) if key else None
        if source is None:
            committer.count("", "unauthorized")
            message = "no write key given" if key is None else "unknown write key"
            return (401, "invalid_write_key", message, None)
        if not source.enabled:
            committer.count(source.id, "unauthorized")
            return (401, "source_disabled", f"source {source.id!r} is disabled", None)
        if source.webhook is not None:  # its keys are hook URLs, not Tracking API keys
            committer.count(source.id, "unauthorized")
            text = f"source {source.id!r} takes webhooks only, at POST /v1/hooks/<key>"
            return (401, "webhook_source", text, None)
        if committer.pending_events > self.settings.max_pending_events:
            committer.count(source.id, "throttled", len(items))
            return (429, "overloaded", "the server is busy; retry after the given delay", 1)
        if self._buckets is not None:
            wait = self._buckets.take(source.id, len(items))
            if wait:
                committer.count(source.id, "throttled", len(items))
                return (429, "rate_limited", f"source {source.id!r} is over its rate limit", wait)

        peer = scope.get("client")
        ip = client_ip(peer[0] if peer else None, headers.get(b"x-forwarded-for"), self._trusted)
        now_ms = int(time.time() * 1000)
        sent_at, context, integrations = envelope_fields
        envelope = make_envelope(now_ms, ip, sent_at, context, integrations)
        batch = build_batch(
            self.settings,
            self.workspace.sources_by_key,
            source,
            items,
            envelope,
            path_type,
            raws,
            self.workspace.plans,
            self.workspace.suppressed,
            self.workspace.stages,
        )
        try:
            await committer.submit(batch)
        except Exception:
            return (503, "store_unavailable", "the event log could not commit; retry", 1)
        return None

    async def accept_webhook_event(
        self,
        source: SourceRow,
        event: dict[str, Any],
        scope: Scope,
        headers: dict[bytes, bytes],
    ) -> tuple[int, str, str, int | None] | None:
        """Store one event a webhook delivery made (collector/webhooks.py): normalised and
        committed as any event; None on success, else the error response's arguments."""
        committer = self.committer
        assert committer is not None, "collector used before startup"
        if committer.pending_events > self.settings.max_pending_events:
            committer.count(source.id, "throttled")
            return (429, "overloaded", "the server is busy; retry after the given delay", 1)
        peer = scope.get("client")
        ip = client_ip(peer[0] if peer else None, headers.get(b"x-forwarded-for"), self._trusted)
        envelope = make_envelope(int(time.time() * 1000), ip)
        batch = build_batch(
            self.settings,
            self.workspace.sources_by_key,
            source,
            [event],
            envelope,
            None,
            None,
            self.workspace.plans,
            self.workspace.suppressed,
            self.workspace.stages,
        )
        if batch.rejections:  # the mapping made something the Spec refuses
            rejection = batch.rejections[0]
            await committer.submit(batch)  # stored as a rejection, visible in the debugger
            return (400, "webhook_invalid_event", rejection.detail, None)
        try:
            await committer.submit(batch)
        except Exception:
            return (503, "store_unavailable", "the event log could not commit; retry", 1)
        return None

    def _count(self, source_id: str, name: str) -> None:
        if self.committer is not None:
            self.committer.count(source_id, name)

    def _count_refused_request(self, headers: dict[bytes, bytes], code: str, message: str) -> None:
        """A whole request refused (bad body, too large, ...): counted per source (by its Basic
        auth key when it has one, else under no source) and logged once a minute per reason."""
        key = key_from_header(headers.get(b"authorization"))
        source = self.workspace.sources_by_key.get(key) if key else None
        if self.committer is not None:
            self.committer.count(source.id if source else "", f"request_rejected:{code}")
        now = time.monotonic()
        if now - self._refusals_logged.get(code, -REFUSAL_LOG_EVERY_S) >= REFUSAL_LOG_EVERY_S:
            self._refusals_logged[code] = now
            log.warning(
                "request refused (%s) from source %s: %s (logged once a minute per reason;"
                " counted as request_rejected:%s)",
                code, source.id if source else "(unknown)", message, code,
            )  # fmt: skip

    # --- pixel ----------------------------------------------------------------
    async def _pixel(
        self, scope: Scope, send: Send, headers: dict[bytes, bytes], cors: Headers, call: str
    ) -> None:
        try:
            message = decode_pixel_query(scope.get("query_string", b""))
            if message is not None and call in CALL_TYPES:
                key = key_from_body(message)
                await self._accept(scope, headers, key, (None, None, None), [message], call)
        except Exception:
            log.exception("pixel request failed")
        await send_pixel(send, cors)
