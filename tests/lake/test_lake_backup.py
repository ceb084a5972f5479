"""A local lake in a backup (backup/lake_copy.py): exactly the files readers read at the
manifest's position, whatever else lies in the folder (a killed compaction's inputs, a killed
load's files), and a copy that reads back as the lake did."""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
import pytest
from lake_kit import append, load, query

from sluice.backup import lake_copy
from sluice.backup.lake_copy import copy_lake
from sluice.lake.backend import LakeBackend
from sluice.lake.compaction import compact
from sluice.lake.layout import MANIFEST, parse
from sluice.lake.storage import LocalStorage
from sluice.store.sqlite import SqliteStore
from sluice.warehouse.factory import parse_warehouse_config

PAID = "SELECT id FROM web.paid ORDER BY id"


def test_the_copy_holds_the_live_files_only_and_reads_back_the_same(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    root = data_dir / "lake"
    store = SqliteStore(tmp_path / "log.db")
    try:
        for _ in range(3):  # three loads: three files a collection
            append(store, *[{"type": "track", "event": "Paid", "userId": "u"} for _ in range(5)])
            load(store, root)
        first = sorted(p for p in LocalStorage(root).list() if "/paid/" in p)[0]
        kept = (root / first).read_bytes()
        position = LakeBackend(LocalStorage(root)).manifest.position
        compact(LocalStorage(root), position)  # merged into one file a partition
        (root / first).write_bytes(kept)  # as a compaction killed before it deleted its inputs
        # A load killed before its commit: a file past the manifest's position.
        append(store, *[{"type": "track", "event": "Paid", "userId": "u"} for _ in range(5)])
        late = root / "web/paid/day=2026-11-28/hr=10/part-000000000016-000000000020.parquet"
        late.write_bytes(kept)
    finally:
        store.close()
    expected = query(root, PAID)
    assert len(expected) == 15

    config = parse_warehouse_config(msgspec.json.encode({"id": "lake", "type": "lake"}))
    backup = tmp_path / "backup"
    said: list[str] = []
    warehouse, files = copy_lake(config, data_dir, backup, "lake", "lake", said.append)
    assert warehouse.position == position == 15
    copied = {f.restore_to.removeprefix("lake/") for f in files}
    live = {f.path for f in LakeBackend(LocalStorage(root)).files()}
    assert copied == live | {MANIFEST}
    assert first not in copied and late.relative_to(root).as_posix() not in copied
    assert all(f.sha256 and f.bytes > 0 for f in files)
    assert len(said) == 1 and said[0].startswith(f"warehouse lake: lake of {len(live)} files (")

    restored = tmp_path / "restored" / "lake"
    shutil.copytree(backup / "lake", restored)
    assert query(restored, PAID) == expected
    assert all(parse(p) is not None for p in LocalStorage(restored).list() if p != MANIFEST)


def test_a_lake_never_loaded_has_nothing_to_copy(tmp_path: Path) -> None:
    config = parse_warehouse_config(msgspec.json.encode({"id": "lake", "type": "lake"}))
    warehouse, files = copy_lake(config, tmp_path, tmp_path / "backup", "lake", "lake", print)
    assert files == [] and warehouse.position is None and "nothing loaded" in warehouse.note


def test_a_compaction_during_the_copy_starts_it_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compaction (the real one) deletes the files the copy listed after the copy began: the
    copy starts over from a fresh listing and holds the merged file instead."""
    data_dir = tmp_path / "data"
    root = data_dir / "lake"
    store = SqliteStore(tmp_path / "log.db")
    try:
        for _ in range(3):
            append(store, *[{"type": "track", "event": "Paid", "userId": "u"} for _ in range(5)])
            load(store, root)
    finally:
        store.close()
    expected = query(root, PAID)
    real_copy = lake_copy.copy_file
    compacted: list[int] = []

    calls: list[Path] = []

    def copy_then_compact(src: Path, dest: Path) -> tuple[int, str]:
        calls.append(src)
        copied = real_copy(src, dest)
        if not compacted:  # right after the first file: the rest of the listing goes away
            compacted.append(compact(LocalStorage(root), 15).merged)
        return copied

    monkeypatch.setattr(lake_copy, "copy_file", copy_then_compact)
    config = parse_warehouse_config(msgspec.json.encode({"id": "lake", "type": "lake"}))
    backup = tmp_path / "backup"
    warehouse, files = copy_lake(config, data_dir, backup, "lake", "lake", lambda _: None)
    assert compacted and compacted[0] > 0
    assert warehouse.position == 15
    live = {f.path for f in LakeBackend(LocalStorage(root)).files()}
    # The first copy was abandoned at a file gone, then the live files copied again.
    assert len(calls) > len(live)
    assert {f.restore_to.removeprefix("lake/") for f in files} == live | {MANIFEST}
    assert sorted(p.name for p in (backup / "lake").rglob("*.parquet")) == sorted(
        Path(p).name for p in live
    )
    restored = tmp_path / "restored" / "lake"
    shutil.copytree(backup / "lake", restored)
    assert query(restored, PAID) == expected
