"""Where a lake's files live: a small interface, and the local directory behind it.

The lake only ever needs five things of its storage: put a *finished* file at a relative path
(all or nothing, replacing any file of that name), list the files under a prefix, read one,
delete one, and read the manifest back. Object storage (S3 and the like) gives exactly these:
a PUT is atomic and replaces, which is also why the lake writes whole files and never appends.
`LocalStorage` gives the same promises on a POSIX file system with a temporary file, `fsync`
and `rename`; `ObjectLakeStorage` (objectstorage.py) keeps the lake in an S3-compatible bucket.

Temporary files start with `.` and end with `.tmp`: no reader's `*.parquet` glob sees them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

TEMP_SUFFIX = ".tmp"


class LakeStorage(Protocol):
    """A lake's files, by relative path (`/`-separated, no leading `/`)."""

    def put(self, path: str, data: bytes | memoryview) -> None:
        """Write `data` as the whole file `path`, replacing it: readers see the old file or
        the new one, never a part (durable when this returns)."""
        ...

    def get(self, path: str) -> bytes | None:
        """The file's bytes, or None when there is no such file."""
        ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Every finished file under `prefix` (a folder), recursively; no temporary files."""
        ...

    def delete(self, path: str) -> None:
        """Remove the file (and any partial upload of it); nothing when it is gone already."""
        ...

    def locate(self, path: str) -> str:
        """What a reader (DuckDB, pyarrow) opens for `path`: a local file (a bucket's storage
        downloads a copy), so that readers need no network extension."""
        ...


class LocalStorage:
    """A lake in a local directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, path: str, data: bytes | memoryview) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")
        try:
            with open(temp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        _fsync_dir(target.parent)

    def get(self, path: str) -> bytes | None:
        try:
            return (self.root / path).read_bytes()
        except FileNotFoundError:
            return None

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return
        for folder, dirs, files in os.walk(base):
            dirs.sort()
            relative = Path(folder).relative_to(self.root).as_posix()
            for name in sorted(files):
                if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                    continue
                yield name if relative == "." else f"{relative}/{name}"

    def delete(self, path: str) -> None:
        """Also the partial copies a writer killed mid-`put` left of this file."""
        target = self.root / path
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        if target.parent.is_dir():
            for temp in target.parent.glob(f".{glob.escape(target.name)}.*{TEMP_SUFFIX}"):
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()

    def locate(self, path: str) -> str:
        return str(self.root / path)

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (a crash must not bring the old name back)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
