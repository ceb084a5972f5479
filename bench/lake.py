"""Lake loading benchmark: events/s from the log into Parquet files, and pyarrow's ceiling.

    uv run python bench/lake.py [--events 1000000] [--chunk 200000] [--dir /tmp/lake-bench] [--s3]
        [--sqlite] [--rows] [--stages] [--rounds 3]

Loads `--events` mixed events (bench/warehouse.py's generator: 80% tracks over 20 event names
with nested properties and arrays, 10% pages, 7% identifies, 3% groups) through
`WarehouseLoader` into a `LakeBackend` on local disk, the code path the worker runs (planning,
Parquet encoding, files, manifest commits; automatic compaction off). The log is generated in
memory first, not timed.

Then the ceiling for the same rows, with no Segment logic at all: the Arrow tables the load
wrote (read back from its files beforehand, not timed) written again by pyarrow.parquet alone,
one file per collection and hour, with the lake's writer options (`parquet.write_options`,
chosen beforehand, not timed), on as many threads as the lake's writer. No lake can beat
events / that time on this machine; the share says how close Sluice is.

Each of `--rounds` rounds loads the log into an empty lake and then measures the ceiling on that
load's files, so each share compares two runs made side by side; the figures printed are the
medians of the rounds (this 2-core VM is shared: one load's share swung 25-45 % between runs
of the same code, a round's lake and ceiling move together less).

With `--s3` the same log is then loaded again into a lake on a moto S3 server this script starts
on a loopback port (tests/s3server.py): every file uploaded (and verified by the client), the
manifest replaced last, as the worker does with `storage: s3`.

The in-memory log hands each chunk over as a SQLite store does for the lake, column by column
(store/columns.py, made before anything is timed); `--rows` hands it over as `StoredEvent`s
instead, as a PostgreSQL store does (and as every store did before the 12th session).

With `--sqlite` the same log is then loaded from a SQLite store file (the worker's own store;
inserting it is not timed), end to end as a node does: the log read with `read_after` by the
compiled reader (store/_sqlite_read.c), then through Python's sqlite3 (`SLUICE_NO_C_EXTENSIONS`
for the read alone), side by side. The figures above read an in-memory list of the same events.

The ceiling is pyarrow alone writing the same rows: the same tables (columns, types, order), the
same files (one per collection, hour and chunk), the same writer options (zstd level 1, the same
dictionary columns), the same row groups (one a file: no file reaches pyarrow's 1Mi-row default;
the bench prints both counts) and as many encoding threads. It is stricter than the lake's
writing: it does not `fsync` or rename its files.

`--stages` also prints where the lake's CPU goes (thread CPU seconds of each stage, summed over
the threads it runs on): sorting events into groups (C, warehouse/_group.c), decoding the first
events of new groups, the compiled reader, the checks, encoding Parquet, the load thread
(cutting files by hour, the manifest); and by thread (the main thread, the planner's, the
encoders, the storing ones, the load thread), which together account for all of it.

That ceiling reads no JSON, and the lake must read ~1 GB of it. A second reference adds the
least any Python reader of the log does: msgspec decoding each payload once (no flattening,
typing or grouping; one thread, as Python decodes), then the same write.

The floor measures the best share a lake can have here instead of arguing it: the compiled
reader's calls of the load (recorded as it ran: the same payloads, trees and outputs) replayed
alone on as many threads as the writer, with no grouping, planning or checks, each call's
outputs freed as it returns (so reused, as a load's chunks reuse them), then the same write.
No lake with this reader does less work; `write / (read + write)` is the best share of the
ceiling it can reach on this machine, and the lake's share of the floor says how much of the
rest is still overhead. Below that, one C pass over every payload byte (`_group.survey`,
a memchr) instead of the reader bounds any lake that reads the JSON at all. CPU seconds are
printed with every figure: on a machine shared with other work they vary less than wall
times.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import median
from types import SimpleNamespace
from typing import Any

import msgspec
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).parent))
from sluice.config import Settings
from sluice.lake.backend import WRITE_THREADS, LakeBackend
from sluice.lake.parquet import COMPRESSION, write_options
from sluice.lake.storage import LakeStorage, LocalStorage
from sluice.store.columns import LogColumns
from sluice.store.sqlite import SqliteStore
from sluice.warehouse import compiled
from sluice.warehouse.loader import DEFAULT_CHUNK_EVENTS, READ_EVENTS, WarehouseLoader
from warehouse import GeneratedLog


class _Log(GeneratedLog):
    def record_unit_stats(self, *args: Any, **kwargs: Any) -> None:
        """The bench has no store to report loads to."""


class _ColumnsLog(_Log):
    """The log also read column by column, as a SQLite store reads it for the lake (the columns
    made before anything is timed; a read slices them)."""

    def __init__(self, total: int, source_id: str) -> None:
        super().__init__(total, source_id)
        self.columns = LogColumns.from_rows(self.events)

    def read_columns(self, seq: int, limit: int) -> LogColumns:
        return self.columns.slice(seq, seq + limit)  # seq n sits at index n - 1


class Reads:
    """Records the compiled reader's calls during a load (their arguments: the payload tuples
    are the log's own), to replay them alone afterwards (`floor`)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []  # function, args
        self.real = compiled._scan

    def __enter__(self) -> Reads:
        real = self.real

        def recorded(name: str) -> Callable[..., Any]:
            function = getattr(real, name)

            def call(*args: Any) -> Any:
                self.calls.append((function, args))
                return function(*args)

            return call

        others = {n: getattr(real, n) for n in dir(real) if not n.startswith("_")}
        reads = {n: recorded(n) for n in ("read_bytes", "read_gather")}  # rows, columns
        compiled._scan = SimpleNamespace(**{**others, **reads})
        return self

    def __exit__(self, *exc: object) -> None:
        compiled._scan = self.real

    def replay(self) -> tuple[float, float]:
        """(seconds, CPU seconds) of the recorded calls again, on `WRITE_THREADS` threads.

        Each call's outputs are freed once it returns, so the next call reuses their memory
        (warehouse/_pool.c): a floor must not pay for fresh pages the load itself no longer
        pays for (kept, every call's outputs were new memory: twice the load's reader CPU)."""
        cpu_before = os.times()
        started = time.perf_counter()
        with ThreadPoolExecutor(WRITE_THREADS) as pool:
            for _ in pool.map(lambda call: call[0](*call[1]), self.calls):
                pass
        seconds, cpu = time.perf_counter() - started, _cpu(cpu_before)
        self.real.release()
        return seconds, cpu


