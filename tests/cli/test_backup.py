"""`sluice backup` taken from a server that keeps receiving events, and `sluice restore` of it:
every event acknowledged before the backup began comes back, with the workspace, a warehouse
whose position matches its rows and an archive that is not ahead of the log; and the refusals."""

from __future__ import annotations

import fcntl
import gzip
import os
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pytest

from server import (
    SLUICE,
    SluiceServer,
    StartServer,
    clean_env,
    decoded,
    seed_sources,
    wait_for,
)
from sluice.archive.layout import parse_file_name
from sluice.backup.coverage import check_log_covers
from sluice.backup.manifest import BackupError
from sluice.config import Settings
from sluice.lake.config import open_lake
from sluice.lake.query import connect
from sluice.store.base import ConfigObject
from sluice.store.factory import open_store

SERVER_ENV = {
    "SLUICE_WORKERS": "1",
    "SLUICE_WAREHOUSE_INTERVAL_S": "1",
    "SLUICE_ARCHIVE_MAX_FILE_AGE_S": "1",
}
EVENT = "Backup Test"  # its warehouse table: web.backup_test


def sluice(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SLUICE, *args], env=clean_env(env), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    result = sluice(*args, env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def refused(*args: str, env: dict[str, str] | None = None) -> str:
    result = sluice(*args, env=env)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


def send_batch(server: SluiceServer, n: int = 20) -> list[str]:
    """`n` tracks in one batch; their message ids once acknowledged."""
    ids = [str(uuid.uuid4()) for _ in range(n)]
    batch = [
        {"type": "track", "userId": f"u{i}", "event": EVENT, "messageId": m,
         "properties": {"n": i, "plan": "pro"}}
        for i, m in enumerate(ids)
    ]  # fmt: skip
    res = server.post("/v1/batch", {"batch": batch})
    assert res.status == 200, res.body
    return ids


def warehouse_position(path: Path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute("SELECT position FROM _sluice.loads WHERE loader_id = 'default'")
        return int(row.fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


def identity_position(path: Path) -> int:
    """How far the identity graph in `path` (identity.db) has read the log."""
    db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT seq FROM identity_position").fetchone()
    finally:
        db.close()
    return int(row[0]) if row else 0


def manifest_of(backup: Path) -> dict[str, Any]:
    value: dict[str, Any] = msgspec.json.decode((backup / "manifest.json").read_bytes())
    return value


@dataclass
class Taken:
    server: SluiceServer
    backup: Path
    acknowledged_before: list[str]  # every id whose 200 came before the backup started
    during: int  # batches acknowledged while it ran


WAREHOUSES = [  # the default DuckDB one, and a lake compacting often (copies start over)
    {"id": "default", "type": "duckdb"},
    {"id": "lake", "type": "lake", "settings": {"compact_files": 3}},
]


def lake_position(data_dir: Path) -> int:
    return open_lake("lake", data_dir / "lake", {}).manifest.position


@pytest.fixture(scope="module")
def server(
    start_module_server: StartServer, tmp_path_factory: pytest.TempPathFactory
) -> SluiceServer:
    data_dir = tmp_path_factory.mktemp("served") / "data"
    seed_sources(data_dir)
    store = open_store(Settings(data_dir=data_dir))
    try:
        for body in WAREHOUSES:
            store.put_config(ConfigObject("warehouse", body["id"], msgspec.json.encode(body)))
    finally:
        store.close()
    server = start_module_server(SERVER_ENV, data_dir=data_dir)
    for _ in range(10):
        send_batch(server)
    archive = server.data_dir / "archive" / "segment-logs" / "web"
    wait_for(lambda: list(archive.glob("*/*.gz")), timeout=30, what="a finished archive file")
    wait_for(
        lambda: _position_or_zero(server.data_dir / "warehouse.duckdb") >= 200,
        timeout=30,
        what="a warehouse load",
    )
    wait_for(lambda: lake_position(server.data_dir) >= 200, timeout=30, what="a lake load")
    return server


def _position_or_zero(path: Path) -> int:
    try:
        return warehouse_position(path)
    except duckdb.Error:
        return 0  # not made yet, or held by a load right now


@pytest.fixture(scope="module")
def taken(server: SluiceServer, tmp_path_factory: pytest.TempPathFactory) -> Taken:
    """A backup (archive copied) taken while a thread keeps sending batches."""
    backup = tmp_path_factory.mktemp("backups") / "full"
    acked: list[tuple[float, list[str]]] = []
    stop = threading.Event()

    def keep_sending() -> None:
        while not stop.is_set():
            ids = send_batch(server)
            acked.append((time.monotonic(), ids))

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        wait_for(lambda: len(acked) >= 5, what="traffic before the backup")
        started = time.monotonic()
        ok("backup", str(backup), "--archive", "copy", "--data-dir", str(server.data_dir))
        finished = time.monotonic()
        wait_for(lambda: acked and acked[-1][0] > finished, what="traffic after the backup")
    finally:
        stop.set()
        sender.join()
    before = [m for t, ids in acked if t < started for m in ids]
    during = sum(1 for t, _ in acked if started <= t <= finished)
    return Taken(server, backup, before, during)


# --- a backup under traffic, restored ----------------------------------------------------------
def test_restore_has_every_event_acknowledged_before_the_backup(
    taken: Taken, tmp_path: Path, start_module_server: StartServer
) -> None:
    assert taken.during > 0  # the server was answering while the backup ran
    manifest = manifest_of(taken.backup)
    assert manifest["store"] == "sqlite"
    assert manifest["sluice_version"]
    kinds = {f["kind"] for f in manifest["files"]}
    assert kinds == {"log", "identity", "warehouse", "lake", "archive"}
    assert all(f["sha256"] and f["bytes"] > 0 for f in manifest["files"])

    data_dir = tmp_path / "restored"
    output = ok("restore", str(taken.backup), "--data-dir", str(data_dir))
    assert "match their SHA-256" in output

    store = open_store(Settings(data_dir=data_dir))
    try:
        events = store.read_after(0, 10_000_000)
        sources = {s.id for s in store.sources()}
    finally:
        store.close()
    ids = {e.message_id for e in events}
    missing = set(taken.acknowledged_before) - ids
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
    assert events[-1].seq == manifest["log_position"]
    assert sources == {"web", "app", "off", "probe"}

    # The warehouse is not ahead of the log, and holds exactly the events up to its position.
    warehouse, lake = sorted(manifest["warehouses"], key=lambda w: w["id"])
    position = warehouse_position(data_dir / "warehouse.duckdb")
    assert position == warehouse["position"]
    assert 200 <= position <= manifest["log_position"]
    loaded = {e.message_id for e in events if e.seq <= position and e.type == "track"}
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        tracks = {r[0] for r in con.execute("SELECT id FROM web.tracks").fetchall()}
        table = {r[0] for r in con.execute("SELECT id FROM web.backup_test").fetchall()}
    finally:
        con.close()
    assert tracks == loaded
    assert table == loaded

    # So is the lake (copied while it loaded and compacted): its files at its position.
    assert lake["position"] == lake_position(data_dir)
    assert 200 <= lake["position"] <= manifest["log_position"]
    in_lake = {e.message_id for e in events if e.seq <= lake["position"] and e.type == "track"}
    with connect(open_lake("lake", data_dir / "lake", {})) as db:
        rows = db.execute("SELECT id, count(*) FROM web.backup_test GROUP BY 1").fetchall()
    assert dict(rows) == dict.fromkeys(in_lake, 1)

    # The archive's files hold events of the restored log only, none past its end.
    by_id = {e.message_id: e.seq for e in events}
    files = sorted((data_dir / "archive").glob("segment-logs/*/*/*.gz"))
    assert len(files) == sum(1 for f in manifest["files"] if f["kind"] == "archive") > 0
    for path in files:
        first, last = parse_file_name(path.name)  # type: ignore[misc]
        assert last <= manifest["log_position"]
        lines = gzip.decompress(path.read_bytes()).splitlines()
        seqs = [by_id[msgspec.json.decode(line)["messageId"]] for line in lines]
        assert seqs == list(range(first, last + 1))

    # The identity graph came back too, not ahead of the log: its profiles are not rebuilt from
    # what log retention left, and it goes on from its position.
    position = identity_position(data_dir / "identity.db")
    assert position == manifest["identity_position"]
    assert 0 < position <= manifest["log_position"]

    # The restored data dir serves: a new event lands after the restored log and gets loaded.
    restored = start_module_server(SERVER_ENV, data_dir=data_dir)
    new_ids = send_batch(restored, 3)
    wait_for(
        lambda: _position_or_zero(data_dir / "warehouse.duckdb") > manifest["log_position"],
        timeout=30,
        what="the restored warehouse loading the new events",
    )
    wait_for(
        lambda: lake_position(data_dir) > manifest["log_position"],
        timeout=30,
        what="the restored lake loading the new events",
    )
    wait_for(
        lambda: identity_position(data_dir / "identity.db") > manifest["log_position"],
        timeout=30,
        what="the restored identity graph reading the new events",
    )
    new = restored.store.read_after(manifest["log_position"], 100)
    assert [e.message_id for e in new] == new_ids
    assert decoded(new)[0]["event"] == EVENT
    restored.close()


# --- refusals ----------------------------------------------------------------------------------
def test_backup_refuses_a_dest_that_is_not_empty(server: SluiceServer, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    error = refused("backup", str(dest), "--data-dir", str(server.data_dir))
    assert f"{dest} exists and is not empty" in error
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]


def test_backup_refuses_a_data_dir_without_a_store(tmp_path: Path) -> None:
    error = refused("backup", str(tmp_path / "dest"), "--data-dir", str(tmp_path / "nothing"))
    assert "no Sluice store in" in error
    assert not (tmp_path / "dest").exists()


def test_restore_refuses_a_data_dir_with_a_store(taken: Taken, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    seed_sources(data_dir)
    error = refused("restore", str(taken.backup), "--data-dir", str(data_dir))
    assert f"{data_dir / 'log.db'} exists" in error
    assert not (data_dir / "warehouse.duckdb").exists()


def test_restore_refuses_a_data_dir_a_server_holds(taken: Taken) -> None:
    pid = taken.server.proc.pid if taken.server.proc else None
    error = refused("restore", str(taken.backup), "--data-dir", str(taken.server.data_dir))
    assert f"sluice serve (PID {pid}) is running on the data dir" in error
    assert str(taken.server.data_dir) in error


def test_restore_refuses_a_data_dir_whose_serve_lock_is_held(taken: Taken, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    fd = os.open(data_dir / "serve.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        error = refused("restore", str(taken.backup), "--data-dir", str(data_dir))
    finally:
        os.close(fd)
    assert "is running on the data dir" in error
    assert sorted(p.name for p in data_dir.iterdir()) == ["serve.lock"]


@pytest.mark.parametrize("damaged", ["log.db", "identity.db", "warehouse.duckdb", "archive"])
def test_restore_checks_every_checksum_before_writing(
    taken: Taken, tmp_path: Path, damaged: str
) -> None:
    backup = tmp_path / "backup"
    shutil.copytree(taken.backup, backup)
    if damaged == "archive":
        path = next(backup.glob("archive/segment-logs/*/*/*.gz"))
    else:
        path = backup / damaged
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    data_dir = tmp_path / "data"
    error = refused("restore", str(backup), "--data-dir", str(data_dir))
    assert f"{path} is damaged" in error
    assert not data_dir.exists()


def test_a_damaged_identity_graph_fails_the_backup_naming_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    seed_sources(data_dir)
    (data_dir / "identity.db").write_bytes(b"not a database, " * 512)
    error = refused("backup", str(tmp_path / "dest"), "--data-dir", str(data_dir))
    assert f"cannot copy {data_dir / 'identity.db'}: file is not a database" in error
    assert not (tmp_path / "dest").exists()


def test_a_log_trimmed_past_the_graph_between_the_two_copies_is_refused(tmp_path: Path) -> None:
    """The graph is copied before the log: what it has not read must still be in the copied
    log. Only a trim in between breaks that (a graph already behind before is copied as is)."""
    log = tmp_path / "log.db"
    db = sqlite3.connect(log)
    db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY)")
    db.executemany("INSERT INTO events VALUES (?)", [(n,) for n in range(50, 60)])
    db.commit()
    db.close()
    graph = "the identity graph"
    check_log_covers(log, graph, position=49, first_before=40)  # nothing unread was trimmed
    check_log_covers(log, graph, position=10, first_before=50)  # behind before the backup
    with pytest.raises(BackupError, match="trimmed past the identity graph's position"):
        check_log_covers(log, graph, position=10, first_before=5)


def test_archive_is_listed_by_default(server: SluiceServer, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    ok("backup", str(backup), "--data-dir", str(server.data_dir))
    manifest = manifest_of(backup)
    listed = [f for f in manifest["files"] if f["kind"] == "archive"]
    assert manifest["archive"] == "list"
    assert listed and all(f["sha256"] is None for f in listed)
    assert not (backup / "archive").exists()
    output = ok("restore", str(backup), "--data-dir", str(tmp_path / "data"))
    assert f"listed {len(listed)} archive files without copying them" in output


def test_a_bucket_archive_and_a_postgres_warehouse_are_named_not_copied(tmp_path: Path) -> None:
    """The bucket keeps the archive: the backup names it; a local staging file (not uploaded
    yet) is not listed, its events are in the copied log. The restore names both, as what may
    be ahead of the restored log."""
    data_dir = tmp_path / "data"
    seed_sources(data_dir)
    staged = data_dir / "archive" / "segment-logs" / "web" / "1796688000000"
    staged.mkdir(parents=True)
    (staged / "00000000000000000001-00000000000000000002.gz").write_bytes(gzip.compress(b"{}\n"))
    env = {
        "SLUICE_ARCHIVE_STORAGE": "s3",
        "SLUICE_ARCHIVE_S3_BUCKET": "acme-archive",
        "SLUICE_ARCHIVE_S3_PREFIX": "sluice",
        "SLUICE_ARCHIVE_S3_REGION": "us-east-1",
    }
    store = open_store(Settings(data_dir=data_dir))
    try:
        body = {"id": "pg", "type": "postgres", "settings": {"url": "postgresql://h/db"}}
        store.put_config(ConfigObject("warehouse", "pg", msgspec.json.encode(body)))
    finally:
        store.close()
    backup = tmp_path / "backup"
    output = ok("backup", str(backup), "--data-dir", str(data_dir), env=env)
    assert "archive: in s3://acme-archive/sluice/ at" in output
    assert "warehouse pg: not copied" in output
    assert not [f for f in manifest_of(backup)["files"] if f["kind"] == "archive"]
    # Restored, what stayed outside and may be ahead of the log is named, with what to do.
    output = ok("restore", str(backup), "--data-dir", str(tmp_path / "restored"), env=env)
    assert (
        "Not in this backup: warehouse pg (postgres), the archive in s3://acme-archive."
        " If they kept running after it (past log position 0)"
    ) in " ".join(output.split())


# --- PostgreSQL ---------------------------------------------------------------------------------
def test_postgres_backup_copies_the_local_parts_and_names_pg_dump(
    pg_url: str, tmp_path: Path
) -> None:
    url = pg_url.replace("postgres@", "postgres:s3cret@", 1)
    data_dir = tmp_path / "data"
    seed_sources(data_dir, database_url=url)
    backup = tmp_path / "backup"
    result = sluice("backup", str(backup), "--data-dir", str(data_dir), "--database-url", url)
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    assert "The store is not in this backup: it is PostgreSQL" in result.stdout
    assert f"pg_dump --format=custom --file={backup}/sluice-store.pgdump {pg_url}" in result.stdout
    manifest = manifest_of(backup)
    assert manifest["store"] == "postgres"
    assert not (backup / "log.db").exists()

    output = ok("restore", str(backup), "--data-dir", str(tmp_path / "restored"))
    assert "This backup holds no store" in output
    assert "pg_restore --no-owner" in output
