"""A local lake in a backup (backup/lake_copy.py): exactly the files readers read at the
manifest's position, whatever else lies in the folder (a killed compaction's inputs, a killed
load's files), and a copy that reads back as the lake did."""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
from lake_kit import append, load, query

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
