"""The archive writer: a log consumer that keeps every event in gzip NDJSON files, durably.

It reads the log from its own cursor (`archive`) and appends each event's stored JSON, one per
line, to an open file per (source, UTC day of `receivedAt`). A file is finalized when it would
pass `archive_max_file_bytes` (uncompressed), when it is `archive_max_file_age_s` old, or when
its day is over: flushed, fsynced, renamed from its hidden `.partial` name to its final name, and
its folder fsynced. So a file under a final name is always complete.

Never lost, never twice: the cursor only moves past events that are in finalized files, so after
a crash the new writer reads again every event that was in an open file. Partial files left by
the crash are deleted when the writer first touches their folder, and events at or below the
last log position already finalized in a folder (files are named by their first and last
position, see layout.py) are skipped, so a re-written file cannot repeat them.

With `SLUICE_ARCHIVE_STORAGE=s3` the folder is a staging area: each finalized file is uploaded
(upload.py), and the cursor stays before the first file not yet verified in the bucket. The
bucket then also says how far each day folder is archived (a file uploaded and deleted locally
just before a crash is still there), so a re-written file never repeats an uploaded one.

One writer per archive folder: the delivery worker runs it next to the destination consumers.
The archive keeps every event whatever its `integrations` object says, as Segment's S3
destination does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import threading
import time
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sluice.archive.bucket import archive_bucket, delete_days_before
from sluice.archive.layout import (
    DAY_MS,
    PARTIAL_SUFFIX,
    archive_root,
    day_dir,
    file_name,
    logs_dir,
    parse_day,
    parse_file_name,
    partial_name,
)
from sluice.archive.upload import ArchiveUploader
from sluice.config import Settings
from sluice.failure_log import FailureLog
from sluice.objectstore import ObjectStoreError
from sluice.store.base import Store, StoredEvent

log = logging.getLogger(__name__)

CURSOR = "archive"
# zlib level 1: on event JSON it costs 2.9 us of CPU per event against 3.5-4 us for level 3 and
# twice that for level 6 (the default of gzip), for files 3 % larger than level 3's
# (bench/archive.py).
DEFAULT_LEVEL = 1
DEFAULT_READ_EVENTS = 10_000  # events per log read: large reads, short store-lock holds
IDLE_POLL_S = 1.0
RETRY_AFTER_ERROR_S = 5.0
RETENTION_EVERY_S = 3600.0
GZIP_WBITS = 31  # zlib's gzip container
COMPRESS_THREADS = min(4, os.cpu_count() or 1)


@dataclass(slots=True)
class _OpenFile:
    """A file being written: its folder, its events' range and the compressor's state."""

    key: tuple[str, int]
    folder: Path
    first_seq: int
    opened_at: float
    handle: BinaryIO
    compressor: zlib._Compress
    last_seq: int = 0
    raw_bytes: int = 0  # uncompressed, including the buffer
    buffer: list[bytes] = field(default_factory=list)
    pending: Future[None] | None = None  # the compression of the previous chunk

    @property
    def partial_path(self) -> Path:
        return self.folder / partial_name(self.first_seq)


class ArchiveWriter:
    """Consumes the log into the archive; `run()` forever, or `step()` one pass at a time."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        level: int = DEFAULT_LEVEL,
        read_events: int = DEFAULT_READ_EVENTS,
    ) -> None:
        self.store = store
        self.root = archive_root(settings)
        self.max_file_bytes = max(1, settings.archive_max_file_bytes)
        self.max_file_age_s = settings.archive_max_file_age_s
        self.retention_days = settings.archive_retention_days
        self.level = level
        self.read_events = read_events
        self._open: dict[tuple[str, int], _OpenFile] = {}
        # Per folder touched: the highest log position in its finalized files (0: none).
        self._finalized_through: dict[tuple[str, int], int] = {}
        self._position: int | None = None  # the last log position read
        self._committed: int | None = None
        self._last_retention: float | None = None
        self._lock = threading.Lock()  # `run` may be cancelled while a step runs in its thread
        self._pool: ThreadPoolExecutor | None = None
        bucket = archive_bucket(settings)
        self.uploader = None if bucket is None else ArchiveUploader(bucket, self.root, store)

    # --- the loop --------------------------------------------------------------------------
    async def run(self) -> None:
        """Archive until cancelled; on cancellation finalize the open files (nothing is lost
        if that cannot happen: their events are read again on the next start)."""
        failures = FailureLog(log, "archive: step")
        try:
            while True:
                try:
                    read = await asyncio.to_thread(self.step)
                except ObjectStoreError:  # logged and counted by the uploader, on state changes
                    await asyncio.sleep(RETRY_AFTER_ERROR_S)
                    continue
                except Exception as exc:  # a full disk, say: nothing is lost, try again later
                    failures.failed(exc, RETRY_AFTER_ERROR_S, level=logging.ERROR)
                    await asyncio.sleep(RETRY_AFTER_ERROR_S)
                    continue
                failures.succeeded()
                if read < self.read_events:
                    await asyncio.sleep(IDLE_POLL_S)
        finally:
            await asyncio.to_thread(self.close)

    def step(self, now: float | None = None) -> int:
        """Read one run of the log, write it, rotate what is due, commit; return events read."""
        with self._lock:
            now = time.time() if now is None else now
            if self._position is None:
                cursor = self.store.find_cursor(CURSOR)  # None: a new archive, of the whole log
                self._position, self._committed = cursor or 0, cursor
                if self.uploader is not None:
                    self.uploader.scan_local()
            try:
                events = self.store.read_after(self._position, self.read_events)
                if events:
                    self._write(events, now)
                    self._position = events[-1].seq
                self._rotate_due(now)
                if self.uploader is not None:
                    self.uploader.upload_due(now)
                self._apply_retention(now)
                self._commit()
            except BaseException:
                self._abandon()
                raise
            return len(events)

    def close(self) -> None:
        """Finalize every open file and commit the cursor (a graceful stop)."""
        with self._lock:
            try:
                for open_file in list(self._open.values()):
                    self._finalize(open_file)
                if self.uploader is not None and self.uploader.failing is None:
                    self.uploader.upload_due(time.time(), force=True)
                self._commit()
            except BaseException:
                self._abandon()
                raise
            finally:
                self._stop_pool()

    def abandon(self) -> None:
        """Drop the open files unfinished, as a crash would (their events are read again)."""
        with self._lock:
            self._abandon()
            self._stop_pool()

    def _stop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _abandon(self) -> None:
        """After a failure, start over as after a crash: drop the open files and read again
        from the committed cursor (folders are rescanned, so their partial files go)."""
        for open_file in self._open.values():
            with contextlib.suppress(Exception):
                self._wait(open_file)
            with contextlib.suppress(OSError):
                open_file.handle.close()
        self._open.clear()
        self._finalized_through.clear()
        self._position = self._committed = None

    # --- writing ---------------------------------------------------------------------------
    def _write(self, events: list[StoredEvent], now: float) -> None:
        groups: dict[tuple[str, int], list[StoredEvent]] = {}
        for event in events:  # the hot loop: as little per event as possible
            ms = event.received_at_ms
            key = (event.source_id, ms - ms % DAY_MS)
            group = groups.get(key)
            if group is None:
                groups[key] = [event]
            else:
                group.append(event)
        for key, group in groups.items():
            self._write_group(key, group, now)
        for open_file in self._open.values():
            self._flush(open_file)

    def _write_group(self, key: tuple[str, int], group: list[StoredEvent], now: float) -> None:
        """Append one folder's events of this run (in log order) to its open file."""
        current = self._open.get(key)
        if current is None:
            if key not in self._finalized_through:
                self._scan_folder(key, now)
            through = self._finalized_through[key]
            if group[0].seq <= through:  # already in a finalized file (read again after a crash)
                group = [e for e in group if e.seq > through]
                if not group:
                    return
            current = self._open_file(key, group[0].seq, now)
        payloads = [e.payload for e in group]
        size = sum(map(len, payloads)) + len(payloads)
        if current.raw_bytes + size <= self.max_file_bytes:
            current.buffer.extend(payloads)
            current.raw_bytes += size
            current.last_seq = group[-1].seq
            return
        for event, payload in zip(group, payloads, strict=True):  # the file fills up on the way
            size = len(payload) + 1
            if current.raw_bytes + size > self.max_file_bytes and current.raw_bytes:
                self._finalize(current)
                current = self._open_file(key, event.seq, now)
            current.buffer.append(payload)
            current.raw_bytes += size
            current.last_seq = event.seq

    def _scan_folder(self, key: tuple[str, int], now: float) -> None:
        """Learn a folder's finalized range (here, and in the bucket) and delete the partial
        files a crash left there."""
        folder = day_dir(self.root, *key)
        through = 0
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(folder):
                if entry.name.endswith(PARTIAL_SUFFIX):
                    os.unlink(entry.path)  # its events are after the cursor: read again
                elif (seqs := parse_file_name(entry.name)) is not None:
                    through = max(through, seqs[1])
        if self.uploader is not None:
            through = max(through, self.uploader.finalized_through(*key, now))
        self._finalized_through[key] = through

    def _open_file(self, key: tuple[str, int], first_seq: int, now: float) -> _OpenFile:
        folder = day_dir(self.root, *key)
        _make_dirs(folder)
        handle = open(folder / partial_name(first_seq), "wb")  # noqa: SIM115 (closed on finalize)
        compressor = zlib.compressobj(self.level, zlib.DEFLATED, GZIP_WBITS)
        created = _OpenFile(key, folder, first_seq, now, handle, compressor)
        self._open[key] = created
        return created

    def _flush(self, open_file: _OpenFile) -> None:
        """Hand the buffered lines to a compression thread (zlib releases the GIL), so the next
        log read overlaps this compression; a file's own chunks stay in order."""
        if not open_file.buffer:
            return
        self._wait(open_file)
        lines, open_file.buffer = open_file.buffer, []
        if self._pool is None:
            self._pool = ThreadPoolExecutor(COMPRESS_THREADS, thread_name_prefix="archive-gzip")
        open_file.pending = self._pool.submit(_compress_into, open_file, lines)

    def _wait(self, open_file: _OpenFile) -> None:
        if open_file.pending is not None:
            pending, open_file.pending = open_file.pending, None
            pending.result()  # raises what the thread raised (a full disk, ...)

    def _finalize(self, open_file: _OpenFile) -> None:
        """Complete a file durably, then make it visible under its final name."""
        self._flush(open_file)
        self._wait(open_file)
        handle = open_file.handle
        handle.write(open_file.compressor.flush())
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        final = open_file.folder / file_name(open_file.first_seq, open_file.last_seq)
        os.rename(open_file.partial_path, final)
        fsync_dir(open_file.folder)
        del self._open[open_file.key]
        self._finalized_through[open_file.key] = open_file.last_seq
        if self.uploader is not None:
            self.uploader.add(final, *open_file.key, open_file.first_seq, open_file.last_seq)

    def _rotate_due(self, now: float) -> None:
        now_ms = now * 1000
        for open_file in list(self._open.values()):
            too_old = now - open_file.opened_at >= self.max_file_age_s
            if too_old or now_ms >= open_file.key[1] + DAY_MS:
                self._finalize(open_file)

    def _commit(self) -> None:
        """Move the cursor up to (not past) the first event still in an open file, or in a file
        not uploaded yet."""
        if self._position is None:
            return
        firsts = [f.first_seq for f in self._open.values()]
        if self.uploader is not None and (pending := self.uploader.first_pending()) is not None:
            firsts.append(pending)
        cursor = min(firsts) - 1 if firsts else self._position
        if self._committed is None or cursor > self._committed:
            self.store.commit_cursor(CURSOR, cursor)
            self._committed = cursor

    # --- retention -------------------------------------------------------------------------
    def _apply_retention(self, now: float) -> None:
        if self._last_retention is not None and now - self._last_retention < RETENTION_EVERY_S:
            return
        self._last_retention = now
        today = int(now * 1000) // DAY_MS * DAY_MS
        # Forget folders no event is likely to reach again (a late one rescans its folder).
        for key in [k for k in self._finalized_through if k[1] < today - DAY_MS]:
            if key not in self._open:
                del self._finalized_through[key]
        if self.retention_days > 0:
            cutoff = today - self.retention_days * DAY_MS
            removed = 0
            if self.uploader is None:
                removed = delete_older_than(self.root, cutoff)
            else:  # the folder only stages files not uploaded yet: they are kept
                try:
                    removed = delete_days_before(self.uploader.bucket, cutoff)
                except ObjectStoreError as exc:  # tried again in an hour
                    log.warning("archive retention in the bucket failed: %s", exc)
            if removed:
                log.info("archive retention removed %d day folder(s)", removed)


