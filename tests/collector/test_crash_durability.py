"""A 200 means the events are on disk: kill the server with SIGKILL under concurrent load, and
every acknowledged messageId must be in the log; after a restart, re-sent batches store nothing.

The server runs with its default number of worker processes, so this also covers several
processes appending to one log (and deduplicating across each other).
"""

from __future__ import annotations

import http.client
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from server import WRITE_KEY, SluiceServer, StartServer, basic, wait_for
from sluice.store.sqlite import SqliteStore

SENDERS = 8
BATCH_SIZE = 20
SUCCESS = b'{"success":true}'
HEADERS = {"Content-Type": "application/json", "Authorization": basic(WRITE_KEY)}


def batch_body(message_ids: list[str]) -> bytes:
    items = [
        {"type": "track", "userId": "u1", "event": "Crash Test", "messageId": m}
        for m in message_ids
    ]
    return msgspec.json.encode({"batch": items, "sentAt": "2024-01-01T00:00:00.000Z"})


class Load:
    """Senders posting batches of fresh messageIds on keep-alive connections."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.acked: list[list[str]] = []  # batches answered 200
        self.failed = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send) for _ in range(SENDERS)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        assert not any(t.is_alive() for t in self._threads)

    @property
    def acked_ids(self) -> list[str]:
        with self._lock:
            return [m for batch in self.acked for m in batch]

    def _send(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            while not self.stop.is_set():
                ids = [f"crash-{uuid.uuid4()}" for _ in range(BATCH_SIZE)]
                try:
                    conn.request("POST", "/v1/batch", batch_body(ids), HEADERS)
                    res = conn.getresponse()
                    body = res.read()
                except (OSError, http.client.HTTPException):
                    with self._lock:
                        self.failed += 1
                    conn.close()
                    time.sleep(0.01)
                    continue
                if res.status == 200 and body == SUCCESS:
                    with self._lock:
                        self.acked.append(ids)
        finally:
            conn.close()


def logged_ids(data_dir: Path) -> Counter[str]:
    store = SqliteStore(data_dir / "log.db")
    try:
        return Counter(e.message_id for e in store.read_after(0, 10_000_000))
    finally:
        store.close()


@pytest.fixture
def crashed(start_server: StartServer) -> Iterator[tuple[SluiceServer, Load]]:
    """A server SIGKILLed while 8 senders were posting to it."""
    server = start_server()
    with Load(server.port) as load:
        wait_for(lambda: len(load.acked) >= 40, timeout=30, what="40 acknowledged batches")
        time.sleep(0.5)  # keep the load on for a while longer, then crash mid-flight
        server.kill()
        wait_for(lambda: load.failed >= SENDERS, timeout=10, what="senders to see the crash")
    yield server, load


def test_every_acknowledged_event_survives_sigkill(crashed: tuple[SluiceServer, Load]) -> None:
    server, load = crashed
    acked = load.acked_ids
    logged = logged_ids(server.data_dir)
    missing = [m for m in acked if m not in logged]
    assert missing == [], f"{len(missing)} of {len(acked)} acknowledged events were lost"
    assert max(logged.values()) == 1  # and none is stored twice


def test_resending_acknowledged_batches_after_a_restart_stores_nothing(
    crashed: tuple[SluiceServer, Load], start_server: StartServer
) -> None:
    server, load = crashed
    before = logged_ids(server.data_dir)
    restarted = start_server(data_dir=server.data_dir)
    batches = load.acked[:40]
    statuses: list[int] = []
    lock = threading.Lock()

    def resend() -> None:
        for ids in batches:
            res = restarted.request("POST", "/v1/batch", batch_body(ids), HEADERS)
            with lock:
                statuses.append(res.status)

    # Every batch goes in from all senders at once: concurrent duplicates, across processes.
    threads = [threading.Thread(target=resend) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200] * (SENDERS * len(batches))
    assert logged_ids(server.data_dir) == before

    # New events are still stored, exactly once.
    fresh = [f"after-{uuid.uuid4()}" for _ in range(BATCH_SIZE)]
    for _ in range(3):
        res = restarted.request("POST", "/v1/batch", batch_body(fresh), HEADERS)
        assert res.status == 200
    after = logged_ids(server.data_dir)
    assert [after[m] for m in fresh] == [1] * BATCH_SIZE
    assert sum(after.values()) == sum(before.values()) + BATCH_SIZE


def test_concurrent_duplicates_are_stored_once(start_server: StartServer) -> None:
    """The same batches posted by many senders at once, to several worker processes."""
    server = start_server({"SLUICE_WORKERS": "2"})
    batches = [[f"dup-{uuid.uuid4()}" for _ in range(BATCH_SIZE)] for _ in range(10)]
    statuses: list[int] = []
    lock = threading.Lock()

    def send_all() -> None:
        for ids in batches:
            res = server.request("POST", "/v1/batch", batch_body(ids), HEADERS)
            with lock:
                statuses.append(res.status)

    threads = [threading.Thread(target=send_all) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200] * (SENDERS * len(batches))
    logged = logged_ids(server.data_dir)
    assert sorted(logged) == sorted(m for ids in batches for m in ids)
    assert set(logged.values()) == {1}


def test_graceful_stop_keeps_events_and_counters(start_server: StartServer) -> None:
    server = start_server()
    sent = 0
    for _ in range(20):
        ids = [f"term-{uuid.uuid4()}" for _ in range(BATCH_SIZE)]
        assert server.request("POST", "/v1/batch", batch_body(ids), HEADERS).status == 200
        sent += BATCH_SIZE
    server.stop()  # SIGTERM: the server drains and closes the store
    store = SqliteStore(server.data_dir / "log.db")
    try:
        assert store.last_seq() == sent
        counters = store.counters()
        assert counters[("web", "received")] == sent
        assert counters[("web", "stored")] == sent
    finally:
        store.close()
