"""The archive in a bucket: the same `segment-logs/<source>/<day>/<first>-<last>.gz` keys as the
local folder (Segment's S3 layout), under `SLUICE_ARCHIVE_S3_PREFIX`.

What the writer, the reader and retention need of the bucket, each one listing call: which
log positions a day folder already holds, the files a time range touches, and the deletion of
day folders past retention. The upload itself is upload.py's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

from sluice.archive.layout import (
    DAY_MS,
    SEGMENT_LOGS,
    parse_day,
    parse_file_name,
    source_folder,
)
from sluice.config import Settings
from sluice.objectstore import ObjectInfo, ObjectStore, ObjectStoreSettings


def archive_bucket_settings(settings: Settings) -> ObjectStoreSettings | None:
    """The archive's object-store settings, or None when the archive is kept locally."""
    if settings.archive_storage != "s3" or not settings.archive_s3_bucket:
        return None
    return ObjectStoreSettings(
        bucket=settings.archive_s3_bucket,
        prefix=settings.archive_s3_prefix,
        endpoint_url=settings.archive_s3_endpoint_url,
        region=settings.archive_s3_region,
        access_key_id=settings.archive_s3_access_key_id,
        secret_access_key=settings.archive_s3_secret_access_key,
        path_style=settings.archive_s3_path_style,
    )


def archive_bucket(settings: Settings) -> ObjectStore | None:
    """A client of the archive's bucket, or None when the archive is kept locally."""
    bucket = archive_bucket_settings(settings)
    return None if bucket is None else ObjectStore(bucket)


def folder_key(source_id: str, day_ms: int) -> str:
    """The key prefix of a day folder: `segment-logs/<source>/<day>/`."""
    return f"{SEGMENT_LOGS}/{source_folder(source_id)}/{day_ms}/"


def finalized_through(bucket: ObjectStore, source_id: str, day_ms: int) -> int:
    """The highest log position in the day folder's files in the bucket (0: none)."""
    through = 0
    for _, last in folder_files(bucket, folder_key(source_id, day_ms)):
        through = max(through, last)
    return through


def folder_files(bucket: ObjectStore, prefix: str) -> Iterator[tuple[int, int]]:
    """(first, last) log positions of each archive file directly in a folder of the bucket."""
    for info in bucket.list(prefix):
        name = info.key[len(prefix) :]
        if "/" not in name and (seqs := parse_file_name(name)) is not None:
            yield seqs


def day_folders(bucket: ObjectStore, source_prefix: str) -> Iterator[tuple[int, str]]:
    """(day, key prefix) of every day folder of a source folder (`segment-logs/<source>/`)."""
    for prefix in bucket.folders(source_prefix):
        day = parse_day(PurePosixPath(prefix).name)
        if day is not None:
            yield day, prefix


def source_prefixes(bucket: ObjectStore) -> Iterator[str]:
    return bucket.folders(SEGMENT_LOGS + "/")


def day_files(bucket: ObjectStore, day_prefix: str) -> Iterator[ObjectInfo]:
    """The archive files of a day folder (anything else there is ignored, as locally)."""
    for info in bucket.list(day_prefix):
        name = info.key[len(day_prefix) :]
        if "/" not in name and parse_file_name(name) is not None:
            yield info


def delete_days_before(bucket: ObjectStore, cutoff_day_ms: int) -> int:
    """Delete the day folders whose whole day ends at or before `cutoff_day_ms`; count them."""
    removed = 0
    for source in list(source_prefixes(bucket)):
        for day, prefix in list(day_folders(bucket, source)):
            if day + DAY_MS <= cutoff_day_ms:
                for info in list(bucket.list(prefix)):
                    bucket.delete(info.key)
                removed += 1
    return removed