def _compress_into(open_file: _OpenFile, lines: list[bytes]) -> None:
    data = b"\n".join(lines)
    # A stored payload may keep a client's raw JSON, whitespace included. Outside strings a
    # newline is only whitespace (inside them JSON requires escapes), so a space keeps the event
    # the same and one event on one line.
    if data.count(b"\n") != len(lines) - 1 or b"\r" in data:
        data = b"\n".join(p.replace(b"\n", b" ").replace(b"\r", b" ") for p in lines)
    open_file.handle.write(open_file.compressor.compress(data + b"\n"))


def delete_older_than(root: Path, cutoff_day_ms: int) -> int:
    """Delete the day folders whose whole day ends at or before `cutoff_day_ms`; count them.

    With a cutoff of today minus N days, every event of a deleted folder is over N days old.
    """
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for source in os.scandir(logs_dir(root)):
            if not source.is_dir():
                continue
            for day in os.scandir(source.path):
                day_ms = parse_day(day.name)
                if day_ms is not None and day_ms + DAY_MS <= cutoff_day_ms and day.is_dir():
                    shutil.rmtree(day.path)
                    removed += 1
    return removed


def _make_dirs(folder: Path) -> None:
    """Create a folder and its missing parents, each made durable in its own parent."""
    if folder.is_dir():
        return
    missing = []
    path = folder
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for created in reversed(missing):
        with contextlib.suppress(FileExistsError):
            created.mkdir()
        fsync_dir(created.parent)


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a file created or renamed in it) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
