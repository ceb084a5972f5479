"""A columnar chunk's DuckDB cursors: the chunk's own, or one per group in the stage threads.

Groups are staged two at a time (`_each`): neither the compiled reader nor DuckDB holds the GIL,
and DuckDB reads a small group on one core. A DuckDB cursor serves one thread, so each group's
work gets a cursor of its own, opened only when it first asks. Mixed into `Chunk` (columnar.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from sluice.warehouse.stage import Group

if TYPE_CHECKING:
    from sluice.warehouse.columnar import ColumnarPlanner

STAGE_THREADS = 2  # groups read at once: DuckDB reads a small group on one core
T = TypeVar("T")


class ChunkCursors:
    """Mixed into `Chunk`: `_main` is the chunk's cursor, `_local` the stage threads' state."""

    owner: ColumnarPlanner
    _main: duckdb.DuckDBPyConnection
    _local: threading.local
    _tables: list[str]  # tables the chunk created (dropped on release)

    if TYPE_CHECKING:

        def _register(self, db: duckdb.DuckDBPyConnection, index: int) -> None: ...

    @property
    def db(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor: the chunk's own, or in `_each`'s threads one a group, opened
        when the group's work first asks for it (the lake's mostly never does: opening one
        and setting its time zone was ~7 % of its stage threads' CPU, perf)."""
        local = self._local
        index: int | None = getattr(local, "group", None)
        if index is None:
            return self._main
        cursor: duckdb.DuckDBPyConnection | None = getattr(local, "db", None)
        if cursor is None:
            cursor = local.db = self.owner.engine.cursor()
            cursor.execute("SET TimeZone = 'UTC'").fetchall()
            self._register(cursor, index)
        return cursor

    def _each(self, groups: list[Group], work: Callable[[Group], T]) -> list[T]:
        """`work` for every group, in threads (DuckDB runs them on both cores), in order."""

        def task(group: Group) -> T:
            self._local.group = group.index
            try:
                return work(group)
            finally:
                cursor = getattr(self._local, "db", None)
                self._local.db = self._local.group = None
                if cursor is not None:
                    cursor.close()

        with ThreadPoolExecutor(STAGE_THREADS, thread_name_prefix="warehouse-stage") as pool:
            return list(pool.map(task, groups))

    def _run(self, sql: str) -> None:
        self.db.execute(sql).fetchall()  # DuckDB wants every result read before the next call

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.db.execute(sql).fetchall()

    def _row(self, sql: str) -> tuple[Any, ...]:
        return tuple(self._rows(sql)[0])

    def _create(self, table: str, select: str) -> None:
        self._run(f"CREATE TABLE {table} AS {select}")
        self._tables.append(table)

    def _drop(self, table: str) -> None:
        if table in self._tables:
            self._run(f"DROP TABLE {table}")
            self._tables.remove(table)
