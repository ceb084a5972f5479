"""A lake in a local folder, in a backup: its manifest and the files readers read at its
position, copied while loads and compactions go on.

A lake's data files never change once written, and its manifest (replaced whole by each load)
says how far it has loaded; the files readers read are those committed at that position and
not superseded by a compacted one (lake/layout.py `live`). So the manifest is read first, and
exactly those files are copied, then the manifest's bytes as read: a load committing meanwhile
only adds files past the copied position (left out). A compaction may delete a file before it
is copied (it wrote the merged one first): the copy starts over from a fresh manifest, at most
`ATTEMPTS` times. Copied before the log's snapshot, the lake is never ahead of the restored log.

A lake in a bucket stays there (the bucket keeps it); its `path` holds only local copies.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sluice.backup.manifest import (
    BackupError,
    BackupFile,
    BackupWarehouse,
    Say,
    copy_file,
    file_digest,
)
from sluice.lake.layout import MANIFEST, live, parse
from sluice.lake.manifest import read_manifest
from sluice.lake.storage import LocalStorage
from sluice.warehouse.factory import WarehouseConfig, lake_path

ATTEMPTS = 5


def copy_lake(
    config: WarehouseConfig, data_dir: Path, dest: Path, name: str, restore_to: str, say: Say
) -> tuple[BackupWarehouse, list[BackupFile]]:
    """Copy the lake at `config`'s path into `dest / name`; entries restore to `restore_to`."""
    root = lake_path(config, data_dir)
    if not (root / MANIFEST).exists():
        note = "no manifest yet (nothing loaded so far): nothing to copy"
        return BackupWarehouse(id=config.id, type="lake", note=note), []
    for _ in range(ATTEMPTS):
        shutil.rmtree(dest / name, ignore_errors=True)
        copied = _copy_at_position(root, dest, name, restore_to)
        if copied is not None:
            position, files = copied
            size = sum(f.bytes for f in files)
            say(
                f"warehouse {config.id}: lake of {len(files) - 1} files ({size / 1e6:.1f} MB)"
                f" copied (loaded to log position {position})"
            )
            return BackupWarehouse(id=config.id, type="lake", position=position), files
    raise BackupError(
        f"the lake {root} kept changing under the copy ({ATTEMPTS} attempts: a compaction"
        " each time?): run the backup again"
    )


def _copy_at_position(
    root: Path, dest: Path, name: str, restore_to: str
) -> tuple[int, list[BackupFile]] | None:
    """The lake as of its manifest now; None when a file went away during the copy."""
    storage = LocalStorage(root)
    manifest_bytes = (root / MANIFEST).read_bytes()
    position = read_manifest(storage).position
    if (root / MANIFEST).read_bytes() != manifest_bytes:
        return None  # a load committed between the reads
    found = (parse(path) for path in storage.list())
    files: list[BackupFile] = []
    for lake_file in live((f for f in found if f is not None), position):
        try:
            n, sha = copy_file(root / lake_file.path, dest / name / lake_file.path)
        except FileNotFoundError:
            return None
        files.append(_entry(name, restore_to, lake_file.path, n, sha))
    target = dest / name / MANIFEST
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:
        out.write(manifest_bytes)
        out.flush()
        os.fsync(out.fileno())
    n, sha = file_digest(target)
    files.append(_entry(name, restore_to, MANIFEST, n, sha))
    return position, files


def _entry(name: str, restore_to: str, path: str, size: int, sha: str) -> BackupFile:
    return BackupFile(
        path=f"{name}/{path}", kind="lake", restore_to=f"{restore_to}/{path}", bytes=size,
        sha256=sha,
    )  # fmt: skip
