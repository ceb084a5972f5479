"""The archive in a backup: its finished files up to the copied log's position, copied or
listed (`--archive`), or, kept in a bucket, named only.

A file finished after the log's snapshot may hold events the copied log does not have: it is
left out, and the restored archive writer writes those events again from the log.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from sluice.archive.bucket import archive_bucket
from sluice.archive.layout import archive_root, logs_dir, parse_file_name
from sluice.backup.manifest import BackupFile, Say, copy_file, megabytes
from sluice.config import Settings


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


def copy_archive(
    settings: Settings, dest: Path, mode: str, up_to: int | None, say: Say
) -> tuple[list[BackupFile], int]:
    """The archive's finished files up to log position `up_to` (None: all), copied or listed.

    Returns their entries and how many files were left out as newer than the copied log.
    """
    if mode == "skip":
        return [], 0
    bucket = archive_bucket(settings)
    if bucket is not None:  # its files are the bucket's; what waits to be uploaded is in the log
        say(
            f"archive: in {bucket.describe()}, not copied (the bucket keeps it; files not"
            " uploaded yet are written again from the log by a restored node)"
        )
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
