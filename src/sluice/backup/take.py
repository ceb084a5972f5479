"""`sluice backup`: a consistent copy of one machine's data, taken while `sluice serve` runs.

It copies, in this order:

1. each DuckDB warehouse, opened read-only: while that connection is open no loader can open the
   file, so a plain copy of it (and of its `.wal`) is consistent. Measured against DuckDB's own
   `COPY FROM DATABASE` into an attached file: 0.1-0.2 s against 6.6 s for a 44 MB warehouse of
   3,000,000 rows, and the copy keeps the file as it was (block size, digests). The connections
   stay open until the log's snapshot is taken, so no load (and no log trim, which reads their
   positions) can move past the copied log; each lake in a local folder before them, at its
   manifest's position (lake_copy.py);
2. the identity graph (identity.db), as of one read snapshot (identity.py: before the log, so
   that it is never ahead of it);
3. the SQLite log, as of one read snapshot (sqlite_copy.py: the online backup API in steps of
   4 MiB inside one read transaction; writers are not blocked);
4. the archive's finished files up to the log's position: a file finished later may hold events
   the copied log does not have, and the restored archive writer writes those again from the log.

So the restored warehouses, graph and archive are never ahead of the restored log, and every
consumer resumes inside it. With PostgreSQL the store (and the graph's tables in it) is not
copied (`pg_dump` or PITR does that); the local parts are.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from sluice import __version__
from sluice.backup.archive_copy import copy_archive
from sluice.backup.coverage import check_log_covers, first_seq
from sluice.backup.identity import copy_identity
from sluice.backup.lake_copy import copy_lake
from sluice.backup.manifest import (
    LOG_FILE,
    BackupError,
    BackupFile,
    BackupWarehouse,
    Manifest,
    Say,
    copy_file,
    file_digest,
    megabytes,
    now_iso,
    resolve_target,
    write_manifest,
)
from sluice.backup.sqlite_copy import HAS_TABLE, read_only, snapshot_copy
from sluice.config import Settings
from sluice.warehouse.base import LOADS_TABLE, META_SCHEMA
from sluice.warehouse.factory import (
    DEFAULT_DUCKDB_FILE,
    DEFAULT_LAKE_DIR,
    WarehouseConfig,
    default_warehouse_body,
    parse_warehouse_config,
    warehouse_bodies,
)

ARCHIVE_MODES = ("list", "copy", "skip")
# The archive usually already has a copy elsewhere (`aws s3 sync`, docs/archive.md): its files
# never change once finished, so a sync copies each once, where every backup would copy all of
# them again. Listed, the manifest still says which files the restored log expects.
DEFAULT_ARCHIVE_MODE = "list"
DEFAULT_WAREHOUSE_WAIT_S = 600.0  # a load of a large backlog takes minutes
LOCK_RETRY_S = 0.25


def take_backup(
    settings: Settings,
    dest: Path,
    *,
    archive: str = DEFAULT_ARCHIVE_MODE,
    wait_s: float = DEFAULT_WAREHOUSE_WAIT_S,
    say: Say = lambda _: None,
) -> Manifest:
    """Copy the data dir of `settings` into the new directory `dest`; return its manifest."""
    if archive not in ARCHIVE_MODES:
        raise BackupError(f"--archive must be one of {', '.join(ARCHIVE_MODES)}, not {archive!r}")
    if not settings.database_url and not settings.log_path.exists():
        raise BackupError(
            f"no Sluice store in {settings.data_dir.absolute()} (no {LOG_FILE} there): check"
            " --data-dir or SLUICE_DATA_DIR"
        )
    made = _prepare(dest)
    try:
        if settings.database_url:
            manifest = _take_postgres(settings, dest, archive, wait_s, say)
        else:
            manifest = _take_sqlite(settings, dest, archive, wait_s, say)
        write_manifest(dest, manifest)
    except BaseException:
        _discard(dest, made)
        raise
    return manifest


def _take_sqlite(settings: Settings, dest: Path, archive: str, wait_s: float, say: Say) -> Manifest:
    with _sidecars_owned_like(settings.log_path):
        bodies = _sqlite_warehouse_bodies(settings.log_path)
        return _copy_sqlite(settings, bodies, dest, archive, wait_s, say)


def _copy_sqlite(
    settings: Settings, bodies: list[bytes], dest: Path, archive: str, wait_s: float, say: Say
) -> Manifest:
    with contextlib.ExitStack() as held:
        held_since = time.monotonic()
        first_before = first_seq(settings.log_path)
        warehouses, files = _copy_warehouses(bodies, settings.data_dir, dest, wait_s, say, held)
        identity = copy_identity(settings.data_dir, dest)  # before the log: never ahead of it
        started = time.monotonic()
        position, log_file = _copy_log(settings.log_path, dest / LOG_FILE, release=held.close)
        if any(w.type == "duckdb" and w.position is not None for w in warehouses):
            say(f"warehouses released after {started - held_since:.1f} s held read-only")
    log_copy_s = round(time.monotonic() - started, 2)
    for lake in (w for w in warehouses if w.type == "lake" and w.position is not None):
        check_log_covers(dest / LOG_FILE, f"lake {lake.id}", lake.position or 0, first_before)
    identity_position = None
    if identity is not None:
        entry, identity_position = identity
        check_log_covers(dest / LOG_FILE, "the identity graph", identity_position, first_before)
        files.append(entry)
        say(
            f"identity graph: {megabytes(entry.bytes)} copied (read to log position"
            f" {identity_position})"
        )
    say(
        f"log: {megabytes(log_file.bytes)} copied to log position {position} in {log_copy_s} s"
        " (from one read snapshot; writers were not blocked)"
    )
    archived, newer = copy_archive(settings, dest, archive, up_to=position, say=say)
    if newer:
        say(
            f"archive: {newer} files finished after the log's copy left out (the restored"
            " archive writer writes their events again from the log)"
        )
    return Manifest(
        sluice_version=__version__, created_at=now_iso(), store="sqlite", log_position=position,
        archive=archive, warehouses=warehouses, files=[log_file, *files, *archived],
        log_copy_s=log_copy_s, identity_position=identity_position,
    )  # fmt: skip


def _take_postgres(
    settings: Settings, dest: Path, archive: str, wait_s: float, say: Say
) -> Manifest:
    from sluice.store.factory import open_store

    store = open_store(settings)
    try:
        bodies = warehouse_bodies(store)
        with contextlib.ExitStack() as held:
            warehouses, files = _copy_warehouses(bodies, settings.data_dir, dest, wait_s, say, held)
            position = store.last_seq()
    finally:
        store.close()
    # No cut at a position: the store's dump comes after this, and holds every file's events.
    archived, _ = copy_archive(settings, dest, archive, up_to=None, say=say)
    return Manifest(
        sluice_version=__version__, created_at=now_iso(), store="postgres",
        log_position=position, archive=archive, warehouses=warehouses,
        files=[*files, *archived],
    )  # fmt: skip


def _prepare(dest: Path) -> bool:
    """A new directory, or an empty one: never mix two backups or overwrite a file. Returns
    whether it was made here."""
    if dest.exists():
        if not dest.is_dir():
            raise BackupError(f"{dest} exists and is not a directory: give a new directory")
        if any(dest.iterdir()):
            raise BackupError(f"{dest} exists and is not empty: give a new directory")
        return False
    dest.mkdir(parents=True)
    return True


def _discard(dest: Path, made: bool) -> None:
    """An unfinished backup must not look like one: remove what this run wrote."""
    if made:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


@contextlib.contextmanager
def _sidecars_owned_like(log_path: Path) -> Iterator[None]:
    """Give the `-wal` and `-shm` files this run made the log's owner.

    Any connection, read-only too, leaves them beside the log. Made by a backup run as root (from
    cron, or before an upgrade) while the server was stopped, they were root's, and the server's
    own user could no longer open its store.
    """
    sidecars = [Path(f"{log_path}-wal"), Path(f"{log_path}-shm")]
    new = [path for path in sidecars if not path.exists()]
    try:
        yield
    finally:
        if new and os.geteuid() == 0:
            owner = log_path.stat()
            for path in new:
                with contextlib.suppress(OSError):
                    os.chown(path, owner.st_uid, owner.st_gid)


# --- warehouses ------------------------------------------------------------------------------
def _sqlite_warehouse_bodies(log_path: Path) -> list[bytes]:
    """The workspace's warehouses, read without opening a store (that would write)."""
    with contextlib.closing(read_only(log_path)) as db:
        rows = db.execute("SELECT body FROM config WHERE kind = 'warehouse' ORDER BY id")
        bodies = [bytes(body) for (body,) in rows]
    return bodies or [default_warehouse_body()]


