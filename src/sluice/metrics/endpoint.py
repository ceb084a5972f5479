"""`GET /metrics`: this invocation's HTTP processes and the store's cluster view, in Prometheus's
text format, for the networks allowed (loopback by default) or a bearer token.

Why not open by default: the metrics name every source and destination of the workspace and
their volumes. Loopback suits a Prometheus (or agent) on the node itself; a remote scraper gets
an allowed network (`SLUICE_METRICS_ALLOW`) or a token (`SLUICE_METRICS_TOKEN`).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from sluice.collector.peer import client_ip, is_trusted, parse_networks
from sluice.collector.responses import Receive, Scope, Send, send_error
from sluice.config import Settings
from sluice.metrics.cluster import ClusterCollector
from sluice.metrics.process import ProcessMetrics, multiprocess_dir
from sluice.store.base import Store
from sluice.store.factory import open_store

log = logging.getLogger(__name__)
STORE_ERROR_LOG_EVERY_S = 60.0


class MetricsEndpoint:
    """What `/metrics` answers with; one per HTTP process."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.allowed = parse_networks(settings.metrics_allow)
        self.trusted = parse_networks(settings.trusted_proxies)
        self.token = (settings.metrics_token or "").encode()
        shared = multiprocess_dir()
        self.process_registry = None if shared is not None else CollectorRegistry()
        self.process = ProcessMetrics(self.process_registry)
        # SQLite: a connection of its own. The collector's serialises every read with the group
        # committer behind one lock, and a scrape's hundred small reads would queue behind
        # commits (and commits behind them); a WAL reader blocks no writer. PostgreSQL: a pool.
        self._own_store: Store | None = None

        def cluster() -> ClusterCollector:
            if settings.database_url:
                return ClusterCollector(store)
            self._own_store = open_store(settings)
            return ClusterCollector(self._own_store)

        self.cluster = _Guarded(cluster)

    def close(self) -> None:
        if self._own_store is not None:
            self._own_store.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, code, message = refusal
            await send_error(send, status, code, message, [])
            return
        body = await asyncio.to_thread(self.render)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", CONTENT_TYPE_LATEST.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _refusal(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str, str] | None:
        authorization = headers.get(b"authorization", b"")
        if authorization[:7].lower() == b"bearer ":
            if self.token and hmac.compare_digest(authorization[7:].strip(), self.token):
                return None
            return (401, "invalid_metrics_token", "the bearer token is not the metrics token")
        peer = scope.get("client")
        ip = client_ip(peer[0] if peer else None, headers.get(b"x-forwarded-for"), self.trusted)
        if is_trusted(ip, self.allowed):
            return None
        return (
            403,
            "metrics_forbidden",
            f"scrapes from {ip or 'an unknown address'} are not allowed: add the network to"
            " SLUICE_METRICS_ALLOW or send SLUICE_METRICS_TOKEN as a bearer token",
        )

    def render(self) -> bytes:
        """One scrape: every process's instruments (from the shared files) and the store's."""
        registry = CollectorRegistry(auto_describe=False)
        shared = multiprocess_dir()
        if shared is not None:
            MultiProcessCollector(registry, str(shared))  # type: ignore[no-untyped-call]
        else:
            assert self.process_registry is not None
            registry.register(_Of(self.process_registry))
        registry.register(self.cluster)
        return generate_latest(registry)


class _Of(Collector):
    """Another registry's metrics, as one collector of this scrape's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


class _Guarded(Collector):
    """The cluster view, or `sluice_metrics_store_up 0` when the store cannot be read: a scrape
    still gets this process's metrics and a value to alert on. Made at the first scrape (a
    process that is never scraped opens nothing)."""

    def __init__(self, make: Callable[[], ClusterCollector]) -> None:
        self._make = make
        self.cluster: ClusterCollector | None = None
        self._logged = -STORE_ERROR_LOG_EVERY_S

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("sluice_metrics_store_up", "1 when the scrape could read the store.")
        try:
            if self.cluster is None:
                self.cluster = self._make()
            families = list(self.cluster.collect())
        except Exception as exc:
            now = time.monotonic()
            if now - self._logged >= STORE_ERROR_LOG_EVERY_S:
                self._logged = now
                log.warning("/metrics: the store could not be read (logged once a minute): %s", exc)
            up.add_metric([], 0)
            return iter([up])
        up.add_metric([], 1)
        return iter([up, *families])
