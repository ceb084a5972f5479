"""Where archive files live and what they are called: one place for the writer and the reader.

The layout is Segment's S3 destination's, so tools written for Segment's archives read ours:
`<root>/segment-logs/<source-id>/<received-day>/<file>.gz`, where `<received-day>` is the UTC
midnight of the events' `receivedAt` as epoch milliseconds. Segment's file names are opaque;
ours are `<first seq>-<last seq>.gz`, the log positions of the first and last event the file
holds, zero-padded to 20 digits (like Kafka's segment files) so that names sort in log order.
Naming by log position is what makes a crash harmless: a file re-written after a crash starts
after the last position already in a finalized file of its folder, so it cannot repeat events.

A file being written is `.<first seq>.gz.partial` in the same folder: hidden, never matching the
final pattern, and renamed atomically when complete.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote, unquote

from sluice.config import Settings

SEGMENT_LOGS = "segment-logs"
DAY_MS = 86_400_000
SEQ_DIGITS = 20
PARTIAL_SUFFIX = ".gz.partial"
_FINAL = re.compile(rf"(\d{{{SEQ_DIGITS},}})-(\d{{{SEQ_DIGITS},}})\.gz")
_EMPTY_SOURCE = "-"  # cannot be a source id (ids start with a letter or digit)


def archive_root(settings: Settings) -> Path:
    """The archive's folder: `archive_dir`, or `<data_dir>/archive` when it is not set."""
    return settings.archive_dir or settings.data_dir / "archive"


def day_of(ms: int) -> int:
    """UTC midnight of an epoch-milliseconds moment, in epoch milliseconds."""
    return ms - ms % DAY_MS


def source_folder(source_id: str) -> str:
    """A source id as a folder name (workspace ids are already safe; anything else is quoted)."""
    if not source_id:
        return _EMPTY_SOURCE
    return quote(source_id, safe="-_").replace(".", "%2E")  # never "." or ".."


def source_of_folder(name: str) -> str:
    return "" if name == _EMPTY_SOURCE else unquote(name)


def logs_dir(root: Path) -> Path:
    return root / SEGMENT_LOGS


def source_dir(root: Path, source_id: str) -> Path:
    return root / SEGMENT_LOGS / source_folder(source_id)


def day_dir(root: Path, source_id: str, day_ms: int) -> Path:
    return source_dir(root, source_id) / str(day_ms)


def file_name(first_seq: int, last_seq: int) -> str:
    return f"{first_seq:0{SEQ_DIGITS}d}-{last_seq:0{SEQ_DIGITS}d}.gz"


def partial_name(first_seq: int) -> str:
    return f".{first_seq:0{SEQ_DIGITS}d}{PARTIAL_SUFFIX}"


def parse_file_name(name: str) -> tuple[int, int] | None:
    """(first seq, last seq) of a finalized file's name; None for anything else."""
    match = _FINAL.fullmatch(name)
    if match is None:
        return None
    return int(match[1]), int(match[2])


def parse_day(name: str) -> int | None:
    """The day of a day folder's name, or None when the folder is not one."""
    if not name.isdigit():
        return None
    day = int(name)
    return day if day % DAY_MS == 0 else None
