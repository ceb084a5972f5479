"""The archive writer on real files and a real SQLite store: layout, rotation, crash, retention."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sluice.archive.layout import DAY_MS, day_dir, file_name, logs_dir, parse_file_name
from sluice.archive.writer import CURSOR, ArchiveWriter
from sluice.config import Settings
from sluice.spec.timestamps import format_ms
from sluice.store.base import AppendBatch, NewEvent
from sluice.store.sqlite import SqliteStore

DAY = 1_717_200_000_000 - 1_717_200_000_000 % DAY_MS  # 2024-06-01T00:00:00Z
HOUR_MS = 3_600_000


def payload(message_id: str, received_ms: int, **fields: Any) -> bytes:
    event = {
        "type": "track",
        "event": "Order Completed",
        "messageId": message_id,
        "receivedAt": format_ms(received_ms),
        "properties": {"total": 12.5},
        **fields,
    }
    return msgspec.json.encode(event)


def append(store: SqliteStore, *events: tuple[str, int], **fields: Any) -> list[str]:
    """Append (source, receivedAt ms) events; returns their message ids."""
    batch = AppendBatch()
    ids = []
    for source, received in events:
        message_id = f"m-{uuid.uuid4()}"
        body = payload(message_id, received, **fields)
        batch.events.append(
            NewEvent(source, message_id, "track", "Order Completed", received, body)
        )
        ids.append(message_id)
    store.append(batch)
    return ids


def final_files(root: Path) -> list[Path]:
    return sorted(p for p in logs_dir(root).rglob("*.gz") if parse_file_name(p.name))


def partial_files(root: Path) -> list[Path]:
    return sorted(logs_dir(root).rglob("*.partial"))


def lines(path: Path) -> list[bytes]:
    return gzip.decompress(path.read_bytes()).splitlines()


def archived_ids(root: Path) -> list[str]:
    return [msgspec.json.decode(line)["messageId"] for f in final_files(root) for line in lines(f)]


def drain(writer: ArchiveWriter, now: float) -> None:
    while writer.step(now) > 0:
        pass


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "log.db", synchronous="normal")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def root_of(settings: Settings) -> Path:
    return settings.data_dir / "archive"


def test_files_follow_segment_logs_layout_with_the_stored_payloads(
    store: SqliteStore, settings: Settings
) -> None:
    web = append(store, ("web", DAY + 1000), ("web", DAY + 2000))
    app = append(store, ("app", DAY + 3000))
    late = append(store, ("web", DAY + DAY_MS + 5))  # the next UTC day
    writer = ArchiveWriter(settings, store)
    writer.step(now=(DAY + 2 * DAY_MS) / 1000)  # both days are over: every file is final
    root = root_of(settings)
    assert [p.relative_to(root).as_posix() for p in final_files(root)] == [
        f"segment-logs/app/{DAY}/{file_name(3, 3)}",
        f"segment-logs/web/{DAY}/{file_name(1, 2)}",
        f"segment-logs/web/{DAY + DAY_MS}/{file_name(4, 4)}",
    ]
    stored = {e.message_id: e.payload for e in store.read_after(0, 100)}
    day_one = lines(day_dir(root, "web", DAY) / file_name(1, 2))
    assert day_one == [stored[m] for m in web]  # byte for byte, in log order
    assert lines(day_dir(root, "app", DAY) / file_name(3, 3)) == [stored[app[0]]]
    assert archived_ids(root)[-1] == late[0]
    assert store.find_cursor(CURSOR) == 4
    assert partial_files(root) == []


def test_the_integrations_object_does_not_keep_an_event_out(
    store: SqliteStore, settings: Settings
) -> None:
    ids = append(store, ("web", DAY + 1), integrations={"All": False})
    ArchiveWriter(settings, store).step(now=(DAY + DAY_MS) / 1000)
    assert archived_ids(root_of(settings)) == ids


def test_an_open_file_is_hidden_and_holds_the_cursor_back(
    store: SqliteStore, settings: Settings
) -> None:
    append(store, ("web", DAY + 1000), ("web", DAY + 2000))
    writer = ArchiveWriter(settings, store)
    assert writer.step(now=DAY / 1000 + 10) == 2
    root = root_of(settings)
    assert final_files(root) == []
    assert [p.name for p in partial_files(root)] == [f".{1:020d}.gz.partial"]
    assert store.find_cursor(CURSOR) == 0  # nothing is in a finalized file yet
    writer.close()  # a graceful stop finalizes
    assert [p.name for p in final_files(root)] == [file_name(1, 2)]
    assert partial_files(root) == []
    assert store.find_cursor(CURSOR) == 2


def test_files_rotate_by_uncompressed_size(store: SqliteStore, tmp_path: Path) -> None:
    one = len(payload(f"m-{uuid.uuid4()}", DAY + 1000)) + 1
    settings = Settings(data_dir=tmp_path, archive_max_file_bytes=3 * one)
    ids = append(store, *[("web", DAY + 1000)] * 10)
    big = append(store, ("web", DAY + 1000), properties={"blob": "x" * (4 * one)})
    writer = ArchiveWriter(settings, store)
    writer.step(now=DAY / 1000 + 10)
    writer.close()
    files = final_files(root_of(settings))
    assert [p.name for p in files] == [
        file_name(1, 3), file_name(4, 6), file_name(7, 9), file_name(10, 10), file_name(11, 11)
    ]  # fmt: skip
    for f in files[:-1]:
        assert len(gzip.decompress(f.read_bytes())) <= 3 * one
    assert archived_ids(root_of(settings)) == ids + big  # too big alone: a file of its own


def test_files_rotate_by_age(store: SqliteStore, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, archive_max_file_age_s=60)
    root = root_of(settings)
    t0 = DAY / 1000 + 100
    writer = ArchiveWriter(settings, store)
    first = append(store, ("web", DAY + 1000))
    writer.step(now=t0)
    second = append(store, ("web", DAY + 2000))
    writer.step(now=t0 + 59)
    assert final_files(root) == []  # 59 s old: still open
    writer.step(now=t0 + 60)
    assert [p.name for p in final_files(root)] == [file_name(1, 2)]
    third = append(store, ("web", DAY + 3000))
    writer.step(now=t0 + 61)
    assert len(partial_files(root)) == 1  # a new file, opened at t0 + 61
    writer.step(now=t0 + 121)
    assert [p.name for p in final_files(root)] == [file_name(1, 2), file_name(3, 3)]
    assert archived_ids(root) == first + second + third
    assert store.find_cursor(CURSOR) == 3


def test_files_rotate_at_the_utc_day_boundary(store: SqliteStore, settings: Settings) -> None:
    root = root_of(settings)
    writer = ArchiveWriter(settings, store)
    before = append(store, ("web", DAY + DAY_MS - 1))  # 23:59:59.999
    writer.step(now=(DAY + DAY_MS) / 1000 - 5)
    assert final_files(root) == []
    after = append(store, ("web", DAY + DAY_MS))  # midnight: the next day's folder
    writer.step(now=(DAY + DAY_MS) / 1000 + 1)  # the first day is over: its file is final
    assert [p.relative_to(root).as_posix() for p in final_files(root)] == [
        f"segment-logs/web/{DAY}/{file_name(1, 1)}"
    ]
    late = append(store, ("web", DAY + DAY_MS - 2))  # committed late, received the day before
    writer.step(now=(DAY + DAY_MS) / 1000 + 2)
    assert [p.relative_to(root).as_posix() for p in final_files(root)] == [
        f"segment-logs/web/{DAY}/{file_name(1, 1)}",
        f"segment-logs/web/{DAY}/{file_name(3, 3)}",
    ]
    writer.close()
    assert archived_ids(root) == before + late + after
    assert store.find_cursor(CURSOR) == 3


def test_a_payload_with_raw_newlines_stays_on_one_line(
    store: SqliteStore, settings: Settings
) -> None:
    body = b'{\n  "type": "track",\r\n  "messageId": "nl-1",\n  "properties": {"a": "x\\ny"}\n}'
    store.append(AppendBatch(events=[NewEvent("web", "nl-1", "track", None, DAY + 1, body)]))
    writer = ArchiveWriter(settings, store)
    writer.step(now=DAY / 1000)
    writer.close()
    (line,) = lines(final_files(root_of(settings))[0])
    assert msgspec.json.decode(line) == msgspec.json.decode(body)


def test_an_abandoned_writer_loses_nothing_and_repeats_nothing(
    store: SqliteStore, tmp_path: Path
) -> None:
    one = len(payload(f"m-{uuid.uuid4()}", DAY + 1000)) + 1
    settings = Settings(data_dir=tmp_path, archive_max_file_bytes=4 * one)
    root = root_of(settings)
    ids = append(store, *[("web", DAY + 1000), ("app", DAY + 1000)] * 10)
    crashed = ArchiveWriter(settings, store, read_events=13)
    crashed.step(now=DAY / 1000)  # some files final, some open
    assert final_files(root) and partial_files(root)
    # The crash also lost the last cursor commit after files were renamed: the new writer reads
    # events again that are already in finalized files.
    store.commit_cursor(CURSOR, 0)
    crashed.abandon()  # its files are never finalized; as a dead process, it lets go of them
    writer = ArchiveWriter(settings, store, read_events=7)
    drain(writer, now=DAY / 1000 + 1)
    writer.close()
    assert partial_files(root) == []
    counts = Counter(archived_ids(root))
    assert set(counts) == set(ids) and set(counts.values()) == {1}
    assert store.find_cursor(CURSOR) == len(ids)


def test_kill_9_mid_file_loses_nothing_and_repeats_nothing(
    store: SqliteStore, tmp_path: Path
) -> None:
    ids = append(store, *[("web", DAY + 1000)] * 30)
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from sluice.archive.writer import ArchiveWriter
        from sluice.config import Settings
        from sluice.store.sqlite import SqliteStore
        store = SqliteStore(Path({str(tmp_path / "log.db")!r}))
        settings = Settings(data_dir=Path({str(tmp_path)!r}), archive_max_file_bytes=2000)
        writer = ArchiveWriter(settings, store, read_events=25)
        writer.step(now={DAY / 1000})
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    assert done.returncode == -9
    root = root_of(Settings(data_dir=tmp_path))
    assert partial_files(root)  # the open file the process died with
    writer = ArchiveWriter(Settings(data_dir=tmp_path, archive_max_file_bytes=2000), store)
    drain(writer, now=DAY / 1000 + 1)
    writer.close()
    assert partial_files(root) == []
    assert archived_ids(root) == ids
    for f in final_files(root):  # every final file is a complete gzip stream
        gzip.decompress(f.read_bytes())


def test_a_failed_step_starts_over_from_the_cursor(
    store: SqliteStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = append(store, ("web", DAY + 1000))
    writer = ArchiveWriter(settings, store)
    writer.step(now=DAY / 1000)

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", disk_full)
        with pytest.raises(OSError, match="No space"):
            writer.step(now=DAY / 1000 + 3600)  # the file is due: finalizing it fails
    assert final_files(root_of(settings)) == []
    assert store.find_cursor(CURSOR) == 0
    more = append(store, ("web", DAY + 2000))
    writer.step(now=DAY / 1000 + 3601)
    writer.close()
    assert archived_ids(root_of(settings)) == ids + more
    assert partial_files(root_of(settings)) == []


def test_retention_deletes_day_folders_older_than_the_setting(
    store: SqliteStore, tmp_path: Path
) -> None:
    days = [DAY - n * DAY_MS for n in (5, 3, 2, 1, 0)]
    append(store, *[("web", d + HOUR_MS) for d in days], *[("app", d + HOUR_MS) for d in days])
    now = (DAY + 12 * HOUR_MS) / 1000
    keep_all = Settings(data_dir=tmp_path / "forever")
    writer = ArchiveWriter(keep_all, store)
    writer.step(now=now)
    writer.close()
    assert len({p.parent for p in final_files(root_of(keep_all))}) == 10  # 0 = keep forever

    settings = Settings(data_dir=tmp_path, archive_retention_days=2)
    store.commit_cursor(CURSOR, 0)
    writer = ArchiveWriter(settings, store)
    writer.step(now=now)

    def days_kept() -> dict[str, list[int]]:
        sources = logs_dir(root_of(settings)).iterdir()
        return {s.name: sorted(int(d.name) for d in s.iterdir()) for s in sorted(sources)}

    recent = [DAY - 2 * DAY_MS, DAY - DAY_MS, DAY]  # whole days over 2 days old go
    assert days_kept() == {"app": recent, "web": recent}
    writer.step(now=now + DAY_MS / 1000)  # retention runs again after an hour, here a day
    assert days_kept() == {"app": recent[1:], "web": recent[1:]}
    writer.close()


def test_run_archives_until_cancelled_then_finalizes(
    store: SqliteStore, settings: Settings
) -> None:
    now_ms = int(time.time() * 1000)
    ids = append(store, ("web", now_ms), ("web", now_ms + 1))

    async def scenario() -> None:
        writer = ArchiveWriter(settings, store)
        task = asyncio.create_task(writer.run())
        for _ in range(100):
            await asyncio.sleep(0.05)
            if partial_files(root_of(settings)):
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert archived_ids(root_of(settings)) == ids
    assert store.find_cursor(CURSOR) == 2
