"""The collector: Segment's Tracking API as a raw ASGI app, in front of the group committer.

Raw ASGI rather than a framework router because this is the hot path: one dict lookup routes a
request, and no per-request objects are built beyond what the work needs. `/healthz`,
`/readyz` (health.py) and `/metrics` (metrics/endpoint.py) are answered here too, outside the
UI's sign-in. Anything else that is not an ingest path goes to `fallback` (the admin API and
the UI).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from typing import Any

import msgspec
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
from sluice.collector.cors import cors_headers, send_preflight
from sluice.collector.health import ReadinessProbe
from sluice.collector.peer import client_ip, parse_networks
from sluice.collector.pixel import decode_pixel_query
from sluice.collector.ratelimit import SharedTokenBuckets
from sluice.collector.responses import (
    Headers,
    Receive,
    Scope,
    Send,
    send_error,
    send_json,
    send_pixel,
    send_success,
)
from sluice.collector.sanitize import clean_body
from sluice.collector.settings_endpoint import send_source_settings
from sluice.collector.webhooks import PREFIX as WEBHOOK_PREFIX
from sluice.collector.webhooks import receive_webhook
from sluice.collector.workspace_view import WorkspaceView
from sluice.config import Settings
from sluice.metrics.endpoint import MetricsEndpoint
from sluice.spec.calls import CALL_TYPES, SHORT_FORMS
from sluice.spec.normalize import make_envelope
from sluice.store.base import SourceRow, Store

log = logging.getLogger(__name__)
REFUSAL_LOG_EVERY_S = 60.0

ASGIApp = Any
CONFIG_POLL_S = 1.0
GC_YOUNG_THRESHOLD = 50_000
_SINGLE = "single"
_BATCH = "batch"
_encode = msgspec.json.encode

# path -> (kind, call type from the path)
ROUTES: dict[str, tuple[str, str | None]] = {}
for _call in CALL_TYPES:
    ROUTES[f"/v1/{_call}"] = (_SINGLE, _call)
for _short, _call in SHORT_FORMS.items():
    ROUTES[f"/v1/{_short}"] = (_SINGLE, _call)
for _path in ("/v1/batch", "/v1/import", "/v1/b"):
    ROUTES[_path] = (_BATCH, None)


class Collector:
    """State shared by every request of one collector process."""

    def __init__(self, settings: Settings, store: Store, fallback: ASGIApp = None) -> None:
        self.settings = settings
        self.store = store
        self.fallback = fallback
        self.committer: GroupCommitter | None = None
        self.workspace = WorkspaceView(store, settings.data_dir)
        self._buckets = (
            SharedTokenBuckets(
                settings.data_dir / "ratelimit.buckets",
                settings.rate_limit_per_source,
                settings.rate_limit_burst,
            )
            if settings.rate_limit_per_source > 0
            else None
        )
        self._trusted = parse_networks(settings.trusted_proxies)
        self._poller: asyncio.Task[None] | None = None
        self._refusals_logged: dict[str, float] = {}  # reason -> when last logged (monotonic)
        self.readiness = ReadinessProbe(settings, store)
        self.metrics = MetricsEndpoint(settings, store)

    # --- lifecycle -------------------------------------------------------------------------
    async def startup(self) -> None:
        # Ingest allocates many short-lived dicts and almost never makes reference cycles: the
        # default collector thresholds (700) ran young collections every few requests and cost
        # 20-30% of batch throughput here. Objects alive at start are frozen out of every pass.
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, 50, 100)
        self.committer = GroupCommitter(
            self.store, asyncio.get_running_loop(), metrics=self.metrics.process
        )
        self.committer.start()
        await asyncio.to_thread(self.workspace.reload)
        self._poller = asyncio.create_task(self._poll_config())

    async def shutdown(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self.committer is not None:
            await asyncio.to_thread(self.committer.stop)
        await asyncio.to_thread(self.store.close)
        await asyncio.to_thread(self.metrics.close)
        if self._buckets is not None:
            self._buckets.close()

    async def _poll_config(self) -> None:
        while True:
            await asyncio.sleep(CONFIG_POLL_S)
            try:
                await asyncio.to_thread(self.workspace.reload)
            except Exception:
                log.exception("reloading the workspace failed; keeping the previous one")

    # --- ASGI ------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif self.fallback is not None:
            await self.fallback(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("collector failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        route = ROUTES.get(path)
        # `/v1/spaces/` is the Profile API (the fallback's), not an ingest path.
        if route is None and (
            (not path.startswith("/v1/") and path != "/v1") or path.startswith("/v1/spaces/")
        ):
            if path == "/healthz":
                # Also the benchmark's no-op: same stack, reads the body, stores nothing.
                if method == "POST":
                    with contextlib.suppress(BodyError):
                        await read_body(receive, self.settings.max_batch_bytes)
                await send_json(send, 200, {"ok": True}, [])
            elif path == "/readyz":  # here, not in the UI: probes carry no session
                readiness = await self.readiness.readiness()
                status = 200 if readiness.ready else 503
                body = readiness.body(self.settings.role)
                await send_json(send, status, body, [(b"cache-control", b"no-store")])
            elif path == "/metrics" and method == "GET":
                await self.metrics(scope, receive, send)
            elif self.fallback is not None:
                await self.fallback(scope, receive, send)
            else:
                await send_error(send, 404, "not_found", f"no such path: {path}", [])
            return
        headers = dict(scope["headers"])
        cors = cors_headers(headers.get(b"origin"))
        if method == "OPTIONS":
            await send_preflight(send, headers, cors)
        elif route is not None and method == "POST":
            started = time.perf_counter()
            status = await self._ingest(scope, receive, send, headers, cors, route)
            metrics = self.metrics.process
            metrics.ingest_seconds.labels(route[0]).observe(time.perf_counter() - started)
            metrics.responses.labels(status).inc()
        elif path.startswith("/v1/pixel/") and method in ("GET", "HEAD"):
            await self._pixel(scope, send, headers, cors, path[len("/v1/pixel/") :])
        elif path.startswith(WEBHOOK_PREFIX) and method == "POST":
            await receive_webhook(
                scope, receive, send, token=path[len(WEBHOOK_PREFIX) :],
                sources_by_key=self.workspace.sources_by_key, settings=self.settings,
                accept=self.accept_webhook_event, count=self._count,
            )  # fmt: skip
        elif path == "/v1/m" and method == "POST":
            with contextlib.suppress(BodyError):
                await read_body(receive, self.settings.max_batch_bytes)
            await send_success(send, cors)
        elif path.startswith("/v1/projects/") and path.endswith("/settings") and method == "GET":
            key = path[len("/v1/projects/") : -9]
            await send_source_settings(send, scope, headers, cors, key, self.workspace,
                                       self.settings.public_url, self._trusted)  # fmt: skip
        elif route is not None:
            await send_error(send, 405, "method_not_allowed", f"{path} takes POST", cors)
        else:
            await send_error(send, 404, "not_found", f"no such path: {path}", cors)

    # --- ingest ----------------------------------------------------------------------------
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


def create_app(
    settings: Settings, store: Store | None = None, fallback: ASGIApp = None
) -> Collector:
    if store is None:
        from sluice.store.factory import open_store

        store = open_store(settings)
    return Collector(settings, store, fallback)


def app_factory() -> Collector:
    """Entry point for the HTTP server's workers: settings come from `SLUICE_*` variables.

    Every path that is not the Tracking API goes to the admin API and the web UI.
    """
    from sluice.config import load_settings
    from sluice.logs import configure as configure_logging
    from sluice.store.factory import open_store
    from sluice.web import build_web

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format, "http")
    store = open_store(settings)
    app = create_app(settings, store)
    # The web (Profile API) counts in the collector's instruments: one set per process.
    app.fallback = build_web(store, settings, app.metrics.process)
    return app
