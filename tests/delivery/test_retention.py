"""Log retention: the trim only drops what every consumer has passed and retention allows."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from ports import free_port
from sluice.config import Settings
from sluice.delivery.retention import DAY_MS, RetentionWaits, trim_once
from sluice.store.base import AppendBatch, ConfigObject, NewEvent
from sluice.store.base_delivery import DeliveryCommit, RetryRow
from sluice.store.sqlite import SqliteStore

NOW_MS = 1_800_000_000_000


def _store(tmp_path: Path, days_old: list[float], identity: bool = False) -> SqliteStore:
    """A log of events that old (in days); the identity graph off unless asked (tested below)."""
    store = SqliteStore(tmp_path / "log.db", dedupe_window_s=1)
    batch = AppendBatch()
    for i, age in enumerate(days_old):
        received = NOW_MS - int(age * DAY_MS)
        batch.events.append(NewEvent("web", f"m{i}", "track", "E", received, b"{}"))
    store.append(batch)
    body = msgspec.json.encode({"enabled": identity})
    store.put_config(ConfigObject("identity", "identity", body))
    return store


def _destination(store: SqliteStore, dest_id: str, enabled: bool = True) -> None:
    doc = {"id": dest_id, "type": "webhook", "enabled": enabled,
           "settings": {"urls": ["http://127.0.0.1:9/x"]}}  # fmt: skip
    store.put_config(ConfigObject("destination", dest_id, msgspec.json.encode(doc)))


def _settings(tmp_path: Path, days: float = 7, interval_s: float = 0) -> Settings:
    """Loads left to `sluice load` (interval 0) unless given; the warehouse in tmp_path."""
    return Settings(data_dir=tmp_path, log_retention_days=days, warehouse_interval_s=interval_s)


def test_trim_stops_at_the_slowest_consumer_and_the_retention_age(tmp_path: Path) -> None:
    store = _store(tmp_path, [10, 10, 10, 9, 8, 1, 0])  # seqs 1..7
    _destination(store, "fast")
    _destination(store, "slow")
    _destination(store, "off", enabled=False)  # a disabled destination holds nothing back
    store.commit_cursor("archive", 7)
    store.commit_cursor("destination:fast", 7)
    store.commit_cursor("destination:slow", 2)
    assert trim_once(store, _settings(tmp_path), NOW_MS) == 2
    assert [e.seq for e in store.read_after(0, 100)] == [3, 4, 5, 6, 7]
    store.commit_cursor("destination:slow", 7)
    # Seqs 3-5 are older than 7 days; 6 and 7 are not, though every consumer has passed them.
    assert trim_once(store, _settings(tmp_path), NOW_MS) == 3
    assert [e.seq for e in store.read_after(0, 100)] == [6, 7]


def test_a_consumer_without_a_cursor_holds_everything(tmp_path: Path) -> None:
    store = _store(tmp_path, [10, 10])
    _destination(store, "new")
    store.commit_cursor("archive", 2)
    assert trim_once(store, _settings(tmp_path), NOW_MS) == 0
    # With loads in the worker, the (default) warehouse that never loaded holds the log too.
    store.commit_cursor("destination:new", 2)
    assert trim_once(store, _settings(tmp_path, interval_s=60), NOW_MS) == 0
    # Everything may go now; the newest event stays, so that positions are never handed out twice.
    assert trim_once(store, _settings(tmp_path), NOW_MS) == 1
    assert [e.seq for e in store.read_after(0, 10)] == [2]


def test_retention_zero_keeps_the_log(tmp_path: Path) -> None:
    store = _store(tmp_path, [100])
    store.commit_cursor("archive", 1)
    assert trim_once(store, _settings(tmp_path, days=0), NOW_MS) == 0


def test_an_event_in_a_retry_set_is_never_trimmed(tmp_path: Path) -> None:
    store = _store(tmp_path, [10, 10, 10, 10])
    _destination(store, "hook")
    store.commit_cursor("archive", 4)
    store.commit_cursor("destination:hook", 4)  # passed by the cursor, but seq 3 is retrying
    (third,) = [e for e in store.read_after(0, 10) if e.seq == 3]
    row = RetryRow(
        "hook", 3, "send", third.message_id, "web", "track", "E", 0, 0, 1, "retrying", 2, 0,
        NOW_MS, 0, "HTTP 500", b"{}", b"{}", third.payload,
    )  # fmt: skip
    store.commit_delivery(DeliveryCommit("hook", None, 0, -1, NOW_MS, 1, retries=[row]))
    assert trim_once(store, _settings(tmp_path), NOW_MS) == 2
    assert [e.seq for e in store.read_after(0, 100)] == [3, 4]
    store.park_retrying("hook", now_ms=NOW_MS)  # settled: nothing holds it any more
    assert trim_once(store, _settings(tmp_path), NOW_MS) == 1  # the newest (4) always stays
    assert [e.seq for e in store.read_after(0, 100)] == [4]


def test_the_identity_graph_holds_back_what_it_has_not_read(tmp_path: Path) -> None:
    from sluice.identity.consumer import IdentityConsumer
    from sluice.identity.runner import workspace_rules
    from sluice.identity.tables import open_identity_db

    store = _store(tmp_path, [10, 10, 10, 10], identity=True)
    store.commit_cursor("archive", 4)
    settings = _settings(tmp_path)
    assert trim_once(store, settings, NOW_MS) == 0  # the graph never ran: it holds everything
    db = open_identity_db(tmp_path, None)
    try:
        consumer = IdentityConsumer(store, db, *workspace_rules(store), step_events=2)
        consumer.prepare()
        consumer.step()  # seqs 1 and 2
    finally:
        db.close()
    assert trim_once(store, settings, NOW_MS) == 2


def test_engage_holds_back_what_it_has_not_read(tmp_path: Path) -> None:
    """With computed traits defined, Engage (which reads behind the graph) holds the log too."""
    from sluice.engage.consumer import EngageConsumer
    from sluice.engage.runner import workspace_definitions
    from sluice.identity.consumer import IdentityConsumer
    from sluice.identity.runner import workspace_rules
    from sluice.identity.tables import open_identity_db

    store = _store(tmp_path, [10, 10, 10, 10], identity=True)
    for i in range(4):  # events with an id, so the graph has profiles for Engage to count on
        batch = AppendBatch()
        body = msgspec.json.encode({"type": "track", "userId": f"u{i}", "event": "E"})
        batch.events.append(NewEvent("web", f"u{i}", "track", "E", NOW_MS - 10 * DAY_MS, body))
        store.append(batch)
    store.commit_cursor("archive", 8)
    traits = {"computed_traits": [{"key": "events", "kind": "count"}]}
    store.put_config(ConfigObject("engage", "engage", msgspec.json.encode(traits)))
    settings = _settings(tmp_path)
    db = open_identity_db(tmp_path, None)
    try:
        graph = IdentityConsumer(store, db, *workspace_rules(store), step_events=100)
        graph.prepare()
        graph.run_until_caught_up()
        assert trim_once(store, settings, NOW_MS) == 0  # Engage never ran: it holds everything
        engage = EngageConsumer(store, db, *workspace_definitions(store), step_events=3)
        engage.prepare()
        engage.step()
    finally:
        db.close()
    assert 0 < trim_once(store, settings, NOW_MS) <= 3


def test_a_warehouse_out_of_reach_keeps_the_log_and_says_which(tmp_path: Path) -> None:
    """Its position unknown, nothing is trimmed this round, and the error names it (the worker
    logs it once while it lasts: sluice/failure_log.py)."""
    store = _store(tmp_path, [10, 10])
    store.commit_cursor("archive", 2)
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/sluice"
    body = msgspec.json.encode({"id": "pg", "type": "postgres", "settings": {"url": url}})
    store.put_config(ConfigObject("warehouse", "pg", body))
    with pytest.raises(RetentionWaits, match="warehouse pg's position cannot be read"):
        trim_once(store, _settings(tmp_path, interval_s=60), NOW_MS)
    assert [e.seq for e in store.read_after(0, 10)] == [1, 2]
