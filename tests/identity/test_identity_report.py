"""The identity consumer's report (identity/report.py): the graph's counters and identity.db's
checkpoints reach the store's unit stats, hence `/metrics` and `sluice status`; a checkpoint
that starts failing is reported at once, not at the next period, and logged once."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import msgspec
import pytest
from identity_kit import SPACE

from sluice.identity.consumer import IdentityConsumer
from sluice.identity.report import IdentityReporter, identity_report
from sluice.identity.rules import rules_from
from sluice.identity.tables import SqliteIdentityDb
from sluice.metrics.cluster import ClusterCollector
from sluice.store.base import AppendBatch, NewEvent
from sluice.store.sqlite import SqliteStore


def _samples(store: SqliteStore) -> dict[str, float]:
    return {
        s.name: s.value
        for family in ClusterCollector(store).collect()  # type: ignore[arg-type]
        for s in family.samples
        if s.name.startswith("sluice_identity_") and s.labels.get("space") == SPACE
    }


def test_failing_checkpoints_are_reported_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteStore(tmp_path / "log.db")
    store.append(AppendBatch(events=[
        NewEvent("web", f"m{i}", "identify", None, 1_765_000_000_000 + i, msgspec.json.encode(
            {"type": "identify", "messageId": f"m{i}", "anonymousId": f"a{i % 7}",
             "userId": f"u{i % 5}"}))
        for i in range(60)
    ]))  # fmt: skip
    db = SqliteIdentityDb(tmp_path / "identity.db", background_checkpoints=True)
    checkpointer = db.checkpointer
    assert checkpointer is not None
    try:
        consumer = IdentityConsumer(store, db, SPACE, rules_from(None), step_events=10)
        consumer.prepare()
        consumer.run_until_caught_up()
        reporter = IdentityReporter(store, db)
        assert reporter.report(SPACE, force=True)
        assert not reporter.report(SPACE)  # within the period, nothing changed: no write
        [graph] = identity_report(store, store.last_seq()).values()
        position = db.execute("SELECT seq, merges FROM identity_position")[0]
        assert (graph["position"], graph["lag"], graph["merges"]) == (60, 0, position[1])
        before = _samples(store)
        assert before["sluice_identity_position"] == 60
        assert before["sluice_identity_wal_checkpoint_failures_total"] == 0

        # The thread's connection gone: each of its checkpoints now fails, and is retried.
        with caplog.at_level(logging.INFO, logger="sluice.identity.checkpoint"):
            # Closed between two of its checkpoints: closing a connection while another thread
            # runs a statement on it crashed the process (a segfault in a suite run).
            with checkpointer._lock:
                checkpointer.conn.close()
            deadline = time.monotonic() + 10
            while checkpointer.failures < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert checkpointer.failures >= 3
            assert reporter.report(SPACE)  # failing now: reported before the period ends
        failed = [r for r in caplog.records if "checkpoint failed" in r.getMessage()]
        assert len(failed) == 1 and failed[0].levelno == logging.ERROR
        [graph] = identity_report(store, store.last_seq()).values()
        assert graph["wal_checkpoint_failing"] is True
        assert graph["wal_checkpoint_failures"] >= 3
        after = _samples(store)
        assert after["sluice_identity_wal_checkpoint_failures_total"] >= 3
    finally:
        db.close()
        store.close()
