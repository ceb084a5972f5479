"""Deletion in a Parquet lake (local directory or bucket): each file holding the subject, rewritten.

A lake's files are named by the log positions they cover, and readers choose the files to read
from those names and the manifest's position (lake/layout.py): the set of names *is* the lake.
So a file holding the subject's rows is replaced by one of the same name without them (an empty
file when none is left: removing the name could bring back older files it superseded). Storage
replaces a file atomically (temporary file, `fsync`, `rename`; a PUT on a bucket), so a kill -9
leaves every file whole, either the old one or the new one, and a later call rewrites those
still holding the subject. Every file is looked at, committed or not, superseded or not: "no
trace" includes files readers skip.

Discarded values (`_sluice/discards/`) of the rows removed go first: they are found by the ids
of those rows, which are gone once the data files are rewritten.

A load or compaction running at the same time may write the subject's rows again (it read them
from the log or from a file before this rewrote it). As for PostgreSQL (warehouses.py), the first
call writes a fence, `_sluice/deletions/<regulation>.json` with the log's last position then,
and the deletion is FINISHED only when the manifest's position has reached it and a whole pass
over the lake found nothing left of the subject; before, RETRYING.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from sluice.errors import SluiceError
from sluice.lake.layout import DISCARDS, META, parse
from sluice.lake.manifest import read_manifest
from sluice.lake.parquet import parquet_bytes
from sluice.lake.storage import LakeStorage
from sluice.privacy.targets.base import Subject, TargetOutcome
from sluice.privacy.targets.warehouse_rows import not_supported_reason, subject_column

FENCES = f"{META}/deletions"
MAX_PASSES = 3  # passes over the lake per call, while each still finds something to remove
LogHead = Callable[[], int]
OpenStorage = Callable[[], LakeStorage]


class _Fence(msgspec.Struct):
    regulation_id: str
    fence: int


@dataclass(slots=True)
class _Pass:
    files: int = 0  # files rewritten
    rows: int = 0  # data rows removed
    discards: int = 0  # discarded values removed
    row_ids: set[str] = field(default_factory=set)


class LakeTarget:
    """The subject's rows out of every Parquet file of one lake."""

    def __init__(self, warehouse_id: str, open_storage: OpenStorage, log_head: LogHead) -> None:
        self.warehouse_id = warehouse_id
        self._open_storage = open_storage
        self._log_head = log_head

    @property
    def name(self) -> str:
        return f"lake:{self.warehouse_id}"

    async def delete(self, regulation_id: str, subject: Subject) -> TargetOutcome:
        reason = not_supported_reason(subject)
        if reason is not None:
            return TargetOutcome(self.name, "NOT_SUPPORTED", f"lake {self.warehouse_id}: {reason}")
        return await asyncio.to_thread(self._delete, regulation_id, subject)

    def _delete(self, regulation_id: str, subject: Subject) -> TargetOutcome:
        try:
            storage = self._open_storage()
            fence = self._fence(storage, regulation_id)
            total = _Pass()
            clean = False
            for _ in range(MAX_PASSES):
                found = erase(storage, subject)
                total.files += found.files
                total.rows += found.rows
                total.discards += found.discards
                if not found.files:
                    clean = True
                    break
            position = read_manifest(storage).position
        except UnreadableFile as exc:  # not going to read better next time: a person must look
            return TargetOutcome(self.name, "FAILED", f"lake {self.warehouse_id}: {exc}")
        except (SluiceError, OSError) as exc:  # storage down, credentials, the manifest
            return TargetOutcome(self.name, "RETRYING", f"lake {self.warehouse_id}: {exc}")
        done = (
            f"lake {self.warehouse_id}: {total.rows} rows and {total.discards} discarded values"
            f" removed, {total.files} files rewritten"
        )
        if position < fence:
            why = f"waiting for its loads to pass log position {fence} (it is at {position})"
            return TargetOutcome(self.name, "RETRYING", f"{done}; {why}", total.rows)
        if not clean:
            why = "a load or compaction kept writing the subject's rows back: tried again later"
            return TargetOutcome(self.name, "RETRYING", f"{done}; {why}", total.rows)
        return TargetOutcome(self.name, "FINISHED", done, total.rows)

    def _fence(self, storage: LakeStorage, regulation_id: str) -> int:
        """The log position loads must pass (written by the first call, read by the others)."""
        path = f"{FENCES}/{_file_part(regulation_id)}.json"
        body = storage.get(path)
        if body is not None:
            return msgspec.json.decode(body, type=_Fence).fence
        fence = self._log_head()
        storage.put(path, msgspec.json.encode(_Fence(regulation_id, fence)))
        return fence


def erase(storage: LakeStorage, subject: Subject) -> _Pass:
    """One pass: find the files holding the subject's rows (reading only the columns that say
    so), remove those rows' discarded values, then rewrite each file without them (one file in
    memory at a time)."""
    done = _Pass()
    wanted = pa.array(subject.ids, pa.string())
    hits: list[tuple[str, str]] = []  # (path, column naming the subject)
    discard_files: list[str] = []
    for path in storage.list():
        found = parse(path)
        if found is None:
            continue
        if found.schema == META:
            if found.table == DISCARDS:
                discard_files.append(path)
            continue
        data = storage.get(path)
        if data is None:  # compacted away meanwhile
            continue
        parquet = _parquet(path, data)
        names = set(parquet.schema_arrow.names)
        column = subject_column(found.table, names, subject)
        if column is None:
            continue
        try:
            keys = parquet.read(columns=sorted({column, "id"} & names))
        except pa.ArrowException as exc:
            raise UnreadableFile(f"{path} cannot be read as Parquet ({exc})") from exc
        hit = pc.fill_null(pc.is_in(keys[column], value_set=wanted), False)
        if pc.any(hit).as_py():
            done.row_ids.update(v for v in pc.filter(keys["id"], hit).to_pylist() if v)
            hits.append((path, column))
    gone = pa.array(sorted(done.row_ids | set(subject.ids)), pa.string())
    for path in discard_files:
        table = _read(storage, path)
        if table is None or "row_id" not in table.column_names:
            continue
        hit = pc.fill_null(pc.is_in(table["row_id"], value_set=gone), False)
        count = pc.sum(hit).as_py() or 0
        if count:
            storage.put(path, parquet_bytes(table.filter(pc.invert(hit))))
            done.discards += count
            done.files += 1
    for path, column in hits:
        table = _read(storage, path)
        if table is None:
            continue
        hit = pc.fill_null(pc.is_in(table[column], value_set=wanted), False)
        kept = table.filter(pc.invert(hit))
        storage.put(path, parquet_bytes(kept))
        done.rows += len(table) - len(kept)
        done.files += 1
    return done


class UnreadableFile(SluiceError):
    """A lake file that is not Parquet any more: the subject's rows in it cannot be found."""


def _read(storage: LakeStorage, path: str) -> pa.Table | None:
    data = storage.get(path)
    if data is None:  # compacted away meanwhile
        return None
    try:
        return pq.read_table(pa.BufferReader(data))
    except pa.ArrowException as exc:
        raise UnreadableFile(f"{path} cannot be read as Parquet ({exc})") from exc


def _parquet(path: str, data: bytes) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(pa.BufferReader(data))
    except pa.ArrowException as exc:
        raise UnreadableFile(f"{path} cannot be read as Parquet ({exc})") from exc


def _file_part(regulation_id: str) -> str:
    """A regulation id as a file name (ids are Sluice's own, but never trust a path part)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in regulation_id) or "_"
