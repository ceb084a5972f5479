"""Loading the event log into a warehouse, exactly once, in bulk.

Segment loads warehouses in bulk on a schedule (spec 4.5); so does Sluice: every
`warehouse_interval_s` (60 s by default) the worker reads the log from where the warehouse's last
load ended, in chunks of `DEFAULT_CHUNK_EVENTS`, and writes each chunk in one transaction together
with the new position. The position lives in the warehouse, not in the store: rows and position
commit or roll back together, so a crash mid-load neither loses nor doubles a row, and a
warehouse restored from a backup simply resumes from its own position.

Each chunk is planned column-wise in DuckDB (columnar.py: inside the warehouse's own DuckDB,
or an in-memory one for PostgreSQL) while the previous chunk is written; a chunk the fast path
cannot plan exactly is planned event by event (planner.py) and committed in pieces.

The backend is opened for one `load_once` and closed after it, which releases the DuckDB file
between loads (DuckDB lets only one process open it for writing).

Each source's schema gets at most `max_event_tables` event tables; the tracks of a name past
that go to `tracks` only. The first load that caps a name logs it (once: the warehouse keeps
the names it capped in `_sluice.capped_events`, with their counts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import duckdb

from sluice.config import Settings
from sluice.errors import SluiceError
from sluice.failure_log import FailureLog
from sluice.gcpause import gc_paused
from sluice.store.base import EventStore, StoredEvent
from sluice.store.base_workers import UnitStats
from sluice.store.columns import LogColumns
from sluice.warehouse import compiled
from sluice.warehouse.base import CappedEvents, ColumnType, WarehouseBackend
from sluice.warehouse.columnar import Chunk, ColumnarPlanner
from sluice.warehouse.factory import (
    WarehouseConfig,
    max_event_tables,
    open_backend,
    parse_warehouse_config,
    warehouse_bodies,
)
from sluice.warehouse.naming import Namer
from sluice.warehouse.planner import Plan, Planner
from sluice.warehouse.profiles_sync import SyncReport, profiles_enabled, sync_profiles
from sluice.warehouse.readahead import ColumnsAhead
from sluice.warehouse.shape import ExactPlanNeeded
from sluice.warehouse.stats import record_load

log = logging.getLogger(__name__)
DEFAULT_CHUNK_EVENTS = 200_000  # events per transaction
READ_EVENTS = 50_000  # events read from the log at once (and planned at once, event by event)
MAX_LOGGED_CAPPED = 20  # names capped for the first time logged one by one per load, at most
BackendFactory = Callable[[WarehouseConfig], WarehouseBackend]


class LoaderStore(EventStore, UnitStats, Protocol):
    """What a loader needs of the store: the log to read, and somewhere to report its loads."""


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
    # "schema.table" -> tracks loaded into `tracks` only: the source had all its event tables
    capped: dict[str, int] = field(default_factory=dict)
    newly_capped: list[CappedEvents] = field(default_factory=list)  # names capped the first time
    seconds: float = 0.0
    profiles: SyncReport | None = None  # Profiles Sync, when the warehouse has it

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
            self.rows[key] = self.rows.get(key, 0) + batch.row_count
        for capped in plan.capped:
            key = f"{capped.schema}.{capped.table}"
            self.capped[key] = self.capped.get(key, 0) + capped.events
            if capped.first:
                self.newly_capped.append(capped)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


class WarehouseLoader:
    """Loads the log into one warehouse of the workspace."""

    def __init__(
        self,
        settings: Settings,
        store: LoaderStore,
        warehouse_config_body: bytes,
        backend_factory: BackendFactory | None = None,
        chunk_events: int = DEFAULT_CHUNK_EVENTS,
    ) -> None:
        self.settings = settings
        self.store = store
        self.config = parse_warehouse_config(warehouse_config_body)
        self.chunk_events = chunk_events
        self.max_event_tables = max_event_tables(self.config, settings.warehouse_max_event_tables)
        data_dir = settings.data_dir
        self._open: BackendFactory = backend_factory or (lambda c: open_backend(c, data_dir))

    def load_once(self) -> LoadReport:
        """Load everything the log holds beyond the warehouse's position; return what was done
        (and report it to the store, for metrics: warehouse/stats.py)."""
        try:
            report = self._load()
            if profiles_enabled(self.config):
                report.profiles = self._sync_profiles()
        except Exception:
            record_load(self.store, self.config.id, None)
            raise
        record_load(self.store, self.config.id, report)
        return report

    def _sync_profiles(self) -> SyncReport:
        """The identity graph's Profiles Sync tables, after the events (profiles_sync.py)."""
        from sluice.identity.runner import workspace_rules
        from sluice.identity.tables import open_identity_db

        space, _ = workspace_rules(self.store)
        db = open_identity_db(self.settings.data_dir, self.settings.database_url)
        try:
            return sync_profiles(self.config, self.settings.data_dir, db, space)
        finally:
            db.close()

    def _load(self) -> LoadReport:
        """One load.

        Chunk N+1 is read and planned while chunk N is written (both mostly in DuckDB or the
        database, which do not hold the GIL); chunks still commit one after the other, in log
        order.
        """
        started = time.perf_counter()
        backend = self._open(self.config)
        lock = threading.Lock()  # one connection: planning may ask for columns during a load

        def columns_of(schema: str) -> dict[str, dict[str, ColumnType]]:
            with lock:
                return backend.columns(schema)

        def capped_of(schema: str) -> set[str]:
            with lock:
                return {c.table for c in backend.capped_events(schema)}

        def load(plan: Plan, position: int) -> None:
            with lock:
                backend.load(plan.batches, plan.discards, self.config.id, position, plan.capped)

        engine: duckdb.DuckDBPyConnection | None = None
        try:
            position = backend.position(self.config.id)
            report = LoadReport(self.config.id, position, position)
            namer = Namer(backend.max_identifier_length)
            planner = Planner(
                self.config.id,
                namer,
                columns_of,
                self.config.sources,
                max_event_tables=self.max_event_tables,
                capped_of=capped_of,
            )
            stage = getattr(backend, "stage", None)
            if stage is not None:  # a DuckDB warehouse: plan inside it
                engine, database = stage()
                columnar = ColumnarPlanner(planner, engine, database, backend)
            else:  # a backend may plan its own way (the lake: in Arrow, lake/columnar.py)
                engine = duckdb.connect()
                planner_class = getattr(backend, "columnar_planner", ColumnarPlanner)
                columnar = planner_class(planner, engine)
            # The collector stays off from the first chunk to the last, as in `Chunk.add` and
            # `plan`: between two chunks it traversed everything they had made again (the
            # decoded samples, the pieces' events), 0.05-0.2 s each time.
            with gc_paused():
                self._load_chunks(columnar, planner, position, report, load)
        finally:
            try:
                if engine is not None:
                    engine.close()
                backend.close()
            finally:  # after the engine (its registered tables hold outputs), whatever fails
                compiled.release_memory()
        report.seconds = time.perf_counter() - started
        return report

    def _load_chunks(
        self,
        columnar: ColumnarPlanner,
        planner: Planner,
        position: int,
        report: LoadReport,
        load: Callable[[Plan, int], None],
    ) -> None:
        chunks: list[Chunk] = []  # planned and not yet loaded: their stage tables stay
        read_columns = getattr(self.store, "read_columns", None) if columnar.takes_columns else None
        ahead = None
        if read_columns is not None:
            ahead = ColumnsAhead(read_columns, f"log-read-{self.config.id}")
        with ThreadPoolExecutor(1, thread_name_prefix=f"warehouse-{self.config.id}") as pool:
            pending: tuple[Future[None], Plan, int, Chunk | None] | None = None
            try:
                for plan, end, chunk in self._plans(columnar, planner, position, chunks, ahead):
                    if pending is not None:
                        self._finish(pending, report, chunks)
                    pending = (pool.submit(load, plan, end), plan, end, chunk)
                if pending is not None:
                    self._finish(pending, report, chunks)
            except BaseException:
                planner.forget()
                if pending is not None:
                    with contextlib.suppress(BaseException):
                        pending[0].result()
                raise
            finally:
                if ahead is not None:
                    ahead.close()
                for chunk in chunks:
                    with contextlib.suppress(duckdb.Error):
                        chunk.release()

    @staticmethod
    def _finish(
        pending: tuple[Future[None], Plan, int, Chunk | None],
        report: LoadReport,
        chunks: list[Chunk],
    ) -> None:
        future, plan, end, chunk = pending
        future.result()
        logged = len(report.newly_capped)
        report.add(plan, end)
        _log_capped(report.warehouse_id, report.newly_capped[logged:], logged)
        if chunk is not None:
            chunks.remove(chunk)
            chunk.release()

    def _plans(
        self,
        columnar: ColumnarPlanner,
        planner: Planner,
        position: int,
        chunks: list[Chunk],
        columns: ColumnsAhead | None,
    ) -> Iterator[tuple[Plan, int, Chunk | None]]:
        """The plans of the log after `position`, each with the position it loads up to.

        A chunk is read in pieces of at most `READ_EVENTS` and planned in DuckDB; a chunk that
        needs the exact planner is planned (and committed) piece by piece instead, which bounds
        the memory its Python rows take. Where the store reads columns (SQLite,
        store/columns.py) and the planner takes them (all do), a chunk is read at once, column
        by column (`columns`): no Python object per event, and the next chunk read while this
        one is planned (readahead.py).
        """
        while True:
            chunk = columnar.chunk()
            chunks.append(chunk)
            ended = False
            while chunk.events < self.chunk_events:
                wanted = min(READ_EVENTS, self.chunk_events - chunk.events)
                events: Sequence[StoredEvent] | LogColumns | None = None
                if columns is not None:  # the rest of the chunk at once, column by column
                    wanted = self.chunk_events - chunk.events
                    events = columns.read(position, wanted)
                    if events is None:  # this store cannot now: rows from here on
                        columns = None
                        wanted = min(READ_EVENTS, wanted)
                if events is None:
                    events = self.store.read_after(position, wanted)
                chunk.add(events)
                if len(events):
                    position = _last_seq(events)
                if len(events) < wanted:
                    ended = True
                    break
            if not chunk.events:
                return
            uuid_ts = datetime.now(UTC)
            try:
                plan = chunk.plan(uuid_ts)
            except ExactPlanNeeded as exc:
                log.info("warehouse %s: chunk planned event by event: %s", self.config.id, exc)
                for piece in chunk.pieces(READ_EVENTS):
                    yield planner.plan(piece, uuid_ts), piece[-1].seq, None
                chunks.remove(chunk)
                chunk.release()
            else:
                yield plan, position, chunk
            if ended:
                return

    async def load_logged(self, failures: FailureLog) -> None:
        """One load as the worker runs it, logged; a failure through `failures`, which the
        worker keeps across rounds (it makes its loaders anew each round)."""
        retry_s = self.settings.warehouse_interval_s
        try:
            report = await asyncio.to_thread(self.load_once)
        except SluiceError as exc:  # a warehouse or bucket unavailable: no traceback
            failures.failed(exc, retry_s)
            return
        except Exception as exc:
            failures.failed(exc, retry_s, level=logging.ERROR)
            return
        failures.succeeded()
        if report.events:
            log.info(
                "warehouse %s: %d events -> %d rows in %d tables, %d discarded values, %.1fs",
                self.config.id, report.events, report.total_rows, len(report.rows),
                report.discards, report.seconds,
            )  # fmt: skip


