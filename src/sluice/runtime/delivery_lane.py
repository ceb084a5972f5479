"""The delivery lane: a consumer per enabled destination (or per partition of one).

Its process does nothing else, so its latency depends on the destinations alone: the batch lane's
loads run elsewhere (runtime/batch_lane.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Collection

import aiohttp

from sluice.bridge import location
from sluice.bridge.destination import BridgedDestination
from sluice.delivery.config import DestinationConfig, DestinationConfigError, compile_destination
from sluice.delivery.consumer import Consumer
from sluice.delivery.filters import filter_errors
from sluice.delivery.partitions import Partition, cursor_name
from sluice.delivery.sender import new_session
from sluice.devicemode import is_device_mode
from sluice.errors import SluiceError
from sluice.runtime.units import Unit
from sluice.store.base import Store
from sluice.transform.stages import destination_stages

log = logging.getLogger(__name__)
DELIVERY = "delivery"
CLEANUP_S = 60.0  # how often retry sets of deleted destinations are looked for
BRIDGE_REPORT_S = 10.0  # how often the bridge's sidecar state is written for status and /readyz


class DestinationCatalogue:
    """The destinations of the workspace, followed by its config version."""

    lane = DELIVERY

    def __init__(self, store: Store) -> None:
        self.store = store
        self.errors: dict[str, str] = {}  # destination id -> why it is not delivered as it is
        self._version = -1
        self._destinations: set[str] = set()
        self._session: aiohttp.ClientSession | None = None
        self._next_cleanup = 0.0
        self._next_bridge_report = 0.0
        self._bridge_report_failing = False

    @contextlib.asynccontextmanager
    async def resources(self) -> AsyncIterator[None]:
        async with new_session() as session:
            self._session = session
            try:
                yield
            finally:
                self._session = None
                if location.report() is not None:
                    await location.stop_sidecar()  # Segment's destinations' Node
                    with contextlib.suppress(Exception):
                        await asyncio.to_thread(
                            self.store.forget_unit_stats, location.report_unit()
                        )

    async def refresh(self) -> dict[str, Unit] | None:
        version = await asyncio.to_thread(self.store.config_version)
        if version == self._version:
            return None
        self._version = version
        docs = await asyncio.to_thread(self.store.list_config, "destination")
        if self._destinations - {obj.id for obj in docs}:
            self._next_cleanup = 0.0  # a destination was deleted: drop its retry set soon
        self._destinations = {obj.id for obj in docs}
        units: dict[str, Unit] = {}
        stages = await asyncio.to_thread(destination_stages, self.store)  # transform/stages.py
        for obj in docs:
            if is_device_mode(obj.body):
                continue  # runs in the page (devicemode/)
            try:
                stage = stages.get(obj.id)
                config = compile_destination(obj.body, stage)
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
                key = obj.body if stage is None else obj.body + stage.key  # a change restarts it
                unit = self._unit(config, key, partition)
                units[unit.name] = unit
        log.info("workspace version %d: %d destination consumer(s)", version, len(units))
        return units

    async def upkeep(self, running: Collection[str]) -> None:
        await self._report_bridge()
        if time.monotonic() < self._next_cleanup:
            return
        self._next_cleanup = time.monotonic() + CLEANUP_S
        await self._drop_deleted_retry_sets(running)

    async def _report_bridge(self) -> None:
        """The sidecar's state (when this process runs Segment's destinations), for `sluice
        status` and `/readyz`, every BRIDGE_REPORT_S."""
        state = location.report()
        if state is None or time.monotonic() < self._next_bridge_report:
            return
        self._next_bridge_report = time.monotonic() + BRIDGE_REPORT_S
        try:
            await asyncio.to_thread(
                self.store.record_unit_stats, location.report_unit(), state["reported_ms"], {},
                state,
            )  # fmt: skip
        except Exception as exc:
            if not self._bridge_report_failing:  # once per outage, not every 10 s
                log.warning("the bridge's state could not be reported (until it can): %s", exc)
            self._bridge_report_failing = True
        else:
            self._bridge_report_failing = False

    async def _drop_deleted_retry_sets(self, running: Collection[str]) -> None:
        """A deleted destination's retry set goes once its consumer is gone (never before: it
        holds events that were not delivered)."""
        holding = await asyncio.to_thread(self.store.retry_destinations)
        for dest in [d for d in holding if d not in self._destinations]:
            prefix = cursor_name(dest)
            if any(n == prefix or n.startswith(prefix + "#") for n in running):
                continue
            dropped = await asyncio.to_thread(self.store.drop_retry_set, dest)
            if dropped:
                log.warning("dropped %d retrying events of deleted destination %s", dropped, dest)

    def _unit(self, config: DestinationConfig, body: bytes, partition: Partition | None) -> Unit:
        if isinstance(config.destination, BridgedDestination):
            config.destination.keep_tokens(self.store, config.id)

        async def job() -> None:
            assert self._session is not None, "units run inside resources()"
            await Consumer(config, self.store, self._session, partition=partition).run()

        return Unit(cursor_name(config.id, partition), body, job)
