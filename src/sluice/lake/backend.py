"""The lake as a warehouse backend: the loader plans, this writes Parquet files and a manifest.

A lake is loaded by the warehouse's own loader (loader.py) and planners, so it gets Segment's
naming, flattening, first-value types, `integrations.Warehouses`, a warehouse's `sources` and
the event-table cap exactly as the DuckDB and PostgreSQL warehouses do. What differs is how a
chunk is committed, since files have no transactions:

1. the manifest records the files the chunk is about to write (`pending`), after deleting those
   a killed load had recorded;
2. each (collection, hour) of the chunk becomes one Parquet file named by the chunk's range of
   log positions (layout.py), written whole (storage.py); discarded values likewise;
3. the manifest is replaced with the new position, the collections' column types and the
   capped names: this is the commit.

A kill before 3 leaves files beyond the manifest's position, which readers leave out and the
next load deletes (or overwrites: the same range gives the same names), so each event is in
the lake exactly once. Rows are not deduplicated on `id` across loads: the collector's window
does that on the way in (docs/lake.md).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import ClassVar

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]

from sluice.lake.columnar import LakePlanner
from sluice.lake.compaction import DEFAULT_COMPACT_FILES, compact
from sluice.lake.layout import DISCARDS, META, LakeFile, live, parse
from sluice.lake.manifest import Capped, now_text, read_manifest, write_manifest
from sluice.lake.parquet import batch_table, by_hour, discards_table, parquet_bytes
from sluice.lake.storage import LakeStorage
from sluice.warehouse.base import (
    CappedEvents,
    ColumnType,
    Discard,
    SchemaChangeError,
    TableBatch,
    check_widening,
)

WRITE_THREADS = 2  # Parquet encoding releases the GIL: files of a chunk are encoded at once
STORE_THREADS = 8  # files being stored at once (each waits for its fsync or upload)


class LakeBackend:
    """A Parquet lake in `storage`, written as a warehouse (see the module's docstring)."""

    max_identifier_length: ClassVar[int] = 120  # as DuckDB, the lake's usual reader
    columnar_planner: ClassVar[type[LakePlanner]] = LakePlanner  # plans into Arrow, not DuckDB

    def __init__(self, storage: LakeStorage, *, compact_files: int = DEFAULT_COMPACT_FILES):
        self.storage = storage
        self.compact_files = compact_files
        self.manifest = read_manifest(storage)
        self._touched: set[str] = set()  # partition folders this backend wrote to

    # -- what the planner asks ---------------------------------------------------------------

    def columns(self, schema: str) -> dict[str, dict[str, ColumnType]]:
        return copy.deepcopy(self.manifest.tables.get(schema, {}))

    def position(self, loader_id: str) -> int:
        """One lake, one position, whatever the warehouse's id (renaming it must not reload)."""
        return self.manifest.position

    def capped_events(self, schema: str | None = None) -> list[CappedEvents]:
        return [
            CappedEvents(s, t, c.event_text, c.events)
            for s, names in sorted(self.manifest.capped.items())
            if schema is None or s == schema
            for t, c in sorted(names.items())
        ]

    # -- loading ------------------------------------------------------------------------------

    def load(
        self,
        batches: Sequence[TableBatch],
        discards: Sequence[Discard],
        loader_id: str,
        position: int,
        capped: Sequence[CappedEvents] = (),
    ) -> None:
        manifest = self.manifest
        first = manifest.position + 1
        now = datetime.now(UTC)
        parts: list[tuple[str, pa.Table]] = []
        for batch in batches:
            if not batch.row_count:
                continue
            table = batch_table(batch)
            for partition, rows in by_hour(table, now):
                parts.append(
                    (LakeFile(batch.schema, batch.table, partition, first, position).path, rows)
                )
        if discards:
            for partition, rows in by_hour(discards_table(discards, now), now, "discarded_at"):
                parts.append((LakeFile(META, DISCARDS, partition, first, position).path, rows))
        for stale in manifest.pending:
            self.storage.delete(stale)
        manifest.pending = [path for path, _ in parts]
        write_manifest(self.storage, manifest)
        self._write(parts)
        # The commit: a new manifest with the position and what the chunk added.
        updated = copy.deepcopy(manifest)
        for batch in batches:
            if batch.row_count:
                known = updated.tables.setdefault(batch.schema, {}).setdefault(batch.table, {})
                for column, column_type in batch.columns.items():
                    known.setdefault(column, column_type)
        stamp = now_text()
        for c in capped:
            names = updated.capped.setdefault(c.schema, {})
            entry = names.get(c.table)
            if entry is None:
                names[c.table] = Capped(c.event_text, c.events, stamp, stamp)
            else:
                entry.events += c.events
                entry.last_capped_at = stamp
        updated.position, updated.loader_id, updated.loaded_at = position, loader_id, stamp
        updated.pending = []
        write_manifest(self.storage, updated)
        self.manifest = updated
        self._touched.update(path.rsplit("/", 1)[0] for path, _ in parts)

    def _write(self, parts: list[tuple[str, pa.Table]]) -> None:
        """Encode on `WRITE_THREADS` (CPU), store on `STORE_THREADS` (waits: fsync, uploads),
        so that an encoder never waits for a disk."""
        with (
            ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="lake-store") as store,
            ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="lake-write") as encode,
        ):

            def write(part: tuple[str, pa.Table]) -> Future[None]:
                return store.submit(self.storage.put, part[0], parquet_bytes(part[1]))

            for stored in list(encode.map(write, parts)):
                stored.result()

    # -- by hand ------------------------------------------------------------------------------

    def widen(self, schema: str, table: str, column: str, new_type: ColumnType) -> None:
        """Later files type the column anew; earlier files keep theirs, which DuckDB's
        `union_by_name` reads as the wider type."""
        current = self.manifest.tables.get(schema, {}).get(table)
        if current is None:
            raise SchemaChangeError(f"no collection {schema}.{table} in the lake")
        check_widening(schema, table, column, current.get(column), new_type)
        updated = copy.deepcopy(self.manifest)
        updated.tables[schema][table][column] = new_type
        write_manifest(self.storage, updated)
        self.manifest = updated

    def files(self) -> list[LakeFile]:
        """The files readers read now (committed, not superseded by a compacted one)."""
        found = (parse(path) for path in self.storage.list())
        return live((f for f in found if f is not None), self.manifest.position)

    def discards(self, limit: int = 100) -> list[Discard]:
        paths = [
            self.storage.locate(f.path)
            for f in self.files()
            if f.schema == META and f.table == DISCARDS
        ]
        if not paths:
            return []
        with duckdb.connect() as db:
            rows = db.execute(
                "SELECT schema, table_name, column_name, row_id, value, reason"
                " FROM read_parquet(?, filename = true, file_row_number = true)"
                " ORDER BY discarded_at DESC, filename DESC, file_row_number DESC LIMIT ?",
                [paths, limit],
            ).fetchall()
        return [Discard(*row) for row in rows]

    def close(self) -> None:
        """Compact the partitions this backend wrote to that have `compact_files` files."""
        touched, self._touched = self._touched, set()
        if touched and self.compact_files > 0:
            compact(self.storage, self.manifest.position, touched, min_files=self.compact_files)