def _last_seq(events: Sequence[StoredEvent] | LogColumns) -> int:
    return events.last_seq if isinstance(events, LogColumns) else events[-1].seq


def _log_capped(warehouse_id: str, names: list[CappedEvents], logged: int) -> None:
    """Names capped for the first time (their load committed), after `logged` others of this
    load: each on its own line, up to `MAX_LOGGED_CAPPED` a load."""
    for n, capped in enumerate(names, logged):
        if n < MAX_LOGGED_CAPPED:
            log.warning(
                "warehouse %s: schema %s has all the event tables it may have"
                " (max_event_tables): events named %r load into %s.tracks only",
                warehouse_id, capped.schema, capped.event_text, capped.schema,
            )  # fmt: skip
        elif n == MAX_LOGGED_CAPPED:
            log.warning(
                "warehouse %s: more event names load into tracks only (`sluice status --json`:"
                " capped_names)",
                warehouse_id,
            )


def loaders_for(settings: Settings, store: LoaderStore) -> list[WarehouseLoader]:
    """One loader per warehouse of the workspace (or the default DuckDB warehouse)."""
    return [WarehouseLoader(settings, store, body) for body in warehouse_bodies(store)]


async def run_warehouses(settings: Settings, store: LoaderStore) -> None:
    """What the worker runs: load every warehouse of the workspace, then wait the interval.

    The workspace is re-read before each round, so added or removed warehouses take effect at
    the next one. A `warehouse_interval_s` of 0 turns automatic loads off.
    """
    if settings.warehouse_interval_s <= 0:
        return
    workspace = FailureLog(log, "warehouses: reading their settings")
    failures: dict[str, FailureLog] = {}  # by warehouse id: each failure logged once
    while True:
        try:
            loaders = await asyncio.to_thread(loaders_for, settings, store)
        except SluiceError as exc:
            workspace.failed(exc, settings.warehouse_interval_s, level=logging.ERROR)
            loaders = []
        else:
            workspace.succeeded()
        failures = {  # a warehouse removed from the workspace takes its state with it
            loader.config.id: failures.get(loader.config.id)
            or FailureLog(log, f"warehouse {loader.config.id}: load")
            for loader in loaders
        }
        for loader in loaders:
            await loader.load_logged(failures[loader.config.id])
        await asyncio.sleep(settings.warehouse_interval_s)
