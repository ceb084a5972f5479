"""Deleting a user from a real Parquet lake, on local disk and in a bucket (moto's S3 server).

Read back with DuckDB (every Parquet file, as a plain glob sees them, and through the lake's
views), the lake holds exactly the events of the others; a process killed with SIGKILL in the
middle of the rewrite leaves only whole files, and running the deletion again finishes it.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from targets_kit import OTHERS, SUBJECT, SUBJECT_EMAIL, load, seed

from ports import free_port
from s3server import REGION, S3Server, start_s3_server
from sluice.config import Settings
from sluice.lake.backend import LakeBackend
from sluice.lake.compaction import compact
from sluice.lake.config import open_lake
from sluice.lake.query import connect
from sluice.lake.storage import LocalStorage
from sluice.privacy.targets.base import Subject, TargetOutcome
from sluice.privacy.targets.external import external_targets
from sluice.privacy.targets.lake import LakeTarget
from sluice.store.sqlite import SqliteStore
from sluice.workspace.model import Warehouse, Workspace

ALICE = Subject("USER_ID", (SUBJECT,))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "log.db")
    try:
        yield s
    finally:
        s.close()


def run(target: Any, subject: Subject = ALICE) -> TargetOutcome:
    outcome: TargetOutcome = asyncio.run(target.delete("reg-1", subject))
    return outcome


def every_file(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.parquet"))


def glob_search(root: Path, needle: str) -> list[str]:
    """Each Parquet file (committed or not, superseded or not) whose any value, as text, holds
    `needle`: what a `read_parquet` glob over the lake could see."""
    found = []
    with duckdb.connect() as db:
        for path in every_file(root):
            columns = [f.name for f in pq.read_schema(path)]
            hit = " OR ".join(f'CAST("{c}" AS VARCHAR) LIKE ?' for c in columns)
            ((n,),) = db.execute(
                f"SELECT count(*) FROM read_parquet(?) WHERE {hit}",
                [str(path), *[f"%{needle}%"] * len(columns)],
            ).fetchall()
            if n:
                found.append(str(path.relative_to(root)))
    return found


def view_ids(backend: LakeBackend) -> set[str]:
    """The message ids every collection's view reads (users: the user ids)."""
    with connect(backend) as db:
        views = db.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema = 'web'"
        ).fetchall()
        ids: set[str] = set()
        for schema, table in views:
            rows = db.execute(f'SELECT id FROM "{schema}"."{table}"').fetchall()
            ids.update(f"{table}:{i}" for (i,) in rows)
    return ids


def lake_body(**settings: Any) -> dict[str, Any]:
    return {"id": "lake", "type": "lake", "settings": {"compact_files": 0, **settings}}


def loaded_lake(store: SqliteStore, tmp_path: Path) -> tuple[Path, set[str], set[str]]:
    """A lake loaded in several chunks (several files per collection), then the ids that must
    remain (before) and those that must go."""
    by_user = seed(store)
    load(store, tmp_path, lake_body(), chunk=8)
    by_user_2 = seed(store)  # a second load: more files, one partition compacted
    load(store, tmp_path, lake_body(), chunk=8)
    root = tmp_path / "lake"
    backend = open_lake("lake", root, {})
    compact(LocalStorage(root), backend.manifest.position, ["web/tracks/day=2026-11-28/hr=10"])
    everything = view_ids(open_lake("lake", root, {}))
    subject_ids = set(by_user[SUBJECT] + by_user_2[SUBJECT])
    gone = {i for i in everything if i.split(":", 1)[1] in subject_ids | {SUBJECT}}
    return root, everything - gone, gone


def test_local_lake_keeps_every_event_but_the_users(store: SqliteStore, tmp_path: Path) -> None:
    root, kept, gone = loaded_lake(store, tmp_path)
    assert gone and glob_search(root, SUBJECT) and glob_search(root, SUBJECT_EMAIL)
    (target,) = external_targets(
        Workspace(warehouses=[Warehouse(id="lake", type="lake", settings={"compact_files": 0})]),
        Settings(data_dir=tmp_path),
        store=store,
    )
    assert target.name == "lake:lake"

    outcome = run(target)

    assert outcome.status == "FINISHED", outcome
    assert outcome.removed == 20  # 10 rows per load of her 7 events
    assert glob_search(root, SUBJECT) == []
    assert glob_search(root, SUBJECT_EMAIL) == []  # her discarded `total` too
    assert view_ids(open_lake("lake", root, {})) == kept
    for user in OTHERS:
        assert glob_search(root, user)
    again = run(target)
    assert (again.status, again.removed) == ("FINISHED", 0)


def test_lake_waits_for_loads_to_pass_the_fence(store: SqliteStore, tmp_path: Path) -> None:
    seed(store)
    load(store, tmp_path, lake_body())
    seed(store)  # not loaded yet: a load may be reading these now
    root = tmp_path / "lake"
    target = LakeTarget("lake", lambda: LocalStorage(root), store.last_seq)
    first = run(target)
    assert first.status == "RETRYING"
    assert f"waiting for its loads to pass log position {store.last_seq()} (it is at 21)" in (
        first.detail
    )
    load(store, tmp_path, lake_body())  # the load writes her later events
    assert glob_search(root, SUBJECT)
    second = run(target)
    assert second.status == "FINISHED", second
    assert glob_search(root, SUBJECT) == []


