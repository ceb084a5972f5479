"""The lake's paths: Segment Data Lakes' layout, and file names that carry log positions.

    <source>/<collection>/day=<YYYY-MM-DD>/hr=<HH>/part-<first>-<last>.parquet
    _sluice/discards/day=<YYYY-MM-DD>/hr=<HH>/part-<first>-<last>.parquet
    _sluice/manifest.json

`<source>` is the source's schema name and `<collection>` the table name the warehouse gives
(naming.py); day and hour are those of each row's `received_at`, in UTC. A file is named by the
range of log positions its load read, `(first, last]` written as `first + 1` and `last`:

- a load that is done again after a crash writes the same names, and the manifest's position
  says which files are committed (`last <= position`): a file beyond it belongs to a load that
  never committed, and readers leave it out;
- compaction merges a partition's files into one named by the whole range they cover; a file
  whose range lies inside another file's of the same partition is one of its inputs
  (`superseded`), left out by readers and deleted by the next compaction.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

META = "_sluice"
MANIFEST = f"{META}/manifest.json"
DISCARDS = "discards"
DISCARDS_PREFIX = f"{META}/{DISCARDS}"
SUFFIX = ".parquet"
_DIGITS = 12
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAME = re.compile(r"^part-(\d+)-(\d+)\.parquet$")


@dataclass(frozen=True, slots=True, order=True)
class LakeFile:
    """One data file: its collection (schema, table), partition folder and position range."""

    schema: str
    table: str
    partition: str  # "day=2026-11-28/hr=10"
    first: int
    last: int

    @property
    def path(self) -> str:
        return f"{self.folder}/{file_name(self.first, self.last)}"

    @property
    def folder(self) -> str:
        return f"{self.schema}/{self.table}/{self.partition}"


def file_name(first: int, last: int) -> str:
    return f"part-{first:0{_DIGITS}d}-{last:0{_DIGITS}d}{SUFFIX}"


def partition_of(hour: int) -> str:
    """The partition folder of an hour counted from the epoch (UTC)."""
    moment = _EPOCH + timedelta(hours=hour)
    return f"day={moment:%Y-%m-%d}/hr={moment:%H}"


def parse(path: str) -> LakeFile | None:
    """The file a lake path names, or None for anything else (the manifest, stray files)."""
    parts = path.split("/")
    if len(parts) != 5 or not parts[2].startswith("day=") or not parts[3].startswith("hr="):
        return None
    match = _NAME.match(parts[4])
    if match is None:
        return None
    first, last = int(match[1]), int(match[2])
    if first > last:
        return None
    return LakeFile(parts[0], parts[1], f"{parts[2]}/{parts[3]}", first, last)


def superseded(files: Iterable[LakeFile]) -> set[LakeFile]:
    """Files whose range lies inside a larger file's of the same partition (compacted)."""
    by_folder: dict[str, list[LakeFile]] = defaultdict(list)
    for f in files:
        by_folder[f.folder].append(f)
    out: set[LakeFile] = set()
    for group in by_folder.values():
        if len(group) < 2:
            continue
        # Widest first: a file is inside an earlier one when its range is within it.
        group.sort(key=lambda f: (f.first, -f.last))
        reach = group[0]
        for f in group[1:]:
            if f.first >= reach.first and f.last <= reach.last:
                out.add(f)
            else:
                reach = f if f.last > reach.last else reach
    return out


def live(files: Iterable[LakeFile], position: int) -> list[LakeFile]:
    """The files a reader reads: committed (`last <= position`) and not superseded."""
    committed = [f for f in files if f.last <= position]
    gone = superseded(committed)
    return sorted(f for f in committed if f not in gone)
