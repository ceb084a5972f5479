"""S3-compatible object storage: one small synchronous client for every part of Sluice that keeps
files in a bucket (the raw archive today, the Parquet data lake next).

    from sluice.objectstore import ObjectStore, ObjectStoreSettings

    store = ObjectStore(ObjectStoreSettings(bucket="acme-data", prefix="sluice/"))
    store.put("a/b.gz", Path("b.gz"))           # multipart past a threshold, verified
    store.get("a/b.gz"); store.open("a/b.gz")   # bytes, or a file-like stream
    store.list("a/"); store.folders("a/")       # objects, or the "folders" one level down
    store.head("a/b.gz"); store.exists("a/b.gz"); store.delete("a/b.gz")

Keys are relative to the settings' `prefix`. Every failure is an `ObjectStoreError` naming the
operation, endpoint, bucket and key (never a credential), with `retryable` telling whether the
same call may succeed later unchanged. It works with AWS S3, MinIO, GCS's XML API (HMAC keys)
and Cloudflare R2: see docs/storage.md. Why boto3: docs/storage.md "Choice of client".
"""

from sluice.objectstore.client import ObjectInfo, ObjectStore, PutResult
from sluice.objectstore.errors import (
    BucketNotFound,
    ChecksumMismatch,
    CredentialsRefused,
    ObjectNotFound,
    ObjectStoreError,
    ObjectStoreUnavailable,
)
from sluice.objectstore.settings import ObjectStoreSettings

__all__ = [
    "BucketNotFound",
    "ChecksumMismatch",
    "CredentialsRefused",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectStoreSettings",
    "ObjectStoreUnavailable",
    "PutResult",
]
