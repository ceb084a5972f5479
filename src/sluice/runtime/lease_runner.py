"""A lane process's units, run by lease and fair share with the other processes of its lane.

Several processes may run one lane (nodes on one PostgreSQL, or `--role worker` processes on one
machine): each unit is run only while this process holds its lease (store.claim_lease), renewed
every third of the lease period. A process that dies stops renewing; its leases expire (or its
supervisor frees them at once) and the other processes' next claims take its units over, which
resume from their committed cursors. Units are shared out evenly within a lane: each process
holds at most ceil(units / live processes of the lane) and gives extra ones up, so a process
that joins gets its share.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import time

from sluice.runtime.self_report import SelfReport
from sluice.runtime.units import Catalogue, Unit, supervised
from sluice.store.base import Store

log = logging.getLogger(__name__)
CONFIG_POLL_S = 1.0
WORKER_LEASE_PREFIX = "worker:"  # + lane + ":" + holder: a live process of that lane


def new_holder_id() -> str:
    """`host:pid:random`: unique, and says where to look for the process."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def worker_lease(lane: str, holder: str) -> str:
    return f"{WORKER_LEASE_PREFIX}{lane}:{holder}"


class LeaseRunner:
    def __init__(
        self,
        store: Store,
        catalogue: Catalogue,
        *,
        lease_s: float,
        holder: str | None = None,
        report: SelfReport | None = None,
    ) -> None:
        self.store = store
        self.catalogue = catalogue
        self.lane = catalogue.lane
        self.holder = holder or new_holder_id()
        self.lease_s = lease_s
        self.report = report
        self.running: dict[str, tuple[Unit, asyncio.Task[None]]] = {}
        self._units: dict[str, Unit] = {}
        self._renewed_at = -math.inf

    async def run(self) -> None:
        async with self.catalogue.resources():
            try:
                while True:
                    await self.tick()
                    await asyncio.sleep(CONFIG_POLL_S)
            finally:
                await self.stop()

    async def stop(self) -> None:
        """Stop every unit and give its lease up, so another process takes it over at once."""
        for name in list(self.running):
            await self._stop_unit(name)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.store.forget_process, self.holder)

    @property
    def _own_lease(self) -> str:
        return worker_lease(self.lane, self.holder)

    # --- one round -------------------------------------------------------------------------
    async def tick(self) -> None:
        """Renew leases when due, follow the workspace, and claim or give up units."""
        now = time.monotonic()
        if now - self._renewed_at >= self.lease_s / 3:
            self._renewed_at = now
            await asyncio.to_thread(self._claim, self._own_lease)
            for name in list(self.running):
                if not await asyncio.to_thread(self._claim, name):
                    log.warning("lost the lease of %s to another worker; stopping it", name)
                    await self._stop_unit(name, release=False)
            if self.report is not None:
                await asyncio.to_thread(self.store.report_process, self.report.now())
        units = await self.catalogue.refresh()
        if units is not None:
            self._units = units
        for name, (unit, _) in list(self.running.items()):
            wanted = self._units.get(name)
            if wanted is None or wanted.key != unit.key:
                log.info("%s: %s", name, "configuration changed, restarting it" if wanted
                         else "no longer in the workspace, stopping it")  # fmt: skip
                await self._stop_unit(name, release=wanted is None)
                if wanted is not None:
                    self._start(wanted)  # still holds the lease: restart with the new config
        await self.catalogue.upkeep(list(self.running))
        target = await self._fair_share()
        if len(self.running) > target:
            # Give one unit up per round: another process below its share claims it.
            name = sorted(self.running)[-1]
            log.info("%s: given up to another %s process (fair share: %d)", name, self.lane, target)
            await self._stop_unit(name)
            return
        for name in self._claim_order():
            if len(self.running) >= target:
                break
            if name not in self.running and await asyncio.to_thread(self._claim, name):
                log.info("%s: lease taken, running it", name)
                self._start(self._units[name])

    def _claim(self, name: str) -> bool:
        return self.store.claim_lease(name, self.holder, self.lease_s)

    async def _fair_share(self) -> int:
        """ceil(units / live processes of this lane): how many units this process should hold."""
        leases = await asyncio.to_thread(self.store.leases)
        # Expiry is by the store's clock; a few seconds of skew only delays a rebalance.
        now_ms = int(time.time() * 1000)
        prefix = worker_lease(self.lane, "")
        live = {
            lease.holder
            for lease in leases
            if lease.name.startswith(prefix) and lease.expires_at_ms > now_ms
        }
        live.add(self.holder)
        return math.ceil(len(self._units) / len(live)) if self._units else 0

    def _claim_order(self) -> list[str]:
        """Units in an order of this process's own, so that processes starting together spread."""
        names = sorted(self._units)
        if not names:
            return names
        shift = sum(self.holder.encode()) % len(names)
        return names[shift:] + names[:shift]

    def _start(self, unit: Unit) -> None:
        self.running[unit.name] = (unit, asyncio.create_task(supervised(unit.name, unit.job)))

    async def _stop_unit(self, name: str, *, release: bool = True) -> None:
        _, task = self.running.pop(name)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        if release:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.store.release_lease, name, self.holder)
