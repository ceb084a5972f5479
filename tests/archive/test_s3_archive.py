"""The archive on object storage, against a real S3-compatible server (moto's, in a subprocess):
layout, read back, replay, a kill -9 mid-upload, and uploads failing then fixed."""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from recorder import Recorder
from s3server import FaultyProxy, S3Server, s3_server_fixture  # noqa: F401 (the fixture)
from sluice.archive.layout import DAY_MS, logs_dir, parse_file_name
from sluice.archive.reader import ArchiveQuery, archive_location, read_archive
from sluice.archive.replay import Replay, ReplayRequest
from sluice.archive.upload import UPLOAD_UNIT
from sluice.archive.writer import CURSOR, ArchiveWriter
from sluice.config import Settings
from sluice.delivery.sender import new_session
from sluice.objectstore import ObjectStore, ObjectStoreError
from sluice.spec.timestamps import format_ms
from sluice.store.base import AppendBatch, ConfigObject, NewEvent
from sluice.store.sqlite import SqliteStore

DAY = 1_717_200_000_000 - 1_717_200_000_000 % DAY_MS  # 2024-06-01T00:00:00Z
LATER = (DAY + 3 * DAY_MS) / 1000  # a `now` when every file of DAY is due


def s3_settings(tmp_path: Path, server: S3Server, bucket: str, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "archive_storage": "s3",
        "archive_s3_bucket": bucket,
        "archive_s3_prefix": "raw",
        "archive_s3_endpoint_url": server.endpoint_url,
        "archive_s3_region": "us-east-1",
        "archive_s3_access_key_id": server.access_key_id,
        "archive_s3_secret_access_key": server.secret_access_key,
        "archive_s3_path_style": True,
        "archive_max_file_bytes": 20_000,
    }
    values.update(changes)
    return Settings(**values)


def append(store: SqliteStore, n: int, sources: tuple[str, ...] = ("web", "ios")) -> list[str]:
    batch = AppendBatch()
    ids = []
    for i in range(n):
        message_id = f"m-{uuid.uuid4()}"
        received = DAY + i * 1000
        body = {
            "type": "track",
            "event": "Order Completed",
            "messageId": message_id,
            "receivedAt": format_ms(received),
            "properties": {"i": i, "pad": "x" * 200},
        }
        source = sources[i % len(sources)]
        batch.events.append(
            NewEvent(
                source, message_id, "track", "Order Completed", received, msgspec.json.encode(body)
            )
        )
        ids.append(message_id)
    store.append(batch)
    return ids


def bucket_ids(bucket: ObjectStore) -> Counter[str]:
    """How many times each messageId is in the bucket's archive files."""
    seen: Counter[str] = Counter()
    for info in bucket.list("segment-logs/"):
        for line in gzip.decompress(bucket.get(info.key)).splitlines():
            seen[msgspec.json.decode(line)["messageId"]] += 1
    return seen


def drain(settings: Settings, store: SqliteStore) -> ArchiveWriter:
    writer = ArchiveWriter(settings, store)
    while writer.step(now=LATER):
        pass
    writer.close()
    return writer


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "log.db", synchronous="normal")
    try:
        yield s
    finally:
        s.close()


def test_files_land_in_segment_layout_and_read_back(
    s3_server: S3Server, store: SqliteStore, tmp_path: Path
) -> None:
    settings = s3_settings(tmp_path, s3_server, s3_server.new_bucket())
    ids = append(store, 300)
    drain(settings, store)
    bucket = s3_server.client(settings.archive_s3_bucket or "")
    keys = [o.key for o in bucket.list()]
    assert len(keys) > 4  # several files per source: they rotate at 20 kB
    for key in keys:
        prefix, logs, source, day, name = key.split("/")
        assert (prefix, logs, source, day) == ("raw", "segment-logs", source, str(DAY))
        assert source in ("web", "ios") and parse_file_name(name) is not None
    assert bucket_ids(ObjectStore(s3_server.settings(bucket.settings.bucket, prefix="raw"))) == (
        Counter(ids)
    )
    # Uploaded files leave the staging folder; the cursor is at the end of the log.
    assert not [p for p in logs_dir(tmp_path / "archive").rglob("*") if p.is_file()]
    assert store.find_cursor(CURSOR) == store.last_seq()
    # Read back through the reader, from the bucket: every event, in log order per source.
    location = archive_location(settings)
    assert isinstance(location, ObjectStore)
    read = list(read_archive(location, ArchiveQuery(DAY, DAY + DAY_MS)))
    assert sorted(a.event["messageId"] for a in read) == sorted(ids)
    web = [a.event["properties"]["i"] for a in read if a.file.source_id == "web"]
    assert web == sorted(web) and len(web) == 150
    stats = store.unit_stats()[UPLOAD_UNIT]
    assert stats["uploads"] == len(keys) and stats["pending_files"] == 0