def touch_bytes(log: GeneratedLog) -> tuple[float, float]:
    """(seconds, CPU seconds) of one C pass over every payload byte (`_group.survey`: a memchr
    for "Warehouses", the sources), pieces of `READ_EVENTS` on `WRITE_THREADS` threads."""
    survey = compiled.group().survey  # type: ignore[union-attr]
    events = log.events
    pieces = [events[i : i + READ_EVENTS] for i in range(0, len(events), READ_EVENTS)]
    cpu_before = os.times()
    started = time.perf_counter()
    with ThreadPoolExecutor(WRITE_THREADS) as pool:
        list(pool.map(survey, pieces))
    return time.perf_counter() - started, _cpu(cpu_before)


spent_by_thread: dict[str, float] = {}  # `timed_threads`' sums, when `--stages`


def load(
    log: GeneratedLog, root: Path, chunk: int, storage: LakeStorage | None = None
) -> tuple[float, float, int, int]:
    """(seconds, CPU seconds, events, rows) of one load into an empty lake at `root` (or in
    `storage`, a bucket)."""
    body = msgspec.json.encode({"id": "bench", "type": "lake"})
    target = storage or LocalStorage(root)
    loader = WarehouseLoader(
        Settings(),
        log,  # type: ignore[arg-type]
        body,
        backend_factory=lambda c: LakeBackend(target, compact_files=0),
        chunk_events=chunk,
    )
    cpu_before, main_before = os.times(), time.thread_time()
    started = time.perf_counter()
    report = loader.load_once()
    seconds = time.perf_counter() - started
    if spent_by_thread:
        spent_by_thread[MAIN] += time.thread_time() - main_before
    return seconds, _cpu(cpu_before), report.events, report.total_rows


STAGES = {  # (owner module, class or None, function): label
    ("sluice.lake.columnar", "LakeChunk", "_split"): "sorting events into groups (intake)",
    ("sluice.lake.columnar", "LakeChunk", "_sample"): "decoding new groups' first events",
    ("sluice.lake.columnar", "LakeChunk", "_stage"): "the compiled reader (_scan)",
    ("sluice.lake.columnar", "LakeChunk", "_check"): "checks and counts",
    ("sluice.lake.columnar", "LakeChunk", "_batches"): "cutting tables from the stages",
    ("sluice.lake.backend", None, "parquet_bytes"): "encoding Parquet",
    (
        "sluice.lake.backend",
        "LakeBackend",
        "load",
    ): "the load thread (cutting by hour, manifest)",
}


