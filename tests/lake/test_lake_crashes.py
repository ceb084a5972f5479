"""kill -9 in the middle of a load or of a compaction: afterwards each event is in the lake once.

The killed process is a real subprocess that SIGKILLs itself at a chosen write or delete of its
storage, so that the files on disk are exactly what a crash at that point leaves.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from lake_kit import append, load, query, raw

from sluice.lake.backend import LakeBackend
from sluice.lake.compaction import compact
from sluice.lake.storage import LocalStorage
from sluice.store.sqlite import SqliteStore

_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import msgspec
    from sluice.config import Settings
    from sluice.lake.backend import LakeBackend
    from sluice.lake.compaction import compact
    from sluice.lake.storage import LocalStorage
    from sluice.store.sqlite import SqliteStore
    from sluice.warehouse.loader import WarehouseLoader

    db, root, what, method = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    at = int(sys.argv[5])
    calls = [0]

    class Dying(LocalStorage):
        def put(self, path, data):
            if method == "put":
                calls[0] += 1
                if calls[0] == at:
                    os.kill(os.getpid(), signal.SIGKILL)
            super().put(path, data)

        def delete(self, path):
            if method == "delete":
                calls[0] += 1
                if calls[0] == at:
                    os.kill(os.getpid(), signal.SIGKILL)
            super().delete(path)

    storage = Dying(root)
    if what == "load":
        store = SqliteStore(Path(db))
        body = msgspec.json.encode({"id": "lake", "type": "lake"})
        loader = WarehouseLoader(
            Settings(), store, body,
            backend_factory=lambda c: LakeBackend(storage, compact_files=0), chunk_events=40,
        )
        loader.load_once()
    else:
        compact(storage, LakeBackend(storage).manifest.position)
    """
)


def _killed(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, *args], capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "log.db")
    try:
        yield s
    finally:
        s.close()


def _events(n: int, hour: int) -> list[dict[str, object]]:
    stamp = f"2026-11-28T{hour:02d}:00:00.000Z"
    return [
        {"type": "track", "event": f"E{k % 3}", "receivedAt": stamp, "properties": {"k": k}}
        for k in range(n)
    ]


def _exactly_once(root: Path, ids: list[str]) -> None:
    """Every id once: through the views, and through a plain glob of the files."""
    viewed = sorted(i for (i,) in query(root, "SELECT id FROM tracks"))
    assert viewed == sorted(ids)
    globbed = sorted(i for (i,) in raw(root, "web/tracks", "SELECT id FROM {t}"))
    assert globbed == sorted(ids)
    per_event = (
        sum(n for (n,) in query(root, "SELECT count(*) FROM e0 UNION ALL SELECT count(*) FROM e1"))
        + query(root, "SELECT count(*) FROM e2")[0][0]
    )
    assert per_event == len(ids)


# Puts of a load's first chunk: the manifest with its pending files, 6 data files (tracks and
# three event tables over two hours... see _events), then the commit. Kill at the first data
# file, in the middle, and at the commit itself (its data files all written).
@pytest.mark.parametrize("at", [2, 4, 8, 12], ids=["first-file", "mid", "commit", "2nd-chunk"])
def test_a_load_killed_mid_write_leaves_each_event_once_after_the_next_load(
    store: SqliteStore, tmp_path: Path, at: int
) -> None:
    root = tmp_path / "lake"
    ids = append(store, *_events(30, 10), *_events(30, 11))
    _killed(str(tmp_path / "log.db"), str(root), "load", "put", str(at))
    position = LakeBackend(LocalStorage(root)).manifest.position
    assert position < 60
    # More events before the next load: its chunk ranges differ from the killed one's.
    ids += append(store, *_events(25, 11))
    report = load(store, root, chunk=40)
    assert report.start_position == position and report.position == 85
    _exactly_once(root, ids)
    assert not list(root.rglob("*.tmp"))


@pytest.mark.parametrize(
    ("method", "at"),
    [("put", 1), ("delete", 1), ("delete", 2)],
    ids=["before-merged-file", "after-merged-file", "mid-deletes"],
)
def test_a_compaction_killed_midway_loses_and_doubles_nothing(
    store: SqliteStore, tmp_path: Path, method: str, at: int
) -> None:
    root = tmp_path / "lake"
    ids: list[str] = []
    for _ in range(3):
        ids += append(store, *_events(12, 10))
        load(store, root)
    assert len(list((root / "web" / "tracks").rglob("*.parquet"))) == 3
    _killed(str(tmp_path / "log.db"), str(root), "compact", method, str(at))
    viewed = sorted(i for (i,) in query(root, "SELECT id FROM tracks"))
    assert viewed == sorted(ids)  # readers through the views: never a lost or doubled row
    report = compact(LocalStorage(root), LakeBackend(LocalStorage(root)).manifest.position)
    assert report.removed >= 1
    _exactly_once(root, ids)
    assert len(list((root / "web" / "tracks").rglob("*.parquet"))) == 1


def test_loads_compact_a_partition_past_compact_files(store: SqliteStore, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    ids: list[str] = []
    counts = []
    for _ in range(4):
        ids += append(store, *_events(6, 10))
        load(store, root, compact_files=3)
        counts.append(len(list((root / "web" / "tracks").rglob("*.parquet"))))
    assert counts == [1, 2, 1, 2]
    names = sorted(p.name for p in (root / "web" / "tracks").rglob("*.parquet"))
    # The merged file is named by the range of the three it replaced.
    assert names == [
        "part-000000000001-000000000018.parquet",
        "part-000000000019-000000000024.parquet",
    ]
    _exactly_once(root, ids)
