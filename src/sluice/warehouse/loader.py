"""Loading the event log into a warehouse, exactly once, in bulk.

Segment loads warehouses in bulk on a schedule (spec 4.5); so does Sluice: every
`warehouse_interval_s` (60 s by default) the worker reads the log from where the warehouse's last
load ended, in chunks of `DEFAULT_CHUNK_EVENTS`, and writes each chunk in one transaction together
with the new position. The position lives in the warehouse, not in the store: rows and position
commit or roll back together, so a crash mid-load neither loses nor doubles a row, and a
warehouse restored from a backup simply resumes from its own position.

The backend is opened for one `load_once` and closed after it, which releases the DuckDB file
between loads (DuckDB lets only one process open it for writing).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sluice.config import Settings
from sluice.errors import SluiceError
from sluice.store.base import EventStore
from sluice.warehouse.base import ColumnType, WarehouseBackend
from sluice.warehouse.factory import (
    WarehouseConfig,
    open_backend,
    parse_warehouse_config,
    warehouse_bodies,
)
from sluice.warehouse.naming import Namer
from sluice.warehouse.planner import Plan, Planner

log = logging.getLogger(__name__)
DEFAULT_CHUNK_EVENTS = 50_000
BackendFactory = Callable[[WarehouseConfig], WarehouseBackend]


@dataclass(slots=True)
class LoadReport:
    """What one `load_once` did."""

    warehouse_id: str
    start_position: int
    position: int = 0
    events: int = 0  # events read from the log
    loaded: int = 0  # events that produced rows
    skipped: int = 0  # other sources, integrations.Warehouses, unknown types
    duplicates: int = 0  # repeated messageIds within a load
    rows: dict[str, int] = field(default_factory=dict)  # "schema.table" -> rows written
    discards: int = 0
    new_columns: list[tuple[str, str, str, ColumnType]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, plan: Plan, position: int) -> None:
        self.position = position
        self.events += plan.events
        self.loaded += plan.loaded
        self.skipped += plan.skipped
        self.duplicates += plan.duplicates
        self.discards += len(plan.discards)
        self.new_columns.extend(plan.new_columns)
        for batch in plan.batches:
            key = f"{batch.schema}.{batch.table}"
            self.rows[key] = self.rows.get(key, 0) + len(batch.rows)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


class WarehouseLoader:
    """Loads the log into one warehouse of the workspace."""

    def __init__(
        self,
        settings: Settings,
        store: EventStore,
        warehouse_config_body: bytes,
        backend_factory: BackendFactory | None = None,
        chunk_events: int = DEFAULT_CHUNK_EVENTS,
    ) -> None:
        self.settings = settings
        self.store = store
        self.config = parse_warehouse_config(warehouse_config_body)
        self.chunk_events = chunk_events
        data_dir = settings.data_dir
        self._open: BackendFactory = backend_factory or (lambda c: open_backend(c, data_dir))

    def load_once(self) -> LoadReport:
        """Load everything the log holds beyond the warehouse's position; return what was done.

        Chunk N+1 is read and planned (Python) while chunk N is written (the database, which
        does not hold the GIL); chunks still commit one after the other, in log order.
        """
        started = time.perf_counter()
        backend = self._open(self.config)
        lock = threading.Lock()  # one connection: planning may ask for columns during a load

        def columns_of(schema: str) -> dict[str, dict[str, ColumnType]]:
            with lock:
                return backend.columns(schema)

        def load(plan: Plan, position: int) -> None:
            with lock:
                backend.load(plan.batches, plan.discards, self.config.id, position)

        try:
            position = backend.position(self.config.id)
            report = LoadReport(self.config.id, position, position)
            namer = Namer(backend.max_identifier_length)
            planner = Planner(self.config.id, namer, columns_of, self.config.sources)
            with ThreadPoolExecutor(1, thread_name_prefix=f"warehouse-{self.config.id}") as pool:
                pending: tuple[Future[None], Plan, int] | None = None
                try:
                    while True:
                        events = self.store.read_after(position, self.chunk_events)
                        plan = planner.plan(events, datetime.now(UTC)) if events else None
                        if pending is not None:
                            pending[0].result()
                            report.add(pending[1], pending[2])
                            pending = None
                        if plan is None:
                            break
                        position = events[-1].seq
                        pending = (pool.submit(load, plan, position), plan, position)
                        if len(events) < self.chunk_events:
                            pending[0].result()
                            report.add(plan, position)
                            break
                except BaseException:
                    planner.forget()
                    raise
        finally:
            backend.close()
        report.seconds = time.perf_counter() - started
        return report

    async def run(self) -> None:
        """Load every `warehouse_interval_s` seconds until cancelled; errors wait for the next."""
        while True:
            await self._load_logged()
            await asyncio.sleep(self.settings.warehouse_interval_s)

    async def _load_logged(self) -> None:
        try:
            report = await asyncio.to_thread(self.load_once)
        except SluiceError as exc:
            log.warning(
                "warehouse %s: load failed, next try in %ss: %s",
                self.config.id,
                self.settings.warehouse_interval_s,
                exc,
            )
            return
        except Exception:
            log.exception("warehouse %s: load failed", self.config.id)
            return
        if report.events:
            log.info(
                "warehouse %s: %d events -> %d rows in %d tables, %d discarded values, %.1fs",
                self.config.id, report.events, report.total_rows, len(report.rows),
                report.discards, report.seconds,
            )  # fmt: skip


def loaders_for(settings: Settings, store: EventStore) -> list[WarehouseLoader]:
    """One loader per warehouse of the workspace (or the default DuckDB warehouse)."""
    return [WarehouseLoader(settings, store, body) for body in warehouse_bodies(store)]


async def run_warehouses(settings: Settings, store: EventStore) -> None:
    """What the worker runs: load every warehouse of the workspace, then wait the interval.

    The workspace is re-read before each round, so added or removed warehouses take effect at
    the next one. A `warehouse_interval_s` of 0 turns automatic loads off.
    """
    if settings.warehouse_interval_s <= 0:
        return
    while True:
        try:
            loaders = await asyncio.to_thread(loaders_for, settings, store)
        except SluiceError as exc:
            log.error("warehouses are not loaded: %s", exc)
            loaders = []
        for loader in loaders:
            await loader._load_logged()
        await asyncio.sleep(settings.warehouse_interval_s)