THREADS = {  # thread name prefix: label
    "warehouse-stage": "the planner's threads (the reader, checks)",
    "lake-write": "encoding Parquet",
    "lake-store": "storing files",
    "log-read": "reading the log ahead (columns)",
    "warehouse-": "the load thread",
}
MAIN = "the main thread (grouping, planning)"
CEILING = "ceiling"  # its threads' names


def timed_threads() -> Callable[[], None]:
    """Sum each thread's CPU seconds when it ends, by kind (`THREADS`), in `spent_by_thread`
    (`load` adds the main thread's); returns an undo. Together they account for all of a
    load's CPU, where `STAGES` names only some of it."""
    spent = spent_by_thread
    spent.update(dict.fromkeys([MAIN, *THREADS.values(), "other threads"], 0.0))
    lock = threading.Lock()
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        try:
            original(self)
        finally:
            label = next((v for k, v in THREADS.items() if self.name.startswith(k)), None)
            if not self.name.startswith(CEILING):  # not the load's
                with lock:
                    spent[label or "other threads"] += time.thread_time()

    threading.Thread.run = run  # type: ignore[method-assign]

    def restore() -> None:
        threading.Thread.run = original  # type: ignore[method-assign]

    return restore


def timed_stages() -> tuple[dict[str, list[float]], Callable[[], None]]:
    """Wrap each of `STAGES` to sum its thread CPU seconds; returns the sums and an undo."""
    spent: dict[str, list[float]] = {}
    lock = threading.Lock()
    undo: list[tuple[Any, str, Any]] = []
    for (module_name, class_name, name), label in STAGES.items():
        owner: Any = importlib.import_module(module_name)
        if class_name is not None:
            owner = getattr(owner, class_name)
        original = getattr(owner, name)
        spent[label] = [0.0, 0]

        def call(*args: Any, _fn: Any = original, _label: str = label, **kwargs: Any) -> Any:
            before = time.thread_time()
            try:
                return _fn(*args, **kwargs)
            finally:
                with lock:
                    spent[_label][0] += time.thread_time() - before
                    spent[_label][1] += 1

        setattr(owner, name, call)
        undo.append((owner, name, original))

    def restore() -> None:
        for owner, name, original in undo:
            setattr(owner, name, original)

    return spent, restore


def row_groups(root: Path) -> int:
    return sum(pq.ParquetFile(path).num_row_groups for path in root.rglob("*.parquet"))


def ceiling(root: Path, out: Path) -> tuple[float, float, int, int]:
    """(seconds, CPU seconds, files, rows): pyarrow alone writing the tables of the lake's
    files again, with the lake's options."""
    tables: list[tuple[Path, pa.Table, dict[str, Any]]] = []
    for path in sorted(root.rglob("*.parquet")):
        table = pq.read_table(path)
        tables.append((out / path.relative_to(root), table, write_options(table)))
    for target, _, _ in tables:
        target.parent.mkdir(parents=True, exist_ok=True)

    def write(item: tuple[Path, pa.Table, dict[str, Any]]) -> None:
        pq.write_table(item[1], item[0], **item[2])

    cpu_before = os.times()
    started = time.perf_counter()
    with ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix=CEILING) as pool:
        list(pool.map(write, tables))
    seconds = time.perf_counter() - started
    return seconds, _cpu(cpu_before), len(tables), sum(t.num_rows for _, t, _ in tables)


def decode_all(log: GeneratedLog) -> tuple[float, float]:
    """(seconds, CPU seconds) of msgspec decoding every payload once."""
    decode = msgspec.json.Decoder().decode
    cpu_before = os.times()
    started = time.perf_counter()
    for event in log.events:
        decode(event.payload)
    return time.perf_counter() - started, _cpu(cpu_before)


