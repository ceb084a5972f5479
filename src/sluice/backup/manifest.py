"""What a backup holds, written last into it as `manifest.json`, and the file helpers both
directions use.

The manifest is what `sluice restore` trusts: every copied file with its size and SHA-256
(checked before anything is restored), where each goes back, and the log position the copy
stands at. A backup directory without it is an unfinished backup.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import msgspec

from sluice.archive.writer import fsync_dir
from sluice.errors import SluiceError

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
LOG_FILE = "log.db"
PG_DUMP_NAME = "sluice-store.pgdump"
COPY_CHUNK = 1 << 20
# Written back as the copy goes: a single fsync of 100 MB at the end stalled the collector's
# own commits (fsync, same disk) for ~70 ms; 4 MiB at a time did not show.
FLUSH_BYTES = 4 << 20
Say = Callable[[str], None]  # where a backup's progress lines go (the CLI prints them)


class BackupError(SluiceError):
    """A backup or restore cannot go on; the message names the file or directory and why."""


class BackupFile(msgspec.Struct, kw_only=True):
    """One file of the backup: where it is in it, where it goes back, its size and digest."""

    path: str  # in the backup directory, '/'-separated
    kind: str  # "log", "identity", "warehouse", "lake" or "archive"
    # log, identity, warehouse and lake: as the data dir or the workspace names it (relative to
    # the data dir, or absolute); archive: relative to the archive's root.
    restore_to: str
    bytes: int
    sha256: str | None = None  # None: listed, not copied (`--archive list`)


class BackupWarehouse(msgspec.Struct, kw_only=True):
    id: str
    type: str
    position: int | None = None  # its `_sluice.loads` position when it was copied
    note: str = ""


class Manifest(msgspec.Struct, kw_only=True):
    format: int = MANIFEST_FORMAT
    sluice_version: str
    created_at: str
    store: str  # "sqlite" (log.db is in the backup) or "postgres" (pg_dump's job)
    log_position: int  # the copied log's last seq (PostgreSQL: the store's when it was read)
    archive: str  # "copy", "list" or "skip"
    warehouses: list[BackupWarehouse]
    files: list[BackupFile]
    log_copy_s: float | None = None
    # identity.db's consumers' lowest position when it was copied (None: not in the backup)
    identity_position: int | None = None

    def copied(self) -> list[BackupFile]:
        return [f for f in self.files if f.sha256 is not None]

    def listed(self) -> list[BackupFile]:
        return [f for f in self.files if f.sha256 is None]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_manifest(dest: Path, manifest: Manifest) -> None:
    """Written last and renamed into place, so that a manifest means a finished backup."""
    temporary = dest / (MANIFEST_NAME + ".tmp")
    with open(temporary, "wb") as out:
        out.write(msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, dest / MANIFEST_NAME)
    fsync_dir(dest)


def read_manifest(src: Path) -> Manifest:
    path = src / MANIFEST_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BackupError(
            f"{path} does not exist: {src} is not a Sluice backup, or an unfinished one"
        ) from None
    try:
        manifest = msgspec.json.decode(raw, type=Manifest)
    except msgspec.DecodeError as exc:
        raise BackupError(f"{path} is not a Sluice backup manifest: {exc}") from None
    if manifest.format != MANIFEST_FORMAT:
        raise BackupError(
            f"{path} has format {manifest.format}; this Sluice reads format {MANIFEST_FORMAT}"
            f" (the backup was made by sluice {manifest.sluice_version})"
        )
    return manifest


def copy_file(src: Path, dest: Path) -> tuple[int, str]:
    """Copy, digest and fsync in one read of `src`; return its size and SHA-256."""
    digest = hashlib.sha256()
    size = unflushed = 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as reader, open(dest, "xb") as writer:
        while chunk := reader.read(COPY_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
            unflushed += len(chunk)
            if unflushed >= FLUSH_BYTES:
                writer.flush()
                os.fdatasync(writer.fileno())
                unflushed = 0
        writer.flush()
        os.fsync(writer.fileno())
    return size, digest.hexdigest()


def file_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as reader:
        while chunk := reader.read(COPY_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def resolve_target(target: str, data_dir: Path) -> Path:
    """A log or warehouse file's place: relative to the data dir unless absolute."""
    path = Path(target).expanduser()
    return path if path.is_absolute() else data_dir / path


def redacted_url(url: str) -> str:
    """The URL without its password, for commands printed to a terminal or a log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


def pg_dump_command(url: str, dest: Path) -> str:
    """The store's dump into the backup directory (the password comes from ~/.pgpass or
    PGPASSWORD, never from a command line that `ps` and shell histories show)."""
    return shlex.join(
        ["pg_dump", "--format=custom", f"--file={dest / PG_DUMP_NAME}", redacted_url(url)]
    )


def pg_restore_command(url: str | None, src: Path) -> str:
    target = redacted_url(url) if url else "postgresql://USER@HOST:5432/EMPTY_DATABASE"
    return shlex.join(
        [
            "pg_restore",
            "--no-owner",
            "--exit-on-error",
            f"--dbname={target}",
            str(src / PG_DUMP_NAME),
        ]
    )


def megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"
