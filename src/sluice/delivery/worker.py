"""The worker process: every consumer of the log that is not the collector.

A consumer per enabled destination (or per partition of one), the archive writer, the warehouse
loaders and log retention. Several workers may share one store (nodes on one PostgreSQL, or
processes on one machine): each consumer is a *unit* that a worker runs only while it holds the
unit's lease (store.claim_lease), renewed every third of the lease period. A worker that dies
stops renewing; its leases expire and the other workers' next claims take its units over, which
resume from their committed cursors. Units are shared out evenly: each worker holds at most
ceil(units / live workers) and gives extra ones up, so a worker that joins gets its share.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import math
import os
import secrets
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from sluice.config import DEFAULT_LEASE_S, Settings
from sluice.delivery.config import DestinationConfig, DestinationConfigError, compile_destination
from sluice.delivery.consumer import Consumer
from sluice.delivery.filters import filter_errors
from sluice.delivery.partitions import Partition, cursor_name
from sluice.delivery.sender import new_session
from sluice.errors import SluiceError
from sluice.store.base import Store
from sluice.store.factory import open_store

log = logging.getLogger(__name__)
CONFIG_POLL_S = 1.0
CLEANUP_S = 60.0  # how often retry sets of deleted destinations are looked for
WORKER_LEASE_PREFIX = "worker:"
PR_SET_NAME = 15

Job = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class Unit:
    """One consumer a worker may run: its lease name, what defines it, and how to run it."""

    name: str
    key: bytes  # its configuration: a change restarts it
    job: Job


def new_holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        *,
        holder: str | None = None,
        lease_s: float | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.holder = holder or new_holder_id()
        self.lease_s = lease_s or (settings.lease_s if settings else DEFAULT_LEASE_S)
        self.running: dict[str, tuple[Unit, asyncio.Task[None]]] = {}
        self.errors: dict[str, str] = {}
        self._version = -1
        self._units: dict[str, Unit] = {}
        self._renewed_at = 0.0
        self._session: aiohttp.ClientSession | None = None
        self._next_cleanup = 0.0
        self._destinations: set[str] = set()

    async def run(self) -> None:
        async with new_session() as session:
            self._session = session
            try:
                while True:
                    await self.tick()
                    await asyncio.sleep(CONFIG_POLL_S)
            finally:
                await self.stop()

    async def stop(self) -> None:
        """Stop every unit and give its lease up, so another worker takes it over at once."""
        for name in list(self.running):
            await self._stop_unit(name)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.store.release_lease, self._worker_lease, self.holder)

    @property
    def _worker_lease(self) -> str:
        return WORKER_LEASE_PREFIX + self.holder

    # --- one round -------------------------------------------------------------------------
    async def tick(self) -> None:
        """Renew leases when due, follow the workspace, and claim or give up units."""
        now = time.monotonic()
        if now - self._renewed_at >= self.lease_s / 3:
            self._renewed_at = now
            await asyncio.to_thread(self._claim, self._worker_lease)
            for name in list(self.running):
                if not await asyncio.to_thread(self._claim, name):
                    log.warning("lost the lease of %s to another worker; stopping it", name)
                    await self._stop_unit(name, release=False)
        await self._refresh_units()
        for name, (unit, _) in list(self.running.items()):
            wanted = self._units.get(name)
            if wanted is None or wanted.key != unit.key:
                await self._stop_unit(name, release=wanted is None)
                if wanted is not None:
                    self._start(wanted)  # still holds the lease: restart with the new config
        if time.monotonic() >= self._next_cleanup:
            self._next_cleanup = time.monotonic() + CLEANUP_S
            await self._drop_deleted_retry_sets()
        target = await self._fair_share()
        if len(self.running) > target:
            # Give one unit up per round: another worker below its share claims it.
            await self._stop_unit(sorted(self.running)[-1])
            return
        for name in self._claim_order():
            if len(self.running) >= target:
                break
            if name not in self.running and await asyncio.to_thread(self._claim, name):
                self._start(self._units[name])

    def _claim(self, name: str) -> bool:
        return self.store.claim_lease(name, self.holder, self.lease_s)

    async def _fair_share(self) -> int:
        """ceil(units / live workers): how many units this worker should hold."""
        leases = await asyncio.to_thread(self.store.leases)
        # Expiry is by the store's clock; a few seconds of skew only delays a rebalance.
        now_ms = int(time.time() * 1000)
        live = {
            lease.holder
            for lease in leases
            if lease.name.startswith(WORKER_LEASE_PREFIX) and lease.expires_at_ms > now_ms
        }
        live.add(self.holder)
        return math.ceil(len(self._units) / len(live)) if self._units else 0

    def _claim_order(self) -> list[str]:
        """Units in an order of this worker's own, so that workers starting together spread."""
        names = sorted(self._units)
        if not names:
            return names
        shift = sum(self.holder.encode()) % len(names)
        return names[shift:] + names[:shift]

    def _start(self, unit: Unit) -> None:
        self.running[unit.name] = (unit, asyncio.create_task(_supervised(unit.name, unit.job)))

    async def _stop_unit(self, name: str, *, release: bool = True) -> None:
        _, task = self.running.pop(name)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        if release:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.store.release_lease, name, self.holder)

    # --- what there is to run ----------------------------------------------------------------
    async def _refresh_units(self) -> None:
        version = await asyncio.to_thread(self.store.config_version)
        if version == self._version:
            return
        self._version = version
        docs = await asyncio.to_thread(self.store.list_config, "destination")
        if self._destinations - {obj.id for obj in docs}:
            self._next_cleanup = 0.0  # a destination was deleted: drop its retry set soon
        self._destinations = {obj.id for obj in docs}
        units = {u.name: u for u in self._background_units()}
        for obj in docs:
            try:
                config = compile_destination(obj.body)
            except (DestinationConfigError, SluiceError) as exc:
                self.errors[obj.id] = str(exc)
                log.error("destination %s is not delivered: %s", obj.id, exc)
                continue
            dropping = "; ".join(filter_errors(config.filters))
            if dropping:  # stored before filters were checked: it drops every event
                if self.errors.get(obj.id) != dropping:  # once, not at every config change
                    log.error("destination %s drops every event: %s", obj.id, dropping)
                self.errors[obj.id] = dropping
            else:
                self.errors.pop(obj.id, None)
            if not config.enabled:
                continue
            n = config.options.partitions
            for partition in [None] if n == 1 else [(k, n) for k in range(n)]:
                unit = self._destination_unit(config, obj.body, partition)
                units[unit.name] = unit
        self._units = units

    async def _drop_deleted_retry_sets(self) -> None:
        """A deleted destination's retry set goes once its consumer is gone (never before: it
        holds events that were not delivered)."""
        holding = await asyncio.to_thread(self.store.retry_destinations)
        deleted = [d for d in holding if d not in self._destinations]
        for dest in deleted:
            prefix = cursor_name(dest)
            if any(n == prefix or n.startswith(prefix + "#") for n in self.running):
                continue
            dropped = await asyncio.to_thread(self.store.drop_retry_set, dest)
            if dropped:
                log.warning("dropped %d retrying events of deleted destination %s", dropped, dest)

    def _destination_unit(
        self, config: DestinationConfig, body: bytes, partition: Partition | None
    ) -> Unit:
        async def job() -> None:
            assert self._session is not None
            await Consumer(config, self.store, self._session, partition=partition).run()

        return Unit(cursor_name(config.id, partition), body, job)

    def _background_units(self) -> list[Unit]:
        """The consumers that are not destinations: the archive, warehouses, retention."""
        settings = self.settings
        if settings is None:
            return []
        from sluice.delivery.retention import run_retention
        from sluice.warehouse.loader import run_warehouses

        store = self.store
        return [
            # Its own store connection: its large reads would hold the shared one's lock.
            Unit("archive", b"", lambda: _archive(settings)),
            Unit("warehouses", b"", lambda: run_warehouses(settings, store)),
            Unit("retention", b"", lambda: run_retention(settings, store)),
        ]


def _name_process(name: bytes) -> None:
    """Name the process as `ps`/`top` show it (Linux), to tell the worker from HTTP workers."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_NAME, name, 0, 0, 0)


async def _archive(settings: Settings) -> None:
    from sluice.archive.writer import ArchiveWriter

    store = open_store(settings)
    try:
        await ArchiveWriter(settings, store).run()
    finally:
        store.close()


async def _supervised(name: str, job: Job) -> None:
    """Run `job` again a second after it fails: its position is durable, nothing is skipped."""
    while True:
        try:
            await job()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; restarting it in a second", name)
            await asyncio.sleep(1.0)


def run_worker(settings: Settings) -> None:
    """Process entry point (`sluice serve` starts it next to the HTTP workers)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    _name_process(b"sluice-worker")
    store = open_store(settings)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await Worker(store, settings).run()

    try:
        asyncio.run(main())
    finally:
        store.close()