def _copy_warehouses(
    bodies: list[bytes], data_dir: Path, dest: Path, wait_s: float, say: Say,
    held: contextlib.ExitStack,
) -> tuple[list[BackupWarehouse], list[BackupFile]]:  # fmt: skip
    """Copy each local lake (first: none is held), then each DuckDB warehouse under a read-only
    connection left open in `held`."""
    warehouses: list[BackupWarehouse] = []
    files: list[BackupFile] = []
    configs = sorted((parse_warehouse_config(b) for b in bodies), key=lambda c: c.type != "lake")
    for config in configs:
        if config.type == "lake" and config.settings.get("storage", "local") == "local":
            target = str(config.settings.get("path") or DEFAULT_LAKE_DIR)
            lake, lake_files = copy_lake(
                config, data_dir, dest, _name_in_backup(config, target), target, say
            )
            warehouses.append(lake)
            files.extend(lake_files)
            continue
        if config.type != "duckdb":
            note = _not_copied(config)
            warehouses.append(BackupWarehouse(id=config.id, type=config.type, note=note))
            say(f"warehouse {config.id}: {note}")
            continue
        target = str(config.settings.get("path") or DEFAULT_DUCKDB_FILE)
        path = resolve_target(target, data_dir)
        if not path.exists():
            note = "no file yet (nothing loaded so far): nothing to copy"
            warehouses.append(BackupWarehouse(id=config.id, type="duckdb", note=note))
            continue
        started = time.monotonic()
        con = _open_read_only(path, wait_s, say)
        held.callback(con.close)
        position = _loaded_position(con, config.id)
        name = _name_in_backup(config, target)
        size = 0
        for suffix in ("", ".wal"):  # a load killed mid-way leaves its WAL: replayed on open
            source = Path(str(path) + suffix)
            if suffix and not source.exists():
                continue
            n, sha = copy_file(source, dest / (name + suffix))
            size += n
            files.append(
                BackupFile(
                    path=name + suffix, kind="warehouse", restore_to=target + suffix, bytes=n,
                    sha256=sha,
                )
            )  # fmt: skip
        warehouses.append(BackupWarehouse(id=config.id, type="duckdb", position=position))
        say(
            f"warehouse {config.id}: {megabytes(size)} copied (loaded to log position"
            f" {position or 0}) in {time.monotonic() - started:.1f} s"
        )
    return warehouses, files