def _cpu(before: os.times_result) -> float:
    after = os.times()
    return sum(after[:2]) - sum(before[:2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK_EVENTS)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write (default: a temp dir)"
    )
    parser.add_argument("--s3", action="store_true", help="also load into a local S3 server")
    parser.add_argument("--sqlite", action="store_true", help="also load from a SQLite log")
    parser.add_argument(
        "--rows", action="store_true", help="hand the log over as rows (a PostgreSQL store's way)"
    )
    parser.add_argument("--stages", action="store_true", help="print the lake's CPU by stage")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="lake loads, each followed by its ceiling (the figures are the medians)",
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    base = args.dir or Path(tempfile.mkdtemp(prefix="sluice-lake-bench-"))
    print(f"generating {args.events:,} events ...", flush=True)
    log_type = _Log if args.rows else _ColumnsLog
    log = log_type(args.events, "web")
    handed = "rows (StoredEvents)" if args.rows else "columns (as a SQLite store gives the lake)"
    print(f"the log is in memory and handed over as {handed}")
    spent, restore = timed_stages() if args.stages else ({}, lambda: None)
    restore_threads = timed_threads() if args.stages else lambda: None
    pairs: list[tuple[float, float, float, float]] = []  # lake s, CPU; ceiling s, CPU
    print(f"\n{args.rounds} rounds, each a lake load then its ceiling:")
    try:
        for round_ in range(1, args.rounds + 1):
            root, again = base / "lake", base / "ceiling"
            for folder in (root, again):
                shutil.rmtree(folder, ignore_errors=True)
            recording = Reads() if round_ == args.rounds else contextlib.nullcontext()
            with recording:
                seconds, cpu, events, rows = load(log, root, args.chunk)
            if isinstance(recording, Reads):
                reads = recording
            write_s, write_cpu, write_files, write_rows = ceiling(root, again)
            pairs.append((seconds, cpu, write_s, write_cpu))
            print(
                f"  round {round_}: lake {events / seconds:>9,.0f} events/s ({seconds:.2f} s,"
                f" {cpu:.1f} s CPU), ceiling {events / write_s:>9,.0f} events/s ({write_s:.2f} s,"
                f" {write_cpu:.1f} s CPU): share {write_s / seconds:.0%}"
                f" ({write_cpu / cpu:.0%} in CPU)",
                flush=True,
            )
    finally:
        restore()
        restore_threads()
    by_thread = dict(spent_by_thread)
    spent_by_thread.clear()  # later loads (--s3) are not counted
    seconds, cpu = median(p[0] for p in pairs), median(p[1] for p in pairs)
    write_s, write_cpu = (
        median(p[2] for p in pairs),
        median(p[3] for p in pairs),
    )
    files = list(root.rglob("*.parquet"))
    size = sum(f.stat().st_size for f in files)
    rate = events / seconds
    print(
        f"\nlake: {events:,} events -> {rows:,} rows in {len(files)} files ({size / 1e6:,.0f} MB,"
        f" {COMPRESSION}), chunks of {args.chunk:,}; medians of {len(pairs)} rounds"
    )
    print(f"  end to end  {rate:>9,.0f} events/s {rows / seconds:>10,.0f} rows/s ({seconds:.1f} s)")
    print(f"  CPU         {cpu:>9.1f} s ({cpu / seconds:.2f} cores busy of {os.cpu_count()})")
    if spent:
        print(f"  by stage, the mean of the {len(pairs)} rounds:")
    for label, (stage_cpu, calls) in spent.items():
        print(f"    {label:<44} {stage_cpu / len(pairs):>6.2f} s CPU ({calls // len(pairs)} calls)")
    if by_thread:
        print(f"  by thread, the mean of the {len(pairs)} rounds (all of the load's CPU):")
        for label, thread_cpu in by_thread.items():
            print(f"    {label:<44} {thread_cpu / len(pairs):>6.2f} s CPU")
    top = events / write_s
    print(
        f"ceiling (pyarrow.parquet alone, {write_files} files, {write_rows:,} rows,"
        f" {WRITE_THREADS} threads): {top:,.0f} events/s ({write_s:.1f} s, {write_cpu:.1f} s CPU)"
    )
    print(f"  row groups: the lake's files {row_groups(root)}, the ceiling's {row_groups(again)}")
    print(
        f"  the lake's share of the ceiling: {median(p[2] / p[0] for p in pairs):.0%}"
        f" ({median(p[3] / p[1] for p in pairs):.0%} in CPU), the median of the rounds' shares"
    )
    decode_s, decode_cpu = decode_all(log)
    with_json = events / (decode_s + write_s)
    print(
        f"ceiling with JSON (msgspec decoding each payload once, {decode_s:.1f} s, then the"
        f" write above): {with_json:,.0f} events/s ({decode_s + write_s:.1f} s,"
        f" {decode_cpu + write_cpu:.1f} s CPU)"
    )
    print(
        f"  the lake's share of it: {rate / with_json:.0%}"
        f" ({(decode_cpu + write_cpu) / cpu:.0%} in CPU)"
    )
    read_s, read_cpu = reads.replay()
    touch_s, touch_cpu = touch_bytes(log)
    floor = events / (read_s + write_s)
    print(
        f"floor (the compiled reader alone, replaying the load's {len(reads.calls)} calls on"
        f" {WRITE_THREADS} threads, {read_s:.1f} s, {read_cpu:.1f} s CPU; then the write above):"
        f" {floor:,.0f} events/s ({read_s + write_s:.1f} s, {read_cpu + write_cpu:.1f} s CPU)"
    )
    print(
        f"  the best share of the ceiling a lake with this reader can have here:"
        f" {floor / top:.0%} ({write_cpu / (read_cpu + write_cpu):.0%} in CPU);"
        f" the lake's share of the floor: {rate / floor:.0%}"
        f" ({(read_cpu + write_cpu) / cpu:.0%} in CPU)"
    )
    print(
        f"  with one C pass over every payload byte instead of the reader ({touch_s:.1f} s,"
        f" {touch_cpu:.1f} s CPU): {write_s / (touch_s + write_s):.0%}"
        f" ({write_cpu / (touch_cpu + write_cpu):.0%} in CPU), the bound for any lake that"
        f" reads the JSON"
    )
    if args.sqlite:
        load_from_sqlite(log, base, args.chunk, rate)
    if args.s3:
        load_to_s3(log_type(args.events, "web"), base / "s3-local", args.chunk, rate)
    if args.dir is None:
        shutil.rmtree(base, ignore_errors=True)


