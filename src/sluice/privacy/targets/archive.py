"""The `archive` target: every archive file holding the subject's events, rewritten without them.

Files keep their names and Segment's layout (`segment-logs/<source>/<day>/<first>-<last>.gz`):
the name is the range of log positions the file covers, which the writer relies on after a crash,
and still true of a file with fewer events (one emptied entirely stays, as an empty gzip). A
local file is rewritten as a hidden `.<name>.privacy` next to it, fsynced, then renamed over the
old one (atomic: a reader sees the old file or the new one); in a bucket the object is put again
under its key (a put replaces an object atomically) and verified by the object store client.
In S3 mode the local folder only stages files not uploaded yet; both are rewritten.

The writer never rewrites a finalized file, so the one race is with events it read before the
log leg deleted them and still holds in an open file: the leg waits (RETRYING) until the
archive's cursor has passed the highest position the log leg deleted (recorded in the store by
that leg); from then on, every copy the writer made is in a finalized file, and none comes after.
A scan costs one decompression per file: a file whose bytes do not contain an id is not parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

from sluice.archive.bucket import archive_bucket, day_files, day_folders, source_prefixes
from sluice.archive.layout import (
    archive_root,
    logs_dir,
    parse_day,
    parse_file_name,
    source_folder,
)
from sluice.archive.writer import CURSOR, fsync_dir
from sluice.config import Settings
from sluice.objectstore import ObjectStore, ObjectStoreError
from sluice.privacy.matching import SubjectMatcher
from sluice.privacy.targets.base import Subject, TargetOutcome
from sluice.privacy.targets.log import LOG_MARK, progress_unit
from sluice.store.base import Store

GZIP_WBITS = 31
LEVEL = 1  # the writer's level (archive/writer.py)
TEMP_SUFFIX = ".privacy"


class ArchiveTarget:
    name = "archive"

    def __init__(self, settings: Settings, store: Store, source_id: str | None = None) -> None:
        self.settings = settings
        self.store = store
        self.source_id = source_id
        self.files_scanned = 0
        self.events_scanned = 0

    async def delete(self, regulation_id: str, subject: Subject) -> TargetOutcome:
        return await asyncio.to_thread(self._delete, regulation_id, subject)

    def _delete(self, regulation_id: str, subject: Subject) -> TargetOutcome:
        waiting = self._writer_behind(regulation_id)
        if waiting:
            return TargetOutcome(self.name, "RETRYING", waiting)
        matcher = SubjectMatcher(subject)
        removed = files = 0
        for path in self._local_files():
            n = self._rewrite_local(path, matcher)
            removed += n
            files += n > 0
        bucket = archive_bucket(self.settings)
        if bucket is not None:
            try:
                for key in self._bucket_keys(bucket):
                    n = self._rewrite_object(bucket, key, matcher)
                    removed += n
                    files += n > 0
            except ObjectStoreError as exc:
                return TargetOutcome(self.name, "RETRYING", f"archive bucket: {exc}", removed)
        return TargetOutcome(
            self.name, "FINISHED", f"{removed} event(s) removed from {files} file(s)", removed
        )

    def _writer_behind(self, regulation_id: str) -> str:
        mark = self.store.unit_stats().get(progress_unit(regulation_id), {}).get(LOG_MARK, 0)
        cursor = self.store.find_cursor(CURSOR)
        if cursor is None or cursor >= mark:
            return ""
        return (
            f"waiting for the archive writer to finalize log position {mark} (it is at {cursor};"
            " files are finalized within SLUICE_ARCHIVE_MAX_FILE_AGE_S)"
        )

    # --- local -----------------------------------------------------------------------------
    def _local_files(self) -> Iterator[Path]:
        root = logs_dir(archive_root(self.settings))
        wanted = None if self.source_id is None else source_folder(self.source_id)
        with contextlib.suppress(FileNotFoundError):
            for source in sorted(os.scandir(root), key=lambda e: e.name):
                if not source.is_dir() or wanted not in (None, source.name):
                    continue
                for day in sorted(os.scandir(source.path), key=lambda e: e.name):
                    if parse_day(day.name) is None or not day.is_dir():
                        continue
                    for entry in sorted(os.scandir(day.path), key=lambda e: e.name):
                        if parse_file_name(entry.name) is not None:
                            yield Path(entry.path)
                        elif entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX):
                            # A rewrite a crash interrupted: its file is rewritten again.
                            with contextlib.suppress(FileNotFoundError):
                                os.unlink(entry.path)

    def _rewrite_local(self, path: Path, matcher: SubjectMatcher) -> int:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # retention removed it meanwhile
            return 0
        kept, removed = self._filter(data, matcher)
        if not removed:
            return 0
        temp = path.with_name(f".{path.name}{TEMP_SUFFIX}")
        with open(temp, "wb") as handle:
            handle.write(kept)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
        fsync_dir(path.parent)
        return removed

    # --- bucket ----------------------------------------------------------------------------
    def _bucket_keys(self, bucket: ObjectStore) -> Iterator[str]:
        wanted = None if self.source_id is None else source_folder(self.source_id)
        for source in list(source_prefixes(bucket)):
            if wanted is not None and source.rstrip("/").rsplit("/", 1)[-1] != wanted:
                continue
            for _, prefix in list(day_folders(bucket, source)):
                for info in list(day_files(bucket, prefix)):
                    yield info.key

    def _rewrite_object(self, bucket: ObjectStore, key: str, matcher: SubjectMatcher) -> int:
        kept, removed = self._filter(bucket.get(key), matcher)
        if removed:
            bucket.put(key, kept, content_type="application/gzip")
        return removed

    # --- one file --------------------------------------------------------------------------
    def _filter(self, compressed: bytes, matcher: SubjectMatcher) -> tuple[bytes, int]:
        """The file's gzip bytes without the subject's lines, and how many lines went."""
        self.files_scanned += 1
        data = gzip.decompress(compressed)
        self.events_scanned += data.count(b"\n")
        if not matcher.might_hold(data):
            return compressed, 0
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        # The byte search again, per line: only the few lines it finds are decoded.
        kept = [line for line in lines if not (matcher.might_hold(line) and matcher.holds(line))]
        removed = len(lines) - len(kept)
        if not removed:
            return compressed, 0
        compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, GZIP_WBITS)
        body = b"".join(line + b"\n" for line in kept)
        return compressor.compress(body) + compressor.flush(), removed
