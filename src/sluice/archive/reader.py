"""Read the archive back: the events of a time range, optionally of one source, type or event.

The range is over `receivedAt` (the day folders are cut on it): only the day folders the range
touches are opened, and each event's own `receivedAt` decides at the edges. Files are read in a
fixed order (day, then source id, then log position), so a position in that order (a file and a
line) is a place a replay can resume from. Only finalized files are read: a `.partial` file is
still being written.

The archive is read from its folder, or from its bucket with `SLUICE_ARCHIVE_STORAGE=s3`
(`archive_location`): the same layout, listed with one request per source and day folder, and
each file streamed from the bucket as it is read.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgspec

from sluice.archive.bucket import archive_bucket, day_files, day_folders, source_prefixes
from sluice.archive.layout import (
    SEGMENT_LOGS,
    archive_root,
    day_of,
    logs_dir,
    parse_day,
    parse_file_name,
    source_folder,
    source_of_folder,
)
from sluice.config import Settings
from sluice.errors import SluiceError
from sluice.objectstore import ObjectStore
from sluice.spec.timestamps import parse_ms

_decode = msgspec.json.Decoder().decode


class ArchiveQueryError(SluiceError):
    """A time or filter given to the archive reader cannot be used."""


def parse_time(value: str) -> int:
    """Epoch milliseconds of an ISO-8601 time (UTC when it has no offset) or of a number of ms."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    ms = parse_ms(text)
    if ms is None:
        raise ArchiveQueryError(f"{value!r} is neither ISO-8601 nor epoch milliseconds")
    return ms


@dataclass(frozen=True, slots=True)
class ArchiveQuery:
    """Events received in `[start_ms, end_ms)`, optionally of one source, type and event name."""

    start_ms: int
    end_ms: int
    source_id: str | None = None
    type: str | None = None
    event: str | None = None

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise ArchiveQueryError("the end of the range must be after its start")

    def matches(self, event: dict[str, Any], received_at_ms: int) -> bool:
        return (
            self.start_ms <= received_at_ms < self.end_ms
            and (self.type is None or event.get("type") == self.type)
            and (self.event is None or event.get("event") == self.event)
        )


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """One finalized file: where it is and what it covers."""

    path: Path
    source_id: str
    day_ms: int
    first_seq: int
    last_seq: int
    size: int  # compressed bytes
    # The bucket it is in (then `path` is its key, relative); None for a local file.
    bucket: ObjectStore | None = field(default=None, compare=False, repr=False)

    def open(self) -> IO[bytes]:
        return open(self.path, "rb") if self.bucket is None else self.bucket.open(self.key)

    @property
    def key(self) -> str:
        return self.path.as_posix()

    @property
    def order(self) -> tuple[int, str, int]:
        """The file's place in the reading order."""
        return (self.day_ms, self.source_id, self.first_seq)

    @property
    def name(self) -> str:
        """`<source-folder>/<day>/<file>`: how state files and messages name it."""
        return f"{self.path.parent.parent.name}/{self.path.parent.name}/{self.path.name}"


@dataclass(frozen=True, slots=True)
class ArchivedEvent:
    """One archived event: the decoded message, its line as stored, and where it was read."""

    file: ArchiveFile
    line: int  # 1-based, counting every line of the file
    received_at_ms: int
    event: dict[str, Any]
    raw: bytes


def archive_location(settings: Settings) -> Path | ObjectStore:
    """Where the archive is read from: its bucket with s3 storage, else its folder."""
    return archive_bucket(settings) or archive_root(settings)


def archive_files(root: Path | ObjectStore, query: ArchiveQuery) -> list[ArchiveFile]:
    """The finalized files of the day folders the query's range touches, in reading order."""
    if isinstance(root, ObjectStore):
        return _bucket_files(root, query)
    first_day, last_day = day_of(query.start_ms), day_of(query.end_ms - 1)
    base = logs_dir(root)
    if query.source_id is not None:
        folders = [source_folder(query.source_id)]
    else:
        try:
            folders = [e.name for e in os.scandir(base) if e.is_dir()]
        except FileNotFoundError:
            return []
    found: list[ArchiveFile] = []
    for folder in folders:
        source_id = source_of_folder(folder)
        try:
            days = list(os.scandir(base / folder))
        except FileNotFoundError:
            continue
        for day in days:
            day_ms = parse_day(day.name)
            if day_ms is None or not first_day <= day_ms <= last_day:
                continue
            for entry in os.scandir(day.path):
                seqs = parse_file_name(entry.name)
                if seqs is not None:
                    path = Path(entry.path)
                    size = entry.stat().st_size
                    found.append(ArchiveFile(path, source_id, day_ms, *seqs, size))
    found.sort(key=lambda f: f.order)
    return found


def _bucket_files(bucket: ObjectStore, query: ArchiveQuery) -> list[ArchiveFile]:
    first_day, last_day = day_of(query.start_ms), day_of(query.end_ms - 1)
    if query.source_id is not None:
        sources = [f"{SEGMENT_LOGS}/{source_folder(query.source_id)}/"]
    else:
        sources = list(source_prefixes(bucket))
    found: list[ArchiveFile] = []
    for source_prefix in sources:
        source_id = source_of_folder(source_prefix.rstrip("/").rsplit("/", 1)[-1])
        for day_ms, day_prefix in day_folders(bucket, source_prefix):
            if not first_day <= day_ms <= last_day:
                continue
            for info in day_files(bucket, day_prefix):
                path = Path(info.key)
                seqs = parse_file_name(path.name)
                assert seqs is not None  # day_files lists archive files only
                found.append(ArchiveFile(path, source_id, day_ms, *seqs, info.size, bucket))
    found.sort(key=lambda f: f.order)
    return found


def read_file(
    file: ArchiveFile, query: ArchiveQuery, skip_lines: int = 0
) -> Iterator[ArchivedEvent]:
    """The events of one file the query matches, after its first `skip_lines` lines."""
    with file.open() as stream, gzip.open(stream, "rb") as lines:
        for number, raw in enumerate(lines, 1):
            if number <= skip_lines:
                continue
            raw = raw.rstrip(b"\n")
            if not raw:
                continue
            event = _decode(raw)
            received = parse_ms(event.get("receivedAt"))
            if received is None:  # not Sluice's: place it on its folder's day
                received = file.day_ms
            if query.matches(event, received):
                yield ArchivedEvent(file, number, received, event, raw)


def read_archive(root: Path | ObjectStore, query: ArchiveQuery) -> Iterator[ArchivedEvent]:
    """Every archived event the query matches, in reading order."""
    for file in archive_files(root, query):
        yield from read_file(file, query)
