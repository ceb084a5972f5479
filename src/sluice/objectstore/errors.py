"""Errors of the object-store client. Each names where it happened, never with a credential.

    SluiceError
    └── ObjectStoreError            .operation .endpoint .bucket .key .code .retryable
        ├── ObjectStoreUnavailable  cannot connect, timed out, 5xx, throttled (retryable)
        ├── CredentialsRefused      no credentials, wrong key or secret, access denied
        ├── BucketNotFound          the bucket does not exist
        ├── ObjectNotFound          the key does not exist
        └── ChecksumMismatch        what the bucket holds is not what was sent (retryable)

A caller that keeps state across calls (the archive uploader) retries all of them with backoff:
credentials and buckets are fixed by an operator while Sluice runs; `retryable` says whether
a retry can succeed without such a fix.
"""

from __future__ import annotations

from sluice.errors import SluiceError


class ObjectStoreError(SluiceError):
    """A request to the object store failed."""

    retryable = False
    kind = "error"  # a short stable name, for status documents and metrics

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        endpoint: str,
        bucket: str,
        key: str | None = None,
        code: str | None = None,
    ) -> None:
        where = f"s3://{bucket}/{key or ''} at {endpoint}"
        super().__init__(f"{operation} {where}: {message}")
        self.operation = operation
        self.endpoint = endpoint
        self.bucket = bucket
        self.key = key
        self.code = code


class ObjectStoreUnavailable(ObjectStoreError):
    retryable = True
    kind = "unavailable"


class CredentialsRefused(ObjectStoreError):
    kind = "credentials"


class BucketNotFound(ObjectStoreError):
    kind = "bucket_missing"


class ObjectNotFound(ObjectStoreError):
    kind = "not_found"


class ChecksumMismatch(ObjectStoreError):
    retryable = True
    kind = "checksum"