def test_replay_reads_from_the_bucket(
    s3_server: S3Server, store: SqliteStore, tmp_path: Path, recorder: Recorder
) -> None:
    settings = s3_settings(tmp_path, s3_server, s3_server.new_bucket())
    ids = append(store, 40, sources=("web",))
    drain(settings, store)
    doc = {"id": "hook", "type": "webhook", "settings": {"urls": [recorder.base_url + "/hook"]}}
    store.put_config(ConfigObject("destination", "hook", msgspec.json.encode(doc)))
    request = ReplayRequest("hook", ArchiveQuery(DAY, DAY + DAY_MS), rate=0)

    async def run() -> int:
        async with new_session() as session:
            state = await Replay(settings, store, request, session).run()
            return state.sent

    assert asyncio.run(run()) == 40
    assert sorted(r.json()["messageId"] for r in recorder.requests) == sorted(ids)
    assert all(
        r.json()["integrations"] == {"All": False, "Webhooks": True} for r in recorder.requests
    )


def test_missing_bucket_is_counted_logged_once_and_uploads_once_created(
    s3_server: S3Server, store: SqliteStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bucket_name = f"later-{uuid.uuid4().hex[:12]}"
    settings = s3_settings(tmp_path, s3_server, bucket_name)
    ids = append(store, 100)
    writer = ArchiveWriter(settings, store)
    with caplog.at_level(logging.WARNING, logger="sluice.archive"):
        for attempt in range(3):
            with pytest.raises(ObjectStoreError, match=f"{bucket_name}.*does not exist"):
                writer.step(now=LATER + attempt * 100)
    warnings = [r for r in caplog.records if "failing" in r.getMessage()]
    assert len(warnings) == 1 and "bucket_missing" in warnings[0].getMessage()
    stats = store.unit_stats()[UPLOAD_UNIT]
    assert stats["upload_failures"] == 3 and stats["failing_since_ms"] > 0
    assert store.find_cursor(CURSOR) is None  # nothing archived: the cursor never moved
    assert scraped(store)["sluice_archive_upload_failing"] == {"kind=bucket_missing": 1.0}
    assert scraped(store)["sluice_archive_upload_failures_total"] == {"": 3.0}
    s3_server.client(bucket_name).create_bucket()
    while writer.step(now=LATER + 1000):
        pass
    writer.close()
    assert bucket_ids(s3_server.client(bucket_name, prefix="raw")) == Counter(ids)
    assert store.unit_stats()[UPLOAD_UNIT]["failing_since_ms"] == 0
    metrics = scraped(store)
    assert metrics["sluice_archive_upload_failing"] == {}
    assert metrics["sluice_archive_uploads_total"][""] >= 1
    assert metrics["sluice_archive_pending_files"] == {"": 0.0}


def scraped(store: SqliteStore) -> dict[str, dict[str, float]]:
    """`/metrics` as the store's collector gives it: {sample name: {labels: value}} (only the
    non-zero `upload_failing` samples, to read which kind is failing)."""
    from sluice.metrics.cluster import ClusterCollector

    out: dict[str, dict[str, float]] = {}
    for family in ClusterCollector(store).collect():
        for sample in family.samples:
            if sample.name == "sluice_archive_upload_failing" and not sample.value:
                out.setdefault(sample.name, {})
                continue
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out.setdefault(sample.name, {})[labels] = sample.value
    return out


def test_wrong_credentials_then_fixed(
    s3_server: S3Server, store: SqliteStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bucket_name = s3_server.new_bucket()
    secret = "not-the-secret-" + uuid.uuid4().hex
    wrong = s3_settings(tmp_path, s3_server, bucket_name, archive_s3_secret_access_key=secret)
    ids = append(store, 100)
    writer = ArchiveWriter(wrong, store)
    with caplog.at_level(logging.WARNING, logger="sluice.archive"):
        for attempt in range(2):
            with pytest.raises(ObjectStoreError) as caught:
                writer.step(now=LATER + attempt * 100)
            assert bucket_name in str(caught.value) and secret not in str(caught.value)
    assert secret not in caplog.text and secret not in repr(wrong)
    assert "credentials" in caplog.text
    assert store.unit_stats()[UPLOAD_UNIT]["upload_failures"] == 2
    writer.abandon()
    drain(s3_settings(tmp_path, s3_server, bucket_name), store)  # restarted with the right key
    assert bucket_ids(s3_server.client(bucket_name, prefix="raw")) == Counter(ids)


def test_endpoint_down_keeps_files_and_cursor_until_it_is_back(
    s3_server: S3Server, store: SqliteStore, tmp_path: Path
) -> None:
    bucket_name = s3_server.new_bucket()
    proxy = FaultyProxy(int(s3_server.endpoint_url.rsplit(":", 1)[1]))
    try:
        settings = s3_settings(
            tmp_path, s3_server, bucket_name, archive_s3_endpoint_url=proxy.endpoint_url
        )
        ids = append(store, 100)
        writer = ArchiveWriter(settings, store)
        writer.step(now=LATER - 3 * DAY_MS / 1000)  # scanned its folders; files open
        proxy.mode = "refuse"
        while writer.step(now=LATER):
            pass
        staged = [p for p in logs_dir(tmp_path / "archive").rglob("*.gz")]
        assert staged and store.find_cursor(CURSOR) in (None, 0)
        assert store.unit_stats()[UPLOAD_UNIT]["pending_files"] == len(staged)
        proxy.mode = "pass"
        writer.step(now=LATER + 10)  # the next attempt, past the backoff
        writer.close()
        assert bucket_ids(s3_server.client(bucket_name, prefix="raw")) == Counter(ids)
        assert store.find_cursor(CURSOR) == store.last_seq()
    finally:
        proxy.close()


CHILD = textwrap.dedent(
    """
    import sys
    from sluice.archive.writer import ArchiveWriter
    from sluice.config import load_settings
    from sluice.store.sqlite import SqliteStore

    settings = load_settings()
    store = SqliteStore(settings.log_path, synchronous="normal")
    writer = ArchiveWriter(settings, store)
    while writer.step(now=float(sys.argv[1])):
        pass
    writer.close()
    """
)


def test_kill_9_mid_upload_then_restart_archives_each_event_once(
    s3_server: S3Server, store: SqliteStore, tmp_path: Path
) -> None:
    bucket_name = s3_server.new_bucket()
    ids = append(store, 600)
    proxy = FaultyProxy(int(s3_server.endpoint_url.rsplit(":", 1)[1]))
    try:
        settings = s3_settings(
            tmp_path, s3_server, bucket_name, archive_s3_endpoint_url=proxy.endpoint_url
        )
        env = {**os.environ, **_env_of(settings)}
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(LATER)], env=env)
        try:
            # Let a few files go up, then hold the next upload in flight and kill the writer.
            bucket = s3_server.client(bucket_name, prefix="raw")
            _wait(lambda: len(list(bucket.list())) >= 3, child)
            proxy.mode = "stall"
            _wait(proxy.stalled.is_set, child)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        uploaded_before = len(list(bucket.list()))
        assert 3 <= uploaded_before < 16  # it died with files left to upload
    finally:
        proxy.close()
    drain(s3_settings(tmp_path, s3_server, bucket_name), store)
    assert bucket_ids(s3_server.client(bucket_name, prefix="raw")) == Counter(ids)
    assert store.find_cursor(CURSOR) == store.last_seq()


