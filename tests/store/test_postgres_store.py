"""What only the PostgreSQL store does: several nodes on one database. Deduplication across
nodes, the read horizon under concurrent and late commits, migrations started at once,
partitioned retention, and errors that name the server.

Each test gets a fresh database (see conftest.py); skipped when PostgreSQL is unreachable.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from store_kit import batch, event, now_ms

from sluice.config import Settings
from sluice.store.base import StoredEvent
from sluice.store.base_event_store import AppendResult, EventQuery, Rejection
from sluice.store.errors import StoreUnavailable
from sluice.store.factory import open_store
from sluice.store.postgres import PostgresStore
from sluice.store.postgres_append import APPEND_LOCK_SQL
from sluice.store.postgres_schema import HORIZON_LOCK_BASE, MIGRATIONS, partitions

_INSERT_ONE = (
    "INSERT INTO events (source_id, message_id, type, event, received_at, payload)"
    " VALUES ('web', %s, 'track', 'Clicked', %s, '\\x7b7d')"
)


@pytest.fixture
def nodes(pg_url: str) -> Iterator[list[PostgresStore]]:
    """Three stores on one database, as three nodes would have."""
    opened = [PostgresStore(pg_url) for _ in range(3)]
    try:
        yield opened
    finally:
        for node in opened:
            node.close()


def begin_append(
    url: str, message_id: str, *, lock: bool = True, at: int | None = None
) -> psycopg.Connection[Any]:
    """An appender doing the store's steps by hand (lock, then allocate and insert), stopped
    before COMMIT; `lock=False` leaves out the step that holds readers back."""
    conn = psycopg.connect(url)  # not autocommit: everything below is one transaction
    if lock:
        conn.execute(APPEND_LOCK_SQL, (HORIZON_LOCK_BASE,))
    conn.execute(_INSERT_ONE, (message_id, now_ms() if at is None else at))
    return conn


def seqs_and_ids(events: list[StoredEvent]) -> list[tuple[int, str]]:
    return [(e.seq, e.message_id) for e in events]


def follow(store: PostgresStore, until: int, timeout_s: float = 10.0) -> list[StoredEvent]:
    """Read the log as a consumer does (from a cursor) until `until` events were seen."""
    seen: list[StoredEvent] = []
    cursor = 0
    deadline = time.monotonic() + timeout_s
    while len(seen) < until and time.monotonic() < deadline:
        got = store.read_after(cursor, 2)
        if got:
            seen.extend(got)
            cursor = got[-1].seq
        else:
            time.sleep(0.01)
    return seen


# --- the factory and errors --------------------------------------------------------------------
def test_open_store_uses_postgres_for_a_database_url(tmp_path: Path, pg_url: str) -> None:
    store = open_store(Settings(data_dir=tmp_path, database_url=pg_url, dedupe_window_s=60))
    try:
        assert isinstance(store, PostgresStore)
        store.append(batch(event("a")))
        assert [e.message_id for e in store.read_after(0, 10)] == ["a"]
    finally:
        store.close()
    assert not (tmp_path / "log.db").exists()


def test_a_url_that_is_not_postgres_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="postgresql://"):
        open_store(Settings(data_dir=tmp_path, database_url="mysql://root:pw@localhost/sluice"))


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("postgresql://sluice:s3cret-pw@127.0.0.1:1/sluice", "127.0.0.1:1/sluice"),
        ("postgresql://postgres:s3cret-pw@127.0.0.1:5432/no_such_db_x", "5432/no_such_db_x"),
        ("postgresql://sluice:s3cret-pw@127.0.0.1:port/sluice", "127.0.0.1:port/sluice"),
        ("postgresql://sluice:s3cret-pw@[::1/sluice", "not a valid PostgreSQL URL"),
    ],
    ids=["refused", "no-database", "bad-port", "malformed"],
)
def test_connection_errors_name_the_server_never_the_password(
    pg_admin: psycopg.Connection[Any], url: str, named: str
) -> None:
    with pytest.raises(StoreUnavailable) as caught:
        PostgresStore(url)
    assert named in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)


# --- deduplication -----------------------------------------------------------------------------
def test_duplicates_are_caught_across_nodes(nodes: list[PostgresStore]) -> None:
    a, b, _ = nodes
    assert a.append(batch(event("m1"), event("m2"))).stored == 2
    result = b.append(batch(event("m2"), event("m3")))
    assert (result.stored, result.duplicates) == (1, 1)
    assert [e.message_id for e in a.read_after(0, 10)] == ["m1", "m2", "m3"]


def test_concurrent_nodes_store_each_id_once(nodes: list[PostgresStore]) -> None:
    """Three nodes append the same ids at once, in different orders and groupings."""
    ids = [f"id{i:04d}" for i in range(600)]
    results: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def run(node: PostgresStore, seed: int) -> None:
        rng = random.Random(seed)
        mine = ids[:]
        rng.shuffle(mine)
        try:
            while mine:
                size = rng.randint(1, 80)
                group, mine = mine[:size], mine[size:]
                r = node.append(batch(*(event(i) for i in group)))
                results.append((r.stored, r.duplicates))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n, s)) for s, n in enumerate(nodes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(s for s, _ in results) == 600
    assert sum(d for _, d in results) == 1200
    stored = nodes[0].read_after(0, 10_000)
    assert sorted(e.message_id for e in stored) == ids


def test_expired_ids_are_swept(pg_url: str) -> None:
    store = PostgresStore(pg_url, dedupe_window_s=60)
    try:
        store.append(batch(event("old", at=now_ms() - 3 * 3_600_000), event("new")))
        assert store.sweep_expired_ids() == 1
        with psycopg.connect(pg_url) as conn:
            assert conn.execute("SELECT message_id FROM seen_ids").fetchall() == [("new",)]
        assert store.append(batch(event("new"))).duplicates == 1
    finally:
        store.close()


# --- the read horizon --------------------------------------------------------------------------
def test_a_late_commit_holds_back_later_events(pg_url: str) -> None:
    """T1 takes seq 2 and sleeps before COMMIT; T2 takes 3 and 4 and commits. Readers see
    nothing past 1 until T1 commits, then everything in order: a consumer skips nothing."""
    store = PostgresStore(pg_url)
    try:
        store.append(batch(event("first")))
        allocated, committed = threading.Event(), threading.Event()

        def slow_writer() -> None:
            with begin_append(pg_url, "slow") as conn:
                allocated.set()
                time.sleep(1.0)
                conn.commit()
                committed.set()

        writer = threading.Thread(target=slow_writer)
        writer.start()
        assert allocated.wait(10)
        store.append(batch(event("third"), event("fourth")))
        consumed = follow(store, until=4)  # runs while T1 sleeps, and on after it commits
        assert committed.is_set()
        writer.join()
        expected = [(1, "first"), (2, "slow"), (3, "third"), (4, "fourth")]
        assert seqs_and_ids(consumed) == expected
        assert seqs_and_ids(store.read_after(0, 10)) == expected
    finally:
        store.close()


def test_a_store_append_that_commits_late_holds_back_later_ones(
    pg_url: str, nodes: list[PostgresStore]
) -> None:
    """The late writer is the store itself: its append has inserted its event and then waits
    on a table lock (held by the test) before it can commit."""
    slow_node, fast_node, reader = nodes
    blocker = psycopg.connect(pg_url)
    blocker.execute("LOCK TABLE rejections IN EXCLUSIVE MODE")
    slow = batch(event("slow"))
    slow.rejections.append(Rejection("web", "invalid_type", "", now_ms(), b"{}"))
    results: list[AppendResult] = []
    writer = threading.Thread(target=lambda: results.append(slow_node.append(slow)))
    writer.start()
    try:
        with psycopg.connect(pg_url, autocommit=True) as watch:
            waiting = "SELECT count(*) FROM pg_locks WHERE relation = 'rejections'::regclass"
            deadline = time.monotonic() + 10
            while watch.execute(waiting + " AND NOT granted").fetchone() != (1,):
                assert time.monotonic() < deadline
                time.sleep(0.01)
        fast_node.append(batch(event("fast")))
        assert reader.read_after(0, 10) == []
        assert reader.last_seq() == 0
    finally:
        blocker.commit()
        blocker.close()
        writer.join(10)
    assert results == [AppendResult(stored=1, duplicates=0)]
    assert seqs_and_ids(reader.read_after(0, 10)) == [(1, "slow"), (2, "fast")]


def test_readers_stop_below_an_open_append(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    try:
        store.append(batch(event("first")))
        open_append = begin_append(pg_url, "open")
        store.append(batch(event("third")))
        assert [e.message_id for e in store.read_after(0, 10)] == ["first"]
        assert store.read_after(1, 10) == []
        assert store.last_seq() == 1  # where a new consumer starts: nothing in flight below
        assert [e.message_id for e in store.newest(EventQuery())] == ["first"]
        open_append.commit()
        open_append.close()
        assert [e.message_id for e in store.read_after(1, 10)] == ["open", "third"]
        assert store.last_seq() == 3
    finally:
        store.close()


def test_without_the_lock_a_reader_would_skip_the_late_event(pg_url: str) -> None:
    """The control for the tests above: an appender that skips the lock step is invisible to
    the horizon, so a consumer moves past its seq and never sees it."""
    store = PostgresStore(pg_url)
    try:
        unlocked = begin_append(pg_url, "unlocked", lock=False)  # seq 1
        store.append(batch(event("later")))  # seq 2
        consumed = store.read_after(0, 10)
        assert seqs_and_ids(consumed) == [(2, "later")]
        unlocked.commit()
        unlocked.close()
        assert store.read_after(consumed[-1].seq, 10) == []  # seq 1 is behind the cursor
    finally:
        store.close()


def test_a_rolled_back_append_does_not_hold_the_log_back(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    try:
        doomed = begin_append(pg_url, "doomed")  # seq 1
        store.append(batch(event("kept")))  # seq 2
        assert store.read_after(0, 10) == []
        doomed.rollback()
        doomed.close()
        assert seqs_and_ids(store.read_after(0, 10)) == [(2, "kept")]
    finally:
        store.close()


_KILLED_APPENDER = """
import sys, time, psycopg
from sluice.store.postgres_append import APPEND_LOCK_SQL
from sluice.store.postgres_schema import HORIZON_LOCK_BASE
conn = psycopg.connect(sys.argv[1])
conn.execute(APPEND_LOCK_SQL, (HORIZON_LOCK_BASE,))
conn.execute(sys.argv[2], ("killed", 0))
print("allocated", flush=True)
time.sleep(60)
"""


def test_a_killed_appender_does_not_hold_the_log_back(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_APPENDER, pg_url, _INSERT_ONE],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "allocated"
        store.append(batch(event("after")))
        assert store.read_after(0, 10) == []
        proc.kill()
        proc.wait(10)
        consumed = follow(store, until=1)
        assert [e.message_id for e in consumed] == ["after"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
        store.close()


def test_consumers_miss_nothing_while_many_appenders_commit_out_of_order(
    pg_url: str, nodes: list[PostgresStore]
) -> None:
    """Nodes append groups while hand-made appenders hold their transactions open for random
    times (a third roll back); a consumer following the log sees every committed event once,
    in order."""
    done = threading.Event()
    errors: list[BaseException] = []

    def node_writer(node: PostgresStore, name: str) -> None:
        try:
            for i in range(30):
                node.append(batch(*(event(f"{name}-{i}-{j}") for j in range(1 + i % 7))))
                time.sleep(random.random() * 0.01)
        except BaseException as exc:
            errors.append(exc)

    def slow_writer(name: str) -> None:
        rng = random.Random(name)
        try:
            for i in range(12):
                with begin_append(pg_url, f"{name}-{i}") as conn:
                    time.sleep(rng.random() * 0.08)
                    if i % 3 == 0:
                        conn.rollback()
                    else:
                        conn.commit()
        except BaseException as exc:
            errors.append(exc)

    consumed: list[StoredEvent] = []

    def consumer() -> None:
        cursor = 0
        while True:
            finished = done.is_set()  # read before the last pass, so that it drains
            got = nodes[0].read_after(cursor, 5)
            consumed.extend(got)
            if got:
                cursor = got[-1].seq
            elif finished:
                return
            else:
                time.sleep(0.002)

    writers = [threading.Thread(target=node_writer, args=(n, f"n{k}")) for k, n in enumerate(nodes)]
    writers += [threading.Thread(target=slow_writer, args=(f"s{k}",)) for k in range(2)]
    reader = threading.Thread(target=consumer)
    reader.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    reader.join(30)
    assert errors == []
    with psycopg.connect(pg_url) as conn:
        committed = [int(s) for (s,) in conn.execute("SELECT seq FROM events ORDER BY seq")]
    got = [e.seq for e in consumed]
    assert got == committed  # in order, none skipped, none twice
    assert len(got) == 3 * sum(1 + i % 7 for i in range(30)) + 2 * 8


# --- migrations --------------------------------------------------------------------------------
_STARTER = """
import pathlib, sys, time
from sluice.store.postgres import PostgresStore
go = pathlib.Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.002)
PostgresStore(sys.argv[1]).close()
"""


def test_nodes_starting_at_once_on_an_empty_database_migrate_it_once(
    pg_url: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _STARTER, pg_url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with psycopg.connect(pg_url) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
        assert versions == [v for v, _ in MIGRATIONS]
        assert [p.name for p in partitions(conn)] == ["events_p0", "events_p1000000"]


def test_the_first_nodes_partition_span_wins(pg_url: str) -> None:
    PostgresStore(pg_url, partition_span=10).close()
    store = PostgresStore(pg_url, partition_span=1000)
    try:
        store.append(batch(*(event(f"e{i}") for i in range(25))))
        with psycopg.connect(pg_url) as conn:
            spans = {p.hi - p.lo for p in partitions(conn)}
            assert spans == {10}
            assert len(conn.execute("SELECT * FROM schema_version").fetchall()) == len(MIGRATIONS)
    finally:
        store.close()


# --- partitions and retention ------------------------------------------------------------------
def test_partitions_are_made_ahead_of_the_log(pg_url: str) -> None:
    store = PostgresStore(pg_url, partition_span=10)
    try:
        with psycopg.connect(pg_url) as conn:
            assert [(p.lo, p.hi) for p in partitions(conn)] == [(0, 10), (10, 20)]
        store.append(batch(*(event(f"e{i}") for i in range(15))))  # into the last partition
        deadline = time.monotonic() + 10
        with psycopg.connect(pg_url, autocommit=True) as conn:
            while partitions(conn)[-1].hi < 30 and time.monotonic() < deadline:
                time.sleep(0.05)  # the maintenance thread adds the next one
            assert partitions(conn)[-1].hi >= 30
        store.append(batch(*(event(f"f{i}") for i in range(40))))  # far past: made on the spot
        assert [e.seq for e in store.read_after(0, 100)] == list(range(1, 56))
    finally:
        store.close()


def test_trim_drops_whole_partitions_and_keeps_the_rest(pg_url: str) -> None:
    store = PostgresStore(pg_url, partition_span=10)
    try:
        old, new = now_ms() - 10 * 86_400_000, now_ms()
        for group in range(5):  # seqs 1..25, received long ago
            store.append(batch(*(event(f"o{group}-{i}", at=old) for i in range(5))))
        store.append(batch(*(event(f"n{i}", at=new) for i in range(5))))  # seqs 26..30
        assert [e.seq for e in store.read_after(0, 100)] == list(range(1, 31))

        # 1..9 and 10..19 go; 20..29 is only partly at or below 25 and stays.
        assert store.trim_log(25, new - 86_400_000) == 19
        assert store.read_after(0, 100)[0].seq == 20
        # 20..29 holds recent events: it stays, and so does everything after it.
        assert store.trim_log(29, new - 86_400_000) == 0
        assert store.trim_log(29, new + 1) == 10
        assert [e.seq for e in store.read_after(0, 100)] == [30]
        # Past the log's end: empty partitions ahead of it stay, and appends go on.
        assert store.trim_log(10**9, new + 1) == 0
        store.append(batch(event("after")))
        assert [e.seq for e in store.read_after(0, 100)] == [30, 31]
        with psycopg.connect(pg_url) as conn:
            assert partitions(conn)[0].lo == 30
    finally:
        store.close()


def test_trim_never_passes_an_open_append(pg_url: str) -> None:
    store = PostgresStore(pg_url, partition_span=10)
    try:
        store.append(batch(*(event(f"e{i}", at=0) for i in range(8))))  # seqs 1..8
        open_append = begin_append(pg_url, "open", at=0)  # seq 9, in the first partition
        store.append(batch(*(event(f"f{i}", at=0) for i in range(5))))  # 10..14
        trimmed: list[int] = []
        trim = threading.Thread(target=lambda: trimmed.append(store.trim_log(19, 1)))
        trim.start()
        trim.join(5)  # a trim that went for partition 0..9 would wait for the open append
        done_while_open = not trim.is_alive()
        open_append.commit()
        open_append.close()
        trim.join(30)
        assert done_while_open
        assert trimmed == [0]  # the horizon is 8: partition 0..9 may still grow
        assert store.trim_log(19, 1) == 9
    finally:
        store.close()


def test_trim_waits_for_readers_and_never_blocks_appends(pg_url: str) -> None:
    store = PostgresStore(pg_url, partition_span=10)
    try:
        store.append(batch(*(event(f"o{i}", at=0) for i in range(15))))
        long_reader = psycopg.connect(pg_url)
        long_reader.execute("SELECT count(*) FROM events")  # holds its locks until it ends
        trimmed: list[int] = []
        trim = threading.Thread(target=lambda: trimmed.append(store.trim_log(12, now_ms())))
        trim.start()
        time.sleep(0.5)
        assert trim.is_alive()  # DETACH ... CONCURRENTLY waits for the reader
        started = time.monotonic()
        assert store.append(batch(*(event(f"n{i}") for i in range(5)))).stored == 5
        assert len(store.read_after(9, 100)) == 11
        assert time.monotonic() - started < 2.0
        long_reader.commit()
        long_reader.close()
        trim.join(30)
        assert trimmed == [9]
    finally:
        store.close()


DETACHING = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    " AND query LIKE 'ALTER TABLE events DETACH%' AND wait_event_type = 'Lock'"
)


def trim_in_thread(store: PostgresStore) -> tuple[threading.Thread, list[int | BaseException]]:
    """`store.trim_log(12, now)` started in a thread; its result or exception lands in the list."""
    results: list[int | BaseException] = []

    def trim() -> None:
        try:
            results.append(store.trim_log(12, now_ms()))
        except BaseException as exc:
            results.append(exc)

    trimming = threading.Thread(target=trim)
    trimming.start()
    return trimming, results


def detach_left_pending(store: PostgresStore, pg_url: str) -> psycopg.Connection[Any]:
    """A trim whose DETACH ... CONCURRENTLY is cancelled while it waits for a reader: its first
    partition stays "detach pending" (the log's 15 events, partitions of 10). Returns the
    reader, its transaction (and snapshot) still open."""
    store.append(batch(*(event(f"o{i}", at=0) for i in range(15))))
    long_reader = psycopg.connect(pg_url)
    long_reader.execute("SELECT count(*) FROM events")
    trimming, failures = trim_in_thread(store)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        deadline = time.monotonic() + 10
        # Cancelled only once its first phase has committed "detach pending" and it waits
        # for the long reader: a cancel before that leaves nothing pending.
        while not (pids := admin.execute(DETACHING).fetchall()) or not any(
            p.detach_pending for p in partitions(admin)
        ):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        admin.execute("SELECT pg_cancel_backend(%s)", pids[0])
        trimming.join(10)
        assert [type(e) for e in failures] == [psycopg.errors.QueryCanceled]
        assert [p.detach_pending for p in partitions(admin)][:2] == [True, False]
    return long_reader


def test_a_trim_interrupted_half_way_is_finished_by_the_next(pg_url: str) -> None:
    """A DETACH ... CONCURRENTLY cancelled while it waits leaves its partition "detach pending";
    the next trim finalizes and drops it, and the log is whole on both sides of it."""
    store = PostgresStore(pg_url, partition_span=10)
    try:
        long_reader = detach_left_pending(store, pg_url)
        long_reader.commit()
        long_reader.close()
        assert store.trim_log(12, now_ms()) == 0  # finalized and dropped, not counted again
        with psycopg.connect(pg_url) as conn:
            assert partitions(conn)[0].lo == 10
        assert [e.seq for e in store.read_after(0, 100)] == list(range(10, 16))
        store.append(batch(event("after")))
        assert [e.seq for e in store.read_after(15, 100)] == [16]
    finally:
        store.close()


def test_a_finalize_cancelled_to_break_a_deadlock_is_tried_again(pg_url: str) -> None:
    """`DETACH ... FINALIZE` waits for older snapshots while it holds its lock on `events`; a
    session with such a snapshot that then asks for that lock (as another node's partition
    maintenance can) closes a cycle, and PostgreSQL cancels the one that waited first: the
    trim. It finishes on another pass (seen failing with a deadlock in a suite run)."""
    store = PostgresStore(pg_url, partition_span=10)
    try:
        other = detach_left_pending(store, pg_url)  # its snapshot: FINALIZE waits for it
        trimming, results = trim_in_thread(store)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            deadline = time.monotonic() + 10
            while not admin.execute(DETACHING).fetchall():
                assert time.monotonic() < deadline
                time.sleep(0.01)
        started = time.monotonic()
        # Waits until PostgreSQL breaks the cycle (deadlock_timeout) by cancelling FINALIZE.
        other.execute("LOCK TABLE events IN SHARE UPDATE EXCLUSIVE MODE")
        waited = time.monotonic() - started
        other.commit()
        other.close()
        trimming.join(30)
        assert waited > 0.5  # the lock waited for the deadlock to be broken: there was one
        assert results == [0]  # finalized on the next pass (not counted, as above)
        with psycopg.connect(pg_url) as conn:
            first = partitions(conn)[0]
            assert (first.lo, first.detach_pending) == (10, False)
        assert [e.seq for e in store.read_after(0, 100)] == list(range(10, 16))
    finally:
        store.close()
