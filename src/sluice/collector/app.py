"""The collector: Segment's Tracking API as a raw ASGI app, in front of the group committer.

Raw ASGI rather than a framework router because this is the hot path: one dict lookup routes a
request, and no per-request objects are built beyond what the work needs. `/healthz`,
`/readyz` (health.py) and `/metrics` (metrics/endpoint.py) are answered here too, outside the
UI's sign-in. Anything else that is not an ingest path goes to `fallback` (the admin API and
the UI). What an ingest request does once routed (read, check, commit) is in `ingest.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from typing import Any

from sluice.collector.body import BodyError, read_body
from sluice.collector.committer import GroupCommitter
from sluice.collector.cors import cors_headers, send_preflight
from sluice.collector.health import ReadinessProbe
from sluice.collector.ingest import ROUTES, CollectorIngest
from sluice.collector.peer import parse_networks
from sluice.collector.ratelimit import SharedTokenBuckets
from sluice.collector.responses import Receive, Scope, Send, send_error, send_json, send_success
from sluice.collector.settings_endpoint import send_source_settings
from sluice.collector.webhooks import PREFIX as WEBHOOK_PREFIX
from sluice.collector.webhooks import receive_webhook
from sluice.collector.workspace_view import WorkspaceView
from sluice.config import Settings
from sluice.metrics.endpoint import MetricsEndpoint
from sluice.store.base import Store

log = logging.getLogger(__name__)

ASGIApp = Any
CONFIG_POLL_S = 1.0
GC_YOUNG_THRESHOLD = 50_000


class Collector(CollectorIngest):
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
