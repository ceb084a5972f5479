"""Uploads of finished archive files to the bucket, and what `sluice status` shows of them.

With `SLUICE_ARCHIVE_STORAGE=s3` the writer still finishes every file locally (the archive
folder is the staging area), then hands it here. A file is uploaded under the key of its local
path, which is named by its log positions: the same file always has the same key, so an upload
repeated after a crash replaces the object instead of adding a second copy. Only once the
bucket holds the file, verified (client.py), is the local copy deleted, and only then may the
writer's cursor pass its events (writer.py). So a `kill -9` anywhere loses nothing: a file not
yet uploaded is still on disk, and its events are still after the cursor.

A failed upload (endpoint down, 5xx, credentials refused, bucket missing) keeps the file and
is tried again with backoff (1 s doubling to 60 s). Each attempt is counted in the store's unit
stats (`archive:upload`, read by `sluice status` and `/metrics`); the log gets one line when
uploads start failing (or fail differently) and one when they recover, never one per retry.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from sluice.archive.bucket import archive_bucket_settings, folder_files, folder_key
from sluice.archive.layout import (
    archive_root,
    logs_dir,
    parse_day,
    parse_file_name,
    source_of_folder,
)
from sluice.config import Settings
from sluice.objectstore import ObjectStore, ObjectStoreError
from sluice.spec.timestamps import format_ms
from sluice.store.base_workers import UnitStats

log = logging.getLogger(__name__)

UPLOAD_UNIT = "archive:upload"  # the unit name of the upload reports in the store's unit stats
MIN_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
CONTENT_TYPE = "application/gzip"
# `failure_kind` in the unit stats: an int (the stats hold numbers only), named in status.
FAILURE_KINDS = ("", "unavailable", "credentials", "bucket_missing", "checksum", "error")


@dataclass(frozen=True, slots=True)
class _Pending:
    path: Path
    source_id: str
    day_ms: int
    first_seq: int
    last_seq: int


class ArchiveUploader:
    """The finished local files not in the bucket yet, and their uploads' state."""

    def __init__(
        self,
        bucket: ObjectStore,
        root: Path,
        stats: UnitStats | None,
        *,
        min_backoff_s: float = MIN_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        self.bucket = bucket
        self.root = root
        self.stats = stats
        self.min_backoff_s, self.max_backoff_s = min_backoff_s, max_backoff_s
        self._pending: dict[Path, _Pending] = {}
        self.failing: str | None = None  # the kind of the failure going on, None when fine
        self.failures = 0  # attempts failed in a row
        self._failing_since_ms = 0
        self._next_attempt = 0.0

    # --- what waits ------------------------------------------------------------------------
    def add(self, path: Path, source_id: str, day_ms: int, first_seq: int, last_seq: int) -> None:
        self._pending[path] = _Pending(path, source_id, day_ms, first_seq, last_seq)

    def scan_local(self) -> None:
        """Queue every finished file left in the archive folder (by a crash or an outage)."""
        self._pending.clear()
        base = logs_dir(self.root)
        if not base.is_dir():
            return
        for source in os.scandir(base):
            if not source.is_dir():
                continue
            for day in os.scandir(source.path):
                day_ms = parse_day(day.name)
                if day_ms is None or not day.is_dir():
                    continue
                for entry in os.scandir(day.path):
                    if (seqs := parse_file_name(entry.name)) is not None:
                        self.add(Path(entry.path), source_of_folder(source.name), day_ms, *seqs)

    def first_pending(self) -> int | None:
        """The first log position of a file not uploaded yet: the cursor stays before it."""
        return min((p.first_seq for p in self._pending.values()), default=None)

    @property
    def pending_files(self) -> int:
        return len(self._pending)

    # --- uploads ---------------------------------------------------------------------------
    def finalized_through(self, source_id: str, day_ms: int, now: float) -> int:
        """The highest log position the bucket's day folder holds; a failure is recorded
        (the writer cannot start that folder's file without knowing)."""
        try:
            return max(
                (last for _, last in folder_files(self.bucket, folder_key(source_id, day_ms))),
                default=0,
            )
        except ObjectStoreError as exc:
            self._failed(exc, now)
            raise

    def upload_due(self, now: float, *, force: bool = False) -> None:
        """Upload the waiting files in log order, unless backing off; stop at the first error."""
        if not self._pending or (not force and now < self._next_attempt):
            return
        for pending in sorted(self._pending.values(), key=lambda p: p.first_seq):
            try:
                size = self._upload(pending)
            except ObjectStoreError as exc:
                self._failed(exc, now)
                return
            self._succeeded(now, size)

    def _upload(self, pending: _Pending) -> int:
        """Put one file (unless the bucket already has its events in another file), verify it,
        then delete the local copy; returns the bytes uploaded."""
        prefix = folder_key(pending.source_id, pending.day_ms)
        name = pending.path.name
        key = prefix + name
        own = (pending.first_seq, pending.last_seq)
        for first, last in folder_files(self.bucket, prefix):
            overlaps = first <= pending.last_seq and pending.first_seq <= last
            if overlaps and (first, last) != own:
                # Another writer (a node that took the archive over) already archived these
                # events: uploading this stale copy would archive them twice.
                log.warning("archive: %s is already in the bucket in other files; dropped", key)
                self._drop(pending)
                return 0
        size = self.bucket.put(key, pending.path, content_type=CONTENT_TYPE).size
        self._drop(pending)
        return size

    def _drop(self, pending: _Pending) -> None:
        pending.path.unlink(missing_ok=True)
        del self._pending[pending.path]

    # --- state -----------------------------------------------------------------------------
    def _failed(self, exc: ObjectStoreError, now: float) -> None:
        self.failures += 1
        delay = min(self.max_backoff_s, self.min_backoff_s * 2 ** min(self.failures - 1, 30))
        self._next_attempt = now + delay
        if self.failing != exc.kind:
            if self.failing is None:
                self._failing_since_ms = int(now * 1000)
            log.warning(
                "archive uploads to %s failing (%s): %s; %d file(s) kept locally, the archive "
                "cursor waits; retrying with backoff",
                self.bucket.describe(),
                exc.kind,
                exc,
                len(self._pending),
            )
            self.failing = exc.kind
        kind = FAILURE_KINDS.index(exc.kind) if exc.kind in FAILURE_KINDS else len(FAILURE_KINDS)
        self._record(
            now,
            {"upload_failures": 1},
            {
                "failing_since_ms": self._failing_since_ms,
                "failure_kind": kind,
                "pending_files": len(self._pending),
            },
        )

    def _succeeded(self, now: float, size: int) -> None:
        if self.failing is not None:
            log.info(
                "archive uploads to %s work again after %d failed attempt(s)",
                self.bucket.describe(),
                self.failures,
            )
        self.failing, self.failures, self._next_attempt = None, 0, 0.0
        self._failing_since_ms = 0
        self._record(
            now,
            {"uploads": 1, "upload_bytes": size},
            {
                "failing_since_ms": 0,
                "failure_kind": 0,
                "pending_files": len(self._pending),
                "last_upload_ms": int(now * 1000),
            },
        )

    def _record(self, now: float, add: dict[str, int], set_to: dict[str, int]) -> None:
        if self.stats is None:
            return
        try:
            self.stats.record_unit_stats(UPLOAD_UNIT, int(now * 1000), add, set_to)
        except Exception as exc:  # a report that cannot be written never stops the archive
            log.warning("archive: upload state could not be reported: %s", exc)


def archive_status(settings: Settings, store: UnitStats) -> dict[str, object]:
    """The `archive` part of `sluice status --json`: where it goes and, for a bucket, how its
    uploads fare (as the writer last reported). Names the bucket, never a credential."""
    bucket = archive_bucket_settings(settings)
    if bucket is None:
        return {"storage": "local", "where": str(archive_root(settings))}
    stats = store.unit_stats().get(UPLOAD_UNIT, {})
    kind = stats.get("failure_kind", 0)
    failing_since = stats.get("failing_since_ms", 0)
    return {
        "storage": "s3",
        "where": f"s3://{bucket.bucket}/{bucket.prefix} at {bucket.endpoint}",
        "uploads": stats.get("uploads", 0),
        "upload_bytes": stats.get("upload_bytes", 0),
        "upload_failures": stats.get("upload_failures", 0),
        "pending_files": stats.get("pending_files", 0),
        "failing": FAILURE_KINDS[kind] if 0 < kind < len(FAILURE_KINDS) else None,
        "failing_since": format_ms(failing_since) if failing_since else None,
        "last_upload": format_ms(last) if (last := stats.get("last_upload_ms")) else None,
    }
