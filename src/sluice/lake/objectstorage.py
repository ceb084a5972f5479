"""A lake in an S3-compatible bucket: `LakeStorage` over `sluice.objectstore`.

The lake's commit protocol needs nothing of its storage that a bucket lacks: a PUT is atomic
and replaces the object, so a file is never seen half-written, and the manifest, replaced last,
is the commit (backend.py). The client checks every upload (`Content-MD5` on each request, then
a HEAD showing the size and SHA-256 sent). A file past the multipart threshold is written to a
local temporary file first and uploaded from it in parts, so that no second copy of it is held
in memory; a smaller one goes up in one PUT from memory.

Readers get local copies: DuckDB's `httpfs` extension, which reads `s3://` URLs, is downloaded
from the internet on first use and cannot be counted on (a server without egress, a pinned
image). `locate` downloads a committed object once into a cache folder, under its ETag (an
object replaced under the same key gets a new one, so a stale copy is never read), and every
reader, `sluice lake query`, `status`, discards, opens plain local Parquet files with the same
options as a local lake's. A full listing prunes copies of objects that are gone (compacted).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sluice.lake.storage import TEMP_SUFFIX
from sluice.objectstore import ObjectInfo, ObjectNotFound, ObjectStore, ObjectStoreError

CACHE_DIR = ".s3-cache"  # under the lake's `path`; a lake's layout never has a dotted folder
STAGING_DIR = ".s3-staging"
STALE_TEMP_S = 24 * 3600  # temporary files a killed process left are removed after this
PARQUET_TYPE = "application/vnd.apache.parquet"
_COPY_BYTES = 1 << 20


class ObjectLakeStorage:
    """A lake under a bucket's prefix; `local` holds read copies and large uploads' staging."""

    def __init__(self, store: ObjectStore, local: Path) -> None:
        self.store = store
        self.cache = local / CACHE_DIR
        self.staging = local / STAGING_DIR
        self._listed: dict[str, ObjectInfo] = {}  # path -> what the last listing showed
        _remove_stale(self.staging)

    def __repr__(self) -> str:
        return f"ObjectLakeStorage({self.store.describe()})"

    def put(self, path: str, data: bytes | memoryview) -> None:
        kind = PARQUET_TYPE if path.endswith(".parquet") else "application/json"
        if len(data) <= self.store.settings.multipart_threshold:
            self.store.put(path, bytes(data), content_type=kind)
            return
        self.staging.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".", suffix=TEMP_SUFFIX, dir=self.staging)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            self.store.put(path, Path(name), content_type=kind)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    def get(self, path: str) -> bytes | None:
        try:
            return self.store.get(path)
        except ObjectNotFound:
            return None

    def list(self, prefix: str = "") -> Iterator[str]:
        """Every object under `prefix` (a folder), in key order. A listing of the whole lake,
        read to its end, also removes the cached copies of objects no longer there."""
        folder = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        seen: dict[str, ObjectInfo] = {}
        for info in self.store.list(folder):
            seen[info.key] = info
            self._listed[info.key] = info
            yield info.key
        if not prefix:
            self._listed = seen
            self._prune({self._cached(info) for info in seen.values()})

    def delete(self, path: str) -> None:
        """Removes the object; parts of a killed multipart upload are invisible and a bucket's
        lifecycle rule aborts them (docs/storage.md)."""
        self.store.delete(path)
        self._listed.pop(path, None)

    def locate(self, path: str) -> str:
        """A local copy of the object, downloaded once (checked against the listed size)."""
        info = self._listed.get(path) or self.store.head(path)
        if info is None:
            raise ObjectNotFound(
                "the object is gone (compacted meanwhile?): run the command again",
                operation="get",
                endpoint=self.store.settings.endpoint,
                bucket=self.store.settings.bucket,
                key=self.store.bucket_key(path),
            )
        target = self._cached(info)
        if target.exists():
            return str(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".", suffix=TEMP_SUFFIX, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f, self.store.open(path) as body:
                shutil.copyfileobj(body, f, _COPY_BYTES)
            if (size := os.path.getsize(name)) != info.size:
                raise ObjectStoreError(
                    f"read {size} bytes of {info.size}",
                    operation="get",
                    endpoint=self.store.settings.endpoint,
                    bucket=self.store.settings.bucket,
                    key=self.store.bucket_key(path),
                )
            os.replace(name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
            raise
        return str(target)

    def _cached(self, info: ObjectInfo) -> Path:
        """`<cache>/<folder>/<stem>.<etag>.parquet`: the partition folders stay, for DuckDB's
        hive partitioning, and the ETag tells one version of a key from another."""
        folder, _, name = info.key.rpartition("/")
        stem, dot, suffix = name.rpartition(".")
        etag = "".join(c for c in info.etag if c.isalnum() or c == "-") or str(info.size)
        versioned = f"{stem}.{etag}{dot}{suffix}" if dot else f"{name}.{etag}"
        return self.cache / folder / versioned

    def _prune(self, keep: set[Path]) -> None:
        """Copies of objects gone, and downloads a killed reader left (a live one's are young)."""
        if not self.cache.is_dir():
            return
        cutoff = time.time() - STALE_TEMP_S
        for folder, _, files in os.walk(self.cache):
            for name in files:
                path = Path(folder) / name
                with contextlib.suppress(FileNotFoundError):
                    if name.endswith(TEMP_SUFFIX):
                        if path.stat().st_mtime < cutoff:
                            path.unlink()
                    elif path not in keep:
                        path.unlink()


def _remove_stale(folder: Path) -> None:
    """Temporary upload files a killed process left (a live one's are younger)."""
    if not folder.is_dir():
        return
    cutoff = time.time() - STALE_TEMP_S
    for path in folder.glob(f".*{TEMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