def load_from_sqlite(log: GeneratedLog, base: Path, chunk: int, local_rate: float) -> None:
    """The same load from the log in a SQLite store, the log read three ways (`--sqlite`)."""
    store = log.into_sqlite(base / "log.db")
    print(f"\nlake from a SQLite log ({base / 'log.db'}), end to end:")
    ways = {
        "columns read in C": (True, True),
        "rows read in C": (True, False),
        "rows through Python's sqlite3": (False, False),
    }
    try:
        for label, (compiled_reads, columns) in ways.items():
            shutil.rmtree(base / "lake-sqlite", ignore_errors=True)
            with _store_reads(store, compiled_reads, columns):
                seconds, cpu, events, _ = load(store, base / "lake-sqlite", chunk)  # type: ignore[arg-type]
            print(
                f"  {label:<30} {events / seconds:>9,.0f} events/s ({seconds:.1f} s,"
                f" {cpu:.1f} s CPU), {events / seconds / local_rate:.0%} of the in-memory log's"
            )
    finally:
        store.close()


@contextlib.contextmanager
def _store_reads(store: SqliteStore, compiled_reads: bool, columns: bool) -> Iterator[None]:
    """The store's compiled reader off (Python's sqlite3 reads), or its columns (rows read)."""
    from sluice.store import sqlite_read

    real = sqlite_read._sqlite_read
    if not compiled_reads:
        sqlite_read._sqlite_read = None
    if not columns:
        store.read_columns = lambda seq, limit: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        sqlite_read._sqlite_read = real
        vars(store).pop("read_columns", None)


def load_to_s3(log: GeneratedLog, local: Path, chunk: int, local_rate: float) -> None:
    """The same load into a lake in a bucket of a moto server started here."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
    from s3server import start_s3_server
    from sluice.lake.objectstorage import ObjectLakeStorage

    server = start_s3_server()
    try:
        bucket = server.new_bucket()
        storage = ObjectLakeStorage(server.client(bucket, prefix="lake"), local)
        seconds, cpu, events, rows = load(log, local, chunk, storage)
        rate = events / seconds
        print(
            f"\nlake in a bucket (moto on loopback, {server.endpoint_url}): {events:,} events ->"
            f" {rows:,} rows"
        )
        print(f"  end to end  {rate:>9,.0f} events/s ({seconds:.1f} s, {cpu:.1f} s CPU)")
        print(f"  against the local lake in this run: {rate / local_rate:.0%}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