def test_an_unreadable_file_fails_naming_it(store: SqliteStore, tmp_path: Path) -> None:
    seed(store)
    load(store, tmp_path, lake_body())
    root = tmp_path / "lake"
    broken = every_file(root)[0]
    broken.write_bytes(b"not parquet")
    outcome = run(LakeTarget("lake", lambda: LocalStorage(root), store.last_seq))
    assert outcome.status == "FAILED"
    assert f"{broken.relative_to(root)} cannot be read as Parquet" in outcome.detail


_KILLER = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from pathlib import Path
    from sluice.lake.storage import LocalStorage
    from sluice.privacy.targets.base import Subject
    from sluice.privacy.targets.lake import LakeTarget

    root, at, subject, head = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    puts = [0]

    class Dying(LocalStorage):
        def put(self, path, data):
            puts[0] += 1
            if puts[0] == at:  # half of the new file written, then killed
                target = self.root / path
                temp = target.with_name(f".{target.name}.killed.tmp")
                temp.write_bytes(bytes(data)[: len(data) // 2])
                os.kill(os.getpid(), signal.SIGKILL)
            super().put(path, data)

    target = LakeTarget("lake", lambda: Dying(root), lambda: head)
    asyncio.run(target.delete("reg-1", Subject("USER_ID", (subject,))))
    """
)


@pytest.mark.parametrize("at", [2, 4, 9], ids=["first-rewrite", "discards-done", "later-file"])
def test_kill_9_mid_rewrite_then_again_leaves_a_consistent_lake(
    store: SqliteStore, tmp_path: Path, at: int
) -> None:
    root, kept, _ = loaded_lake(store, tmp_path)
    before = {p: p.read_bytes() for p in every_file(root)}
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, str(root), str(at), SUBJECT, str(store.last_seq())],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    # Every file is whole (the old one or the new one): each reads, same names as before.
    assert sorted(every_file(root)) == sorted(before)
    for path in every_file(root):
        pq.read_table(path)
    changed = [p for p in every_file(root) if p.read_bytes() != before[p]]
    assert len(changed) == at - 2  # put 1 is the fence; each later put one whole file
    assert glob_search(root, SUBJECT)  # not done yet

    outcome = run(LakeTarget("lake", lambda: LocalStorage(root), store.last_seq))

    assert outcome.status == "FINISHED", outcome
    assert glob_search(root, SUBJECT) == []
    assert view_ids(open_lake("lake", root, {})) == kept
    # The killed write's half file is a temporary one, which no reader lists (it held the
    # new version: the file without her rows).
    temps = {p.name for p in root.rglob("*.tmp")}
    assert temps and not temps & {Path(p).name for p in LocalStorage(root).list()}


# --- a lake in a bucket ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = start_s3_server(free_port())
    try:
        yield server
    finally:
        server.stop()


def test_s3_lake_keeps_every_event_but_the_users(
    s3: S3Server, store: SqliteStore, tmp_path: Path
) -> None:
    s3.client("erasure").create_bucket()
    settings = {
        "storage": "s3",
        "bucket": "erasure",
        "prefix": "lake",
        "endpoint_url": s3.endpoint_url,
        "region": REGION,
        "access_key_id": s3.access_key_id,
        "secret_access_key": s3.secret_access_key,
        "path_style": True,
        "compact_files": 0,
    }
    by_user = seed(store)
    load(store, tmp_path, {"id": "lake", "type": "lake", "settings": settings}, chunk=8)
    everything = view_ids(open_lake("lake", tmp_path / "lake", settings))
    kept = {i for i in everything if i.split(":", 1)[1] not in {*by_user[SUBJECT], SUBJECT}}
    (target,) = external_targets(
        Workspace(warehouses=[Warehouse(id="lake", type="lake", settings=settings)]),
        Settings(data_dir=tmp_path),
        store=store,
    )

    outcome = run(target)

    assert outcome.status == "FINISHED", outcome
    assert outcome.removed == 10
    assert view_ids(open_lake("lake", tmp_path / "lake", settings)) == kept
    client = s3.client("erasure")
    for info in client.list("lake/"):
        if info.key.endswith(".parquet"):
            table = pq.read_table(pa.BufferReader(client.get(info.key)))
            text = str(table.to_pylist())
            assert SUBJECT not in text and SUBJECT_EMAIL not in text, info.key
    assert run(target).status == "FINISHED"


def test_lake_settings_that_cannot_work_fail_naming_the_field(tmp_path: Path) -> None:
    (target,) = external_targets(
        Workspace(warehouses=[Warehouse(id="lake", type="lake", settings={"storage": "s3"})]),
        Settings(data_dir=tmp_path),
    )
    outcome = run(target)
    assert outcome.status == "FAILED"
    assert "bucket" in outcome.detail


def test_s3_lake_unreachable_is_retrying_without_the_secret(
    store: SqliteStore, tmp_path: Path
) -> None:
    settings = {
        "storage": "s3",
        "bucket": "erasure-gone",
        "endpoint_url": "http://127.0.0.1:9",
        "region": REGION,
        "access_key_id": "AKIAERASURE",
        "secret_access_key": "erasure-secret-value",
        "path_style": True,
    }
    (target,) = external_targets(
        Workspace(warehouses=[Warehouse(id="lake", type="lake", settings=settings)]),
        Settings(data_dir=tmp_path),
        store=store,
    )
    outcome = run(target)
    assert outcome.status == "RETRYING", outcome
    assert "erasure-gone" in outcome.detail
    assert "erasure-secret-value" not in outcome.detail
