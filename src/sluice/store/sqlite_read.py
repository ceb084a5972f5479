"""The SQLite log read by the compiled reader (`_sqlite_read.c`), where it can be.

Every consumer reads the log through `SqliteStore.read_after`. Through Python's sqlite3 module
that cost ~8 s of CPU per 1,000,000 1 KB events on this VM (a row tuple made in C, copied into
a `StoredEvent` in Python, the GIL dropped and retaken around every row, and the cyclic GC
walking the millions of new containers): as much as the lake's whole load of those events
(bench/store.py `--read`). The compiled reader makes the same `StoredEvent`s at a third of
that (see its header), on its own connection (kept from writing), so reading no longer holds
the store's lock against appends.

It is used only where it is safe: built (setup.py skips it without a C compiler or SQLite's
header), not turned off (`SLUICE_NO_C_EXTENSIONS`), and linked to the same SQLite library as
Python's sqlite3 module. Two copies of SQLite in one process (a Python with SQLite built in,
and the system's library here) release each other's POSIX locks on the file, which can corrupt
it; `same_library` tells them apart by a setting each copy keeps for itself. Elsewhere the store
reads as before, in Python. The compiled reader returns the rows the Python path returns
(tests/store/test_sqlite_read.py compares them).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sluice.native import disabled
from sluice.store.base_workers import UnitStats

try:
    from sluice.store import _sqlite_read  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - built without a C compiler or sqlite3.h
    _sqlite_read = None

log = logging.getLogger(__name__)
T = TypeVar("T")

READS_UNIT = "store:log-reads"  # unit_stats: this log's reads that did not go as built to
TEXTS_REPLACED = "texts_replaced"  # TEXT values not UTF-8, read with U+FFFD
COMPILED_READER_FAILURES = "compiled_reader_failures"  # a process then reads in Python

_PROBE = 0x5_1C_E0_0000_0001  # a soft heap limit no one sets: ~5.6 TB, i.e. no limit at all
_same: bool | None = None  # `same_library`'s answer, for this process
_same_lock = threading.Lock()


def same_library(db: sqlite3.Connection) -> bool:
    """Whether the compiled reader and Python's sqlite3 module run one SQLite library.

    Each copy of SQLite keeps its own soft heap limit: set one through Python's connection,
    read it back in C, restore it. A limit of ~5.6 TB limits nothing while it is set."""
    global _same
    if _sqlite_read is None:
        return False
    with _same_lock:
        if _same is None:
            (before,) = db.execute("PRAGMA soft_heap_limit").fetchone()
            try:
                (probe,) = db.execute(f"PRAGMA soft_heap_limit={_PROBE}").fetchone()
                _same = probe == _sqlite_read.soft_heap_limit() and probe != before
            finally:
                db.execute(f"PRAGMA soft_heap_limit={int(before)}")
            if not _same:
                log.info(
                    "the log is read through Python's sqlite3: it has its own copy of SQLite"
                    " (sqlite %s), not the library sluice.store._sqlite_read was built with",
                    sqlite3.sqlite_version,
                )
        return _same


def recorded_trouble(stats: UnitStats) -> dict[str, int]:
    """What reads of the log met, as the store recorded it (`READS_UNIT`; zeros on PostgreSQL,
    whose reads meet neither): `sluice status`, the UI overview and the metrics show it."""
    counts = stats.unit_stats().get(READS_UNIT, {})
    return {name: counts.get(name, 0) for name in (TEXTS_REPLACED, COMPILED_READER_FAILURES)}


class ReadTrouble:
    """What this process's reads of the log met since the store last recorded it: texts read
    with U+FFFD, the compiled reader failing. Counted here, under no store lock, and recorded
    by the store once the read is over (`SqliteStore._record_trouble`): a read can run under
    the writer's lock (an append's catch-up), where the store cannot write its unit stats."""

    def __init__(self) -> None:
        self.pending: dict[str, int] = {}
        self.unrecorded_logged = False
        self._lock = threading.Lock()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.pending[name] = self.pending.get(name, 0) + n

    def take(self) -> dict[str, int]:
        """The counts so far, now forgotten here."""
        with self._lock:
            taken, self.pending = self.pending, {}
        return taken

    def give_back(self, counts: dict[str, int]) -> None:
        """Counts `take` returned that could not be recorded: recorded with the next ones."""
        for name, n in counts.items():
            self.add(name, n)


class RecordsReadTrouble:
    """The store's side of `ReadTrouble`: its counts added to the store's unit stats
    (`READS_UNIT`), where `sluice status` and the metrics read them (a mixin of SqliteStore)."""

    path: Path
    _trouble: ReadTrouble

    if TYPE_CHECKING:  # UnitStatsState's, later in SqliteStore's bases: no stub to shadow it

        def record_unit_stats(
            self, unit: str, now_ms: int, add: Mapping[str, int], set_to: Mapping[str, int]
        ) -> None: ...

    def _record_trouble(self) -> None:
        """Record what the reads met, if anything (call it holding no store lock). A failed
        write keeps the counts for the next time and says so once."""
        if not self._trouble.pending:
            return
        counts = self._trouble.take()
        try:
            self.record_unit_stats(READS_UNIT, int(time.time() * 1000), counts, {})
        except sqlite3.Error as exc:
            self._trouble.give_back(counts)
            if not self._trouble.unrecorded_logged:
                self._trouble.unrecorded_logged = True
                log.warning("%s: could not record its reads' troubles (%s)", self.path, exc)


class CompiledReads:
    """One query over the store's file read by the compiled reader, opened on first use.

    `read` returns None where the compiled reader cannot be used (not built, turned off,
    another SQLite copy, or it failed to open or read: logged once), and the caller reads in
    Python: that path gives the same rows, or raises the error the store always raised."""

    def __init__(
        self,
        path: Path,
        sql: str,
        row_type: type[tuple[Any, ...]],
        db: sqlite3.Connection,
        db_lock: threading.Lock,
        trouble: ReadTrouble,
    ) -> None:
        self.path = path
        self.trouble = trouble
        self._replaced = 0  # the reader's count of texts read with U+FFFD, already counted
        self.sql = sql
        self.row_type = row_type
        self._db, self._db_lock = db, db_lock  # the store's connection, for `same_library`
        self._reader: Any = None
        self._pid = 0
        self._failed = False
        self._odd_logged = False  # a read_columns that fell back to rows (logged once)
        self._lock = threading.Lock()  # a reader is one connection: one caller at a time

    def read(self, *params: int) -> list[Any] | None:
        """The rows for `params`, or None (the caller reads them in Python)."""
        return self._call("read", params, self.row_type)  # type: ignore[no-any-return]

    def read_columns(self, kinds: str, *params: int) -> tuple[int, tuple[Any, ...]] | None:
        """`Reader.read_columns(params, kinds)`, or None as `read`; also None (this call only)
        when a value does not fit its column's kind (a row the columns cannot hold, such as a
        text where the log has integers: the caller reads those rows as rows instead)."""
        try:
            return self._call("read_columns", params, kinds)  # type: ignore[no-any-return]
        except ValueError as exc:
            if not self._odd_logged:
                self._odd_logged = True
                log.info("%s: rows read as rows, not column by column: %s", self.path, exc)
            return None

    def _call(self, method: str, *args: Any) -> Any:
        """The reader's `method(*args)`, or None where the compiled reader cannot be used."""
        if _sqlite_read is None or self._failed or disabled() or not self._same_library():
            return None
        with self._lock:
            try:
                reader = self._reader_here()
                result = getattr(reader, method)(*args)
            except (OSError, UnicodeError) as exc:
                self._fail(exc)
                return None
            if reader.replaced != self._replaced:  # texts not UTF-8, read with U+FFFD (in C)
                self.trouble.add(TEXTS_REPLACED, reader.replaced - self._replaced)
                self._replaced = reader.replaced
                warn_bad_text(self.path)
            return result

    def _reader_here(self) -> Any:
        """This process's reader (under `_lock`). A connection does not survive fork: a child
        opens its own (the parent's is left alone, not closed, as SQLite asks)."""
        if self._reader is None or self._pid != os.getpid():
            self._reader = _sqlite_read.Reader(str(self.path), self.sql)
            self._pid = os.getpid()
            self._replaced = 0
        return self._reader

    def _fail(self, exc: Exception) -> None:
        self._failed = True
        self.trouble.add(COMPILED_READER_FAILURES)
        log.warning(
            "reading %s in C failed (%s): reading it through Python's sqlite3 from now on",
            self.path,
            exc,
        )

    def _same_library(self) -> bool:
        if _same is not None:  # known for this process
            return _same
        with self._db_lock:  # the store's connection is used by one thread at a time
            return same_library(self._db)

    def close(self) -> None:
        with self._lock:
            if self._reader is not None and self._pid == os.getpid():
                self._reader.close()
            self._reader = None


