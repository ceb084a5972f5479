"""Group commit: many concurrent requests share one durable transaction.

Requests hand their events to `submit` and await the returned future; one writer thread takes
everything queued since its last commit, writes it in one transaction, and only then resolves the
futures, so a 200 is never sent before the data is on disk. Under load, groups grow by themselves
(whatever arrived while the previous commit ran), which is what makes durability cheap.

A group that the store refuses for what one request holds (not for being unreachable) is
committed again request by request, and a refused request event by event: the refused events
are kept as rejections, so one client's input never fails another's request, nor its own
neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from sluice.metrics.process import ProcessMetrics
from sluice.spec.calls import RejectReason
from sluice.store.base import AppendBatch, EventStore
from sluice.store.base_event_store import Rejection
from sluice.store.errors import StoreUnavailable

log = logging.getLogger(__name__)

DEFAULT_MAX_GROUP_EVENTS = 20_000
STORE_REFUSED = RejectReason.STORE_REFUSED.value
# The writer wakes this often when idle, so counters held back by the store reach disk.
COUNTER_FLUSH_S = 0.25
# How long the writer waits for more requests before committing a group. Zero: groups form from
# whatever queued while the previous commit ran; longer waits measured no clear gain here.
DEFAULT_MAX_WAIT_S = 0.0


@dataclass(slots=True)
class _Request:
    batch: AppendBatch
    future: asyncio.Future[None] | None
    size: int = field(default=0)


class GroupCommitter:
    """One writer thread in front of the store."""

    def __init__(
        self,
        store: EventStore,
        loop: asyncio.AbstractEventLoop,
        max_group_events: int = DEFAULT_MAX_GROUP_EVENTS,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        metrics: ProcessMetrics | None = None,
    ) -> None:
        self._max_wait_s = max_wait_s
        self._metrics = metrics
        self._store = store
        self._loop = loop
        self._max_group = max_group_events
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._loose_counters: dict[tuple[str, str], int] = {}
        self._thread = threading.Thread(target=self._run, name="sluice-committer", daemon=True)
        self.commits = 0

    def start(self) -> None:
        self._thread.start()

    @property
    def pending_events(self) -> int:
        """Events handed in and not yet committed (what overload protection looks at)."""
        return self._pending

    def submit(self, batch: AppendBatch) -> asyncio.Future[None]:
        """Queue a batch; the future resolves once it is committed (or fails with the error)."""
        future: asyncio.Future[None] = self._loop.create_future()
        size = len(batch.events) + len(batch.rejections)
        with self._pending_lock:
            self._pending += size
        self._queue.put(_Request(batch, future, size))
        return future

    def count(self, source_id: str, name: str, n: int = 1) -> None:
        """A counter increment with no events attached; it rides along with the next commit."""
        with self._pending_lock:
            key = (source_id, name)
            self._loose_counters[key] = self._loose_counters.get(key, 0) + n

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            self._store.warm_up()  # requests queue meanwhile; other processes' writes do not
        except Exception:
            log.exception("could not load the dedupe window ahead; the first append will")
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=COUNTER_FLUSH_S)
            except queue.Empty:
                first = _Request(AppendBatch(), None)  # time to flush loose counters
            group: list[_Request] = []
            events = 0
            deadline = time.monotonic() + self._max_wait_s
            item: _Request | None = first
            while True:
                if item is None:
                    stopping = True
                    break
                group.append(item)
                events += item.size
                if events >= self._max_group:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    wait = deadline - time.monotonic()
                    if wait <= 0:
                        break
                    try:
                        item = self._queue.get(timeout=wait)
                    except queue.Empty:
                        break
            self._commit(group)

    def _commit(self, group: list[_Request]) -> None:
        merged = AppendBatch()
        for request in group:
            merged.events.extend(request.batch.events)
            merged.rejections.extend(request.batch.rejections)
            for key, value in request.batch.counters.items():
                merged.counters[key] = merged.counters.get(key, 0) + value
        with self._pending_lock:
            loose, self._loose_counters = self._loose_counters, {}
        for key, value in loose.items():
            merged.counters[key] = merged.counters.get(key, 0) + value
        errors: dict[int, BaseException] = {}
        metrics = self._metrics
        try:
            started = time.perf_counter()
            self._store.append(merged)
            self.commits += 1
            if metrics is not None and merged.events:
                metrics.commit_seconds.observe(time.perf_counter() - started)
                metrics.commit_events.observe(len(merged.events))
        except StoreUnavailable as exc:  # answered as 503 to every request in the group
            if metrics is not None:
                metrics.commit_failures.inc()
            log.error("group commit of %d events failed: %s", len(merged.events), exc)
            errors = {id(r): exc for r in group}
            self._keep_counters(loose)
        except Exception:
            # Something in the group makes the store refuse it: commit request by request (and
            # a failing request event by event), so no other client pays for it.
            log.exception("group commit of %d events failed; isolating", len(merged.events))
            if metrics is not None:
                metrics.commit_failures.inc()
            self._keep_counters(loose)
            for request in group:
                error = self._commit_alone(request)
                if error is not None:
                    errors[id(request)] = error
        with self._pending_lock:
            self._pending -= sum(r.size for r in group)
        outcomes = [(r.future, errors.get(id(r))) for r in group if r.future is not None]
        if outcomes:
            with contextlib.suppress(RuntimeError):  # loop closed during shutdown
                self._loop.call_soon_threadsafe(_resolve, outcomes)

    def _keep_counters(self, loose: dict[tuple[str, str], int]) -> None:
        with self._pending_lock:
            for key, value in loose.items():
                self._loose_counters[key] = self._loose_counters.get(key, 0) + value

    def _commit_alone(self, request: _Request) -> BaseException | None:
        """Commit one request on its own; if the store refuses it, commit its events one by one
        and keep each it refuses as a rejection (`store_refused`), so the request succeeds."""
        try:
            self._store.append(request.batch)
            self.commits += 1
            return None
        except StoreUnavailable as exc:
            return exc
        except Exception:
            pass
        batch = request.batch
        kept = AppendBatch(rejections=list(batch.rejections), counters=dict(batch.counters))
        for event in batch.events:
            try:
                self._store.append(AppendBatch(events=[event]))
                continue
            except StoreUnavailable as exc:
                return exc
            except Exception as exc:
                detail = f"the event log refused it: {type(exc).__name__}: {exc}"[:500]
                log.warning("event %r of source %s refused by the store: %s",
                            event.message_id, event.source_id, exc)  # fmt: skip
            kept.rejections.append(
                Rejection(event.source_id, STORE_REFUSED, detail, event.received_at_ms,
                          event.payload)
            )  # fmt: skip
            kept.count(event.source_id, f"rejected:{STORE_REFUSED}")
        try:
            self._store.append(kept)
        except Exception as exc:
            return exc
        return None


def _resolve(outcomes: list[tuple[asyncio.Future[None], BaseException | None]]) -> None:
    for future, error in outcomes:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
