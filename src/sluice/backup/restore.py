"""`sluice restore`: put a backup back into a data dir that holds no store.

Nothing is written before every copied file has been checked against the manifest (size and
SHA-256), and nothing that exists is ever overwritten: a restore over a live store would mix two
logs whose positions mean different events. Files land under a hidden temporary name and are
renamed into place, so an interrupted restore leaves no half file under a real name; what was
placed before a failure is removed again.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from sluice.archive.layout import archive_root
from sluice.archive.writer import fsync_dir
from sluice.backup.manifest import (
    LOG_FILE,
    BackupError,
    BackupFile,
    Manifest,
    copy_file,
    file_digest,
    read_manifest,
    resolve_target,
)
from sluice.config import Settings


def verify_backup(src: Path) -> Manifest:
    """The backup's manifest, once every file it copied is there with its size and digest."""
    manifest = read_manifest(src)
    for entry in manifest.copied():
        path = src / entry.path
        if not path.is_file():
            raise BackupError(f"{path} is missing: the manifest lists it; the backup is incomplete")
        size, sha = file_digest(path)
        if (size, sha) != (entry.bytes, entry.sha256):
            raise BackupError(
                f"{path} is damaged: its SHA-256 is {sha} ({size} bytes), the manifest says"
                f" {entry.sha256} ({entry.bytes} bytes). Nothing was restored."
            )
    return manifest


def plan_restore(manifest: Manifest, settings: Settings) -> list[tuple[BackupFile, Path]]:
    """Where each copied file goes; refuses any place that holds something already."""
    data_dir = settings.data_dir
    if manifest.store == "sqlite" and settings.database_url:
        raise BackupError(
            "this backup holds an embedded store (log.db) but SLUICE_DATABASE_URL (or"
            " --database-url) is set: unset it to restore into a data dir"
        )
    log_path = data_dir / LOG_FILE
    if manifest.store == "sqlite":
        for path in (log_path, Path(f"{log_path}-wal")):
            if path.exists():
                raise BackupError(
                    f"{path.absolute()} exists: {data_dir.absolute()} holds a store already."
                    " Restore into a new --data-dir (move this one away first to replace it)"
                )
    archive = archive_root(settings)
    plan: list[tuple[BackupFile, Path]] = []
    for entry in manifest.copied():
        if entry.kind == "archive":
            target = archive / entry.restore_to
            if target.exists() and target.stat().st_size == entry.bytes:
                continue  # the archive survived elsewhere: its finished files never change
        else:
            target = resolve_target(entry.restore_to, data_dir)
        if target.exists():
            raise BackupError(
                f"{target.absolute()} exists: restore into a data dir that holds no store"
                " (move it away first to replace it)"
            )
        plan.append((entry, target))
    return plan


def restore(src: Path, plan: list[tuple[BackupFile, Path]]) -> None:
    """Copy the planned files into place, checking each digest again as it is copied."""
    placed: list[Path] = []
    for entry, target in plan:
        temporary = target.with_name(f".{target.name}.restoring")
        placed.append(temporary)
        temporary.unlink(missing_ok=True)
        try:
            size, sha = copy_file(src / entry.path, temporary)
            if (size, sha) != (entry.bytes, entry.sha256):
                raise BackupError(f"{src / entry.path} changed while it was being restored")
            temporary.rename(target)
            placed[-1] = target
        except BaseException:
            for path in placed:
                with contextlib.suppress(OSError):
                    path.unlink()
            raise
    for folder in {target.parent for _, target in plan}:
        fsync_dir(folder)


def missing_listed(manifest: Manifest, settings: Settings) -> list[BackupFile]:
    """Archive files the backup listed without copying that are not in the archive folder."""
    root = archive_root(settings)
    return [
        f for f in manifest.listed() if f.kind == "archive" and not (root / f.restore_to).exists()
    ]