_UNDECODABLE = "Could not decode to UTF-8"  # sqlite3's OperationalError for such a TEXT value
_undecodable_logged = False


def tolerating_bad_text(
    db: sqlite3.Connection, path: Path, trouble: ReadTrouble, read: Callable[[], T]
) -> T:
    """`read()` (a query on `db`, under the store's lock), again with a TEXT value that is not
    UTF-8 read with U+FFFD in place of its bad bytes, if there is one.

    Sluice writes only UTF-8 (its JSON decoder checks it), but another writer or a damaged file
    can leave a messageId that is not, and sqlite3 then refuses the whole read: every consumer
    of that part of the log, and the deduplication window every append loads, would stop there
    for good. The compiled reader decodes the same way. Each such text is counted in `trouble`;
    warned once a process."""
    try:
        return read()
    except sqlite3.OperationalError as exc:
        if not str(exc).startswith(_UNDECODABLE):
            raise
    warn_bad_text(path)
    replaced = 0

    def replacing(value: bytes) -> str:
        nonlocal replaced
        try:
            return value.decode()
        except UnicodeDecodeError:
            replaced += 1
            return value.decode("utf-8", "replace")

    db.text_factory = replacing
    try:
        return read()
    finally:
        db.text_factory = str
        if replaced:
            trouble.add(TEXTS_REPLACED, replaced)


def warn_bad_text(path: Path) -> None:
    """Once a process: the log held text that is not UTF-8 (either reader found it)."""
    global _undecodable_logged
    if not _undecodable_logged:
        _undecodable_logged = True
        log.warning(
            "%s holds text that is not UTF-8 (not written by Sluice): it is read with U+FFFD"
            " in place of the bad bytes",
            path,
        )
