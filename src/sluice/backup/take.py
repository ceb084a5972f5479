"""`sluice backup`: a consistent copy of one machine's data, taken while `sluice serve` runs.

It copies, in this order:

1. each DuckDB warehouse, opened read-only: while that connection is open no loader can open the
   file, so a plain copy of it (and of its `.wal`) is consistent. Measured against DuckDB's own
   `COPY FROM DATABASE` into an attached file: 0.1-0.2 s against 6.6 s for a 44 MB warehouse of
   3,000,000 rows, and the copy keeps the file as it was (block size, digests). The connections
   stay open until the log's snapshot is taken, so no load (and no log trim, which reads their
   positions) can move past the copied log;
2. the SQLite log with the online backup API, in steps of 4 MiB, inside one read transaction:
   its snapshot is the log as it was at the start. Steps without that transaction start over
   after every commit of another process, which under ingest is forever (measured: never done
   in 300 s at 10,000 events/s). A reader holds no lock a writer waits for in WAL mode; each
   step is flushed to disk before the next, because one flush of the whole copy at its end
   stalled the collector's commits (fsync) for 110-300 ms;
3. the archive's finished files up to the log's position: a file finished later may hold events
   the copied log does not have, and the restored archive writer writes those again from the log.

So the restored warehouses and archive are never ahead of the restored log, and every consumer
resumes inside it. With PostgreSQL the store is not copied (`pg_dump` or PITR does that); the
local parts are.
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
from sluice.archive.layout import archive_root, logs_dir, parse_file_name
from sluice.backup.manifest import (
    LOG_FILE,
    BackupError,
    BackupFile,
    BackupWarehouse,
    Manifest,
    copy_file,
    file_digest,
    megabytes,
    now_iso,
    resolve_target,
    write_manifest,
)
from sluice.config import Settings
from sluice.warehouse.base import LOADS_TABLE, META_SCHEMA
from sluice.warehouse.factory import (
    DEFAULT_DUCKDB_FILE,
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
LOG_STEP_PAGES = 1024  # 4 MiB of SQLite's 4 KiB pages
DEFAULT_WAREHOUSE_WAIT_S = 600.0  # a load of a large backlog takes minutes
LOCK_RETRY_S = 0.25
_HAS_TABLE = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"

Say = Callable[[str], None]


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
        warehouses, files = _copy_warehouses(bodies, settings.data_dir, dest, wait_s, say, held)
        started = time.monotonic()
        position, log_file = _copy_log(settings.log_path, dest / LOG_FILE, release=held.close)
        if warehouses and any(w.position is not None for w in warehouses):
            say(f"warehouses released after {started - held_since:.1f} s held read-only")
    log_copy_s = round(time.monotonic() - started, 2)
    say(
        f"log: {megabytes(log_file.bytes)} copied to log position {position} in {log_copy_s} s"
        " (from one read snapshot; writers were not blocked)"
    )
    archived, newer = _copy_archive(settings, dest, archive, up_to=position, say=say)
    if newer:
        say(
            f"archive: {newer} files finished after the log's copy left out (the restored"
            " archive writer writes their events again from the log)"
        )
    return Manifest(
        sluice_version=__version__, created_at=now_iso(), store="sqlite", log_position=position,
        archive=archive, warehouses=warehouses, files=[log_file, *files, *archived],
        log_copy_s=log_copy_s,
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
    archived, _ = _copy_archive(settings, dest, archive, up_to=None, say=say)
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
    with contextlib.closing(_read_only(log_path)) as db:
        rows = db.execute("SELECT body FROM config WHERE kind = 'warehouse' ORDER BY id")
        bodies = [bytes(body) for (body,) in rows]
    return bodies or [default_warehouse_body()]


def _copy_warehouses(
    bodies: list[bytes], data_dir: Path, dest: Path, wait_s: float, say: Say,
    held: contextlib.ExitStack,
) -> tuple[list[BackupWarehouse], list[BackupFile]]:  # fmt: skip
    """Copy each DuckDB warehouse under a read-only connection left open in `held`."""
    warehouses: list[BackupWarehouse] = []
    files: list[BackupFile] = []
    for body in bodies:
        config = parse_warehouse_config(body)
        if config.type != "duckdb":
            note = f"not copied: a {config.type} warehouse is its own database (dump it too)"
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
def _read_only(log_path: Path) -> sqlite3.Connection:
    uri = f"{log_path.absolute().as_uri()}?mode=ro"
    return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)


def _copy_log(log_path: Path, dest: Path, release: Callable[[], None]) -> tuple[int, BackupFile]:
    """The log as of one read snapshot, copied in steps; `release` runs once it is taken.

    Returns the snapshot's log position (its last seq) and the copy's entry.
    """
    source = _read_only(log_path)
    try:
        source.execute("BEGIN")
        position = int(source.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
        release()
        target = sqlite3.connect(dest, isolation_level=None)
        flush_fd: list[int] = []

        def flush(status: int, remaining: int, total: int) -> None:
            if not flush_fd:
                flush_fd.append(os.open(dest, os.O_RDONLY))
            os.fdatasync(flush_fd[0])

        try:
            source.backup(target, pages=LOG_STEP_PAGES, progress=flush)
            source.execute("COMMIT")
            # The processes these name run on the machine backed up, never on a restored one:
            # left in, a restore made soon after waited up to a lease period (30 s) for them
            # before its worker started anything, and `sluice status` listed them as alive.
            for table in ("leases", "worker_processes"):
                if target.execute(_HAS_TABLE, (table,)).fetchone():
                    target.execute(f"DELETE FROM {table}")
        finally:
            target.close()
            for fd in flush_fd:
                os.close(fd)
    finally:
        source.close()
    size, sha = file_digest(dest)
    return position, BackupFile(
        path=LOG_FILE, kind="log", restore_to=LOG_FILE, bytes=size, sha256=sha
    )


# --- the archive -----------------------------------------------------------------------------
def archive_files(root: Path) -> Iterator[tuple[Path, int]]:
    """Finished archive files (never the hidden `.partial` ones), with their last log position."""
    base = logs_dir(root)
    if not base.is_dir():
        return
    for source in sorted(base.iterdir()):
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):  # retention at work
            for day in sorted(source.iterdir()):
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    for path in sorted(day.iterdir()):
                        seqs = parse_file_name(path.name)
                        if seqs is not None:
                            yield path, seqs[1]


def _copy_archive(
    settings: Settings, dest: Path, mode: str, up_to: int | None, say: Say
) -> tuple[list[BackupFile], int]:
    """The archive's finished files up to log position `up_to` (None: all), copied or listed.

    Returns their entries and how many files were left out as newer than the copied log.
    """
    if mode == "skip":
        return [], 0
    started = time.monotonic()
    root = archive_root(settings)
    files: list[BackupFile] = []
    newer = 0
    for path, last_seq in archive_files(root):
        if up_to is not None and last_seq > up_to:
            newer += 1
            continue
        relative = path.relative_to(root).as_posix()
        try:
            if mode == "copy":
                size, sha = copy_file(path, dest / "archive" / relative)
            else:
                size, sha = path.stat().st_size, None
        except FileNotFoundError:
            continue  # deleted by archive retention meanwhile
        files.append(
            BackupFile(
                path=f"archive/{relative}", kind="archive", restore_to=relative, bytes=size,
                sha256=sha,
            )
        )  # fmt: skip
    total = megabytes(sum(f.bytes for f in files))
    if mode == "copy":
        say(f"archive: {len(files)} files ({total}) copied in {time.monotonic() - started:.1f} s")
    else:
        say(
            f"archive: {len(files)} files ({total}) in {root} listed in the manifest, not copied"
            " (--archive copy to include them)"
        )
    return files, newer
