"""Compaction: a partition's small files merged into one, without a moment of lost or doubled rows.

Each load writes one file per collection and hour, so a lake loaded every minute gathers sixty
small files an hour per collection, and readers pay for every file they open. Compaction reads
a partition's committed files (in log order), writes them as one file named by the whole range
of positions they cover, then deletes them. The new file's range contains each input's, which
is what makes the two steps safe without a lock or a journal: from the moment the merged file
exists, readers leave the inputs out (`layout.superseded`), and a compaction killed before its
deletes leaves inputs that the next one deletes first. Killed before the merged file is
complete, it leaves only a temporary file, which no reader sees.

Only committed files are merged (`last <= position`): a load in progress is never touched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from sluice.lake.layout import LakeFile, file_name, parse, superseded
from sluice.lake.parquet import parquet_bytes
from sluice.lake.storage import LakeStorage

DEFAULT_COMPACT_FILES = 16  # files in a partition that start an automatic compaction


@dataclass(slots=True)
class CompactReport:
    """What one compaction did."""

    partitions: int = 0  # partitions merged into one file
    merged: int = 0  # files read and replaced
    removed: int = 0  # files deleted: merged ones, and leftovers of a killed compaction
    rows: int = 0
    written: list[str] = field(default_factory=list)


def compact(
    storage: LakeStorage,
    position: int,
    folders: Iterable[str] | None = None,
    *,
    min_files: int = 2,
) -> CompactReport:
    """Merge each partition (of `folders`, or the whole lake) holding `min_files` committed
    files or more into one; delete the files a killed compaction left superseded."""
    report = CompactReport()
    by_folder: dict[str, list[LakeFile]] = defaultdict(list)
    listings = [storage.list()] if folders is None else [storage.list(f) for f in sorted(folders)]
    for listing in listings:
        for path in listing:
            found = parse(path)
            if found is not None and found.last <= position:
                by_folder[found.folder].append(found)
    for files in by_folder.values():
        gone = superseded(files)
        for f in sorted(gone):
            storage.delete(f.path)
            report.removed += 1
        remaining = sorted((f for f in files if f not in gone), key=lambda f: f.first)
        if len(remaining) >= max(min_files, 2):
            _merge(storage, remaining, report)
    return report


def _merge(storage: LakeStorage, files: list[LakeFile], report: CompactReport) -> None:
    tables = []
    for f in files:
        data = storage.get(f.path)
        if data is None:  # another compaction took it meanwhile: leave this partition to it
            return
        tables.append(pq.read_table(pa.BufferReader(data)))
    merged = pa.concat_tables(tables, promote_options="permissive")
    head = files[0]
    target = f"{head.folder}/{file_name(files[0].first, max(f.last for f in files))}"
    storage.delete(target)  # only what a compaction killed mid-write left of it
    storage.put(target, parquet_bytes(merged))
    for f in files:
        storage.delete(f.path)
    report.partitions += 1
    report.merged += len(files)
    report.removed += len(files)
    report.rows += merged.num_rows
    report.written.append(target)
