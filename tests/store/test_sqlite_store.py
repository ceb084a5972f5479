"""The embedded SQLite store: the log, rejections, counters, cursors and the control plane."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from sluice.config import Settings
from sluice.store.base import (
    AppendBatch,
    ConfigObject,
    EventQuery,
    NewEvent,
    Rejection,
    SourceRow,
)
from sluice.store.errors import StoreUnavailable
from sluice.store.factory import open_store
from sluice.store.sqlite import SqliteStore


def now_ms() -> int:
    return int(time.time() * 1000)


def event(
    message_id: str,
    source_id: str = "web",
    type: str = "track",
    name: str | None = "Clicked",
    at: int | None = None,
) -> NewEvent:
    payload = msgspec.json.encode({"type": type, "messageId": message_id, "event": name})
    return NewEvent(source_id, message_id, type, name, now_ms() if at is None else at, payload)


def batch(*events: NewEvent, counters: dict[tuple[str, str], int] | None = None) -> AppendBatch:
    result = AppendBatch(events=list(events))
    for key, value in (counters or {}).items():
        result.count(*key, value)
    return result


def source_counters(store: SqliteStore) -> dict[tuple[str, str], int]:
    """The per-source counters (the store also keeps a few of its own under source "")."""
    return {key: value for key, value in store.counters().items() if key[0]}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "log.db")
    try:
        yield s
    finally:
        s.close()


def source_object(source_id: str, keys: list[str], enabled: bool = True) -> ConfigObject:
    body = {"id": source_id, "name": source_id.title(), "write_keys": keys, "enabled": enabled}
    return ConfigObject("source", source_id, msgspec.json.encode(body))


# --- log ---------------------------------------------------------------------------------------
def test_empty_store(store: SqliteStore) -> None:
    assert store.last_seq() == 0
    assert store.read_after(0, 10) == []
    assert store.newest(EventQuery()) == []
    assert store.counters() == {}
    assert store.rejections(10) == []
    assert store.sources() == []


def test_append_and_read_back_in_order(store: SqliteStore) -> None:
    result = store.append(batch(event("a"), event("b"), event("c")))
    assert (result.stored, result.duplicates) == (3, 0)
    events = store.read_after(0, 10)
    assert [e.message_id for e in events] == ["a", "b", "c"]
    assert [e.seq for e in events] == [1, 2, 3]
    assert store.last_seq() == 3
    first = events[0]
    assert (first.source_id, first.type, first.event) == ("web", "track", "Clicked")
    assert msgspec.json.decode(first.payload)["messageId"] == "a"
    assert [e.message_id for e in store.read_after(1, 1)] == ["b"]
    assert store.read_after(3, 10) == []


def test_append_counts_stored_and_duplicates(store: SqliteStore) -> None:
    store.append(batch(event("a"), event("a"), counters={("web", "received"): 2}))
    store.append(batch(event("a"), event("b", source_id="app")))
    assert source_counters(store) == {
        ("web", "received"): 2,
        ("web", "stored"): 1,
        ("web", "duplicates"): 2,
        ("app", "stored"): 1,
    }
    assert [e.message_id for e in store.read_after(0, 10)] == ["a", "b"]


def test_newest_filters(store: SqliteStore) -> None:
    store.append(
        batch(
            event("1", source_id="web", type="track", name="Signed Up"),
            event("2", source_id="app", type="track", name="Signed Up"),
            event("3", source_id="web", type="identify", name=None),
            event("4", source_id="web", type="track", name="Logged In"),
            event("5", source_id="web", type="track", name="Signed Up"),
        )
    )

    def ids(**kwargs: object) -> list[str]:
        return [e.message_id for e in store.newest(EventQuery(**kwargs))]  # type: ignore[arg-type]

    assert ids() == ["5", "4", "3", "2", "1"]
    assert ids(limit=2) == ["5", "4"]
    assert ids(source_id="app") == ["2"]
    assert ids(type="identify") == ["3"]
    assert ids(event="Signed Up") == ["5", "2", "1"]
    assert ids(source_id="web", event="Signed Up") == ["5", "1"]
    assert ids(after_seq=3) == ["5", "4"]
    assert ids(source_id="nobody") == []


def test_rejections_are_kept_newest_first(store: SqliteStore) -> None:
    at = now_ms()
    store.append(
        AppendBatch(
            rejections=[
                Rejection("web", "missing_event", "track requires event", at, b'{"a":1}'),
                Rejection("app", "invalid_type", "unknown type", at, b'{"b":2}'),
            ],
            counters={("web", "rejected:missing_event"): 1},
        )
    )
    everything = store.rejections(10)
    assert [(r.source_id, r.reason) for r in everything] == [
        ("app", "invalid_type"),
        ("web", "missing_event"),
    ]
    web = store.rejections(10, source_id="web")
    assert len(web) == 1
    assert (web[0].detail, web[0].received_at_ms, web[0].payload) == (
        "track requires event",
        at,
        b'{"a":1}',
    )
    assert len(store.rejections(1)) == 1
    assert source_counters(store) == {("web", "rejected:missing_event"): 1}
    assert store.last_seq() == 0


def test_old_rejections_are_trimmed(tmp_path: Path) -> None:
    keep = 10
    store = SqliteStore(tmp_path / "log.db", keep_rejections=keep)
    try:
        for i in range(250):
            store.append(AppendBatch(rejections=[Rejection("web", "r", str(i), 0, b"{}")]))
        kept = store.rejections(1000)
        assert kept[0].detail == "249"
        assert keep <= len(kept) < keep + 100
    finally:
        store.close()


def test_append_is_atomic(store: SqliteStore) -> None:
    """A failing append leaves no event and no rejection behind, and its ids can be retried."""
    good = Rejection("web", "invalid_type", "", 0, b"{}")
    bad = Rejection("web", None, "", 0, b"")  # type: ignore[arg-type]  # NOT NULL violated
    failing = batch(event("a"), counters={("web", "received"): 1})
    failing.rejections.extend([good, bad])
    with pytest.raises(sqlite3.IntegrityError):
        store.append(failing)
    assert store.last_seq() == 0
    assert store.rejections(10) == []
    assert store.append(batch(event("a"))).stored == 1


def test_counters_of_this_process_are_visible_before_they_are_written(tmp_path: Path) -> None:
    """Counters are written behind the events; `counters()` includes the ones not yet written,
    and closing the store writes them."""
    writer = SqliteStore(tmp_path / "log.db")
    reader = SqliteStore(tmp_path / "log.db")
    try:
        for _ in range(5):
            writer.append(
                batch(event(f"m{time.monotonic_ns()}"), counters={("web", "received"): 1})
            )
        assert writer.counters()[("web", "received")] == 5
        assert reader.counters().get(("web", "received"), 0) <= 5
        writer.close()
        assert reader.counters()[("web", "received")] == 5
        assert reader.counters()[("web", "stored")] == 5
    finally:
        reader.close()


def test_counters_are_written_when_the_writer_is_idle(tmp_path: Path) -> None:
    """An append with no events (the collector's idle tick) writes the held-back counters."""
    writer = SqliteStore(tmp_path / "log.db")
    reader = SqliteStore(tmp_path / "log.db")
    try:
        writer.append(batch(event("a"), counters={("web", "received"): 1}))
        writer.append(batch(event("b"), counters={("web", "received"): 1}))
        writer.append(AppendBatch())
        assert reader.counters()[("web", "received")] == 2
    finally:
        writer.close()
        reader.close()


def test_data_survives_reopening(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path / "log.db")
    first.append(batch(event("a"), counters={("web", "received"): 1}))
    first.commit_cursor("amp", 1)
    first.put_config(source_object("web", ["wk_1"]))
    first.close()
    second = SqliteStore(tmp_path / "log.db")
    try:
        assert [e.message_id for e in second.read_after(0, 10)] == ["a"]
        assert second.counters()[("web", "received")] == 1
        assert second.get_cursor("amp") == 1
        assert [s.id for s in second.sources()] == ["web"]
    finally:
        second.close()


def test_the_log_is_in_wal_mode(store: SqliteStore) -> None:
    db = sqlite3.connect(store.path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


# --- cursors -----------------------------------------------------------------------------------
def test_cursors(store: SqliteStore) -> None:
    assert store.get_cursor("amp") == 0
    store.commit_cursor("amp", 5)
    store.commit_cursor("s3", 2)
    store.commit_cursor("amp", 7)
    assert (store.get_cursor("amp"), store.get_cursor("s3")) == (7, 2)


# --- control plane -----------------------------------------------------------------------------
def test_config_version_changes_with_every_write(store: SqliteStore) -> None:
    v0 = store.config_version()
    store.put_config(source_object("web", ["wk_1"]))
    v1 = store.config_version()
    store.replace_config([source_object("app", ["wk_2"])])
    v2 = store.config_version()
    assert len({v0, v1, v2}) == 3


def test_put_and_list_config(store: SqliteStore) -> None:
    store.put_config(source_object("web", ["wk_1"]))
    store.put_config(ConfigObject("destination", "amp", b'{"type":"amplitude"}'))
    store.put_config(source_object("web", ["wk_1", "wk_1b"]))  # an update, not a second row
    assert [(o.kind, o.id) for o in store.list_config()] == [
        ("destination", "amp"),
        ("source", "web"),
    ]
    assert [o.id for o in store.list_config("source")] == ["web"]
    assert store.sources() == [SourceRow("web", "Web", ("wk_1", "wk_1b"), True)]


def test_replace_config_holds_exactly_the_given_objects(store: SqliteStore) -> None:
    store.put_config(source_object("web", ["wk_1"]))
    store.put_config(ConfigObject("destination", "amp", b"{}"))
    store.replace_config([source_object("app", ["wk_2"], enabled=False)])
    assert [(o.kind, o.id) for o in store.list_config()] == [("source", "app")]
    assert store.sources() == [SourceRow("app", "App", ("wk_2",), False)]


def test_replace_config_is_atomic(store: SqliteStore) -> None:
    store.put_config(source_object("web", ["wk_1"]))
    version = store.config_version()
    broken = ConfigObject("source", None, b"{}")  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError):
        store.replace_config([source_object("app", ["wk_2"]), broken])
    assert [o.id for o in store.list_config()] == ["web"]
    assert store.config_version() == version


# --- factory -----------------------------------------------------------------------------------
def test_open_store_uses_the_data_dir(tmp_path: Path) -> None:
    store = open_store(Settings(data_dir=tmp_path / "nested" / "data"))
    try:
        store.append(batch(event("a")))
    finally:
        store.close()
    assert (tmp_path / "nested" / "data" / "log.db").exists()


def test_open_store_with_a_database_url_is_not_built_yet(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="PostgreSQL"):
        open_store(Settings(data_dir=tmp_path, database_url="postgresql://localhost/sluice"))


def test_unopenable_path_raises_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "log.db").mkdir()  # a directory where the database file should be
    with pytest.raises(StoreUnavailable, match="cannot open"):
        SqliteStore(tmp_path / "log.db")