def test_crash_after_upload_before_the_cursor_moved_writes_nothing_twice(
    s3_server: S3Server, store: SqliteStore, tmp_path: Path
) -> None:
    settings = s3_settings(tmp_path, s3_server, s3_server.new_bucket())
    ids = append(store, 300)
    drain(settings, store)
    bucket = s3_server.client(settings.archive_s3_bucket or "", prefix="raw")
    keys = sorted(o.key for o in bucket.list())
    # As if the writer died after deleting its uploaded files but before committing: the log is
    # read again from the start, and the bucket says what is already archived.
    store.commit_cursor(CURSOR, 0)
    drain(settings, store)
    assert sorted(o.key for o in bucket.list()) == keys
    assert bucket_ids(bucket) == Counter(ids)


def _env_of(settings: Settings) -> dict[str, str]:
    names = (
        "data_dir", "archive_storage", "archive_s3_bucket", "archive_s3_prefix",
        "archive_s3_endpoint_url", "archive_s3_region", "archive_s3_access_key_id",
        "archive_s3_secret_access_key", "archive_s3_path_style", "archive_max_file_bytes",
    )  # fmt: skip
    return {f"SLUICE_{n.upper()}": str(getattr(settings, n)) for n in names}


def _wait(condition: Any, child: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        assert child.poll() is None, "the writer ended before it could be killed"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