def _not_copied(config: WarehouseConfig) -> str:
    if config.type == "lake":  # in a bucket: the bucket keeps it
        return "not copied: a lake in a bucket stays there (the bucket keeps it)"
    return f"not copied: a {config.type} warehouse is its own database (dump it too)"


def _name_in_backup(config: WarehouseConfig, target: str) -> str:
    """Where a warehouse file goes in the backup: as in the data dir when it is inside it."""
    path = Path(target)
    if not path.is_absolute() and ".." not in path.parts and not target.startswith("~"):
        return path.as_posix()
    return f"warehouses/{config.id}/{path.name}"


def _open_read_only(path: Path, wait_s: float, say: Say) -> duckdb.DuckDBPyConnection:
    """A read-only connection, retried while a load holds the file."""
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise BackupError(f"cannot open the warehouse {path}: {exc}") from None
            if time.monotonic() >= deadline:
                raise BackupError(
                    f"the warehouse {path} was held by another process for {wait_s:.0f} s"
                    f" (a load, or a duckdb shell left open): {exc}"
                ) from None
            if not told:
                say(f"waiting for the process holding {path} to close it (a load)...")
                told = True
            time.sleep(LOCK_RETRY_S)


def _loaded_position(con: duckdb.DuckDBPyConnection, warehouse_id: str) -> int | None:
    try:
        row = con.execute(
            f'SELECT position FROM "{META_SCHEMA}"."{LOADS_TABLE}" WHERE loader_id = ?',
            [warehouse_id],
        ).fetchone()
    except duckdb.Error:
        return None  # never loaded: no meta tables yet
    return int(row[0]) if row else None


# --- the log ---------------------------------------------------------------------------------
def _copy_log(log_path: Path, dest: Path, release: Callable[[], None]) -> tuple[int, BackupFile]:
    """The log as of one read snapshot, copied in steps; `release` runs once it is taken.

    Returns the snapshot's log position (its last seq) and the copy's entry.
    """

    def at_snapshot(source: sqlite3.Connection) -> int:
        position = int(source.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
        release()
        return position

    def after_copy(target: sqlite3.Connection) -> None:
        # The processes these name run on the machine backed up, never on a restored one:
        # left in, a restore made soon after waited up to a lease period (30 s) for them
        # before its worker started anything, and `sluice status` listed them as alive.
        for table in ("leases", "worker_processes"):
            if target.execute(HAS_TABLE, (table,)).fetchone():
                target.execute(f"DELETE FROM {table}")

    position = snapshot_copy(log_path, dest, at_snapshot, after_copy)
    size, sha = file_digest(dest)
    return position, BackupFile(
        path=LOG_FILE, kind="log", restore_to=LOG_FILE, bytes=size, sha256=sha
    )
