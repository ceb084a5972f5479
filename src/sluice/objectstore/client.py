"""The object-store client: put (multipart past a threshold), get/open, list, head, delete.

Built on boto3's low-level S3 client (docs/storage.md says why), called synchronously: callers
run it in a worker thread, as they do with embedded databases. Every upload is verified twice:
each request carries its `Content-MD5`, which the server checks before storing a byte (a body
damaged on the way is refused with BadDigest), and after the upload a HEAD must show the size
sent and the SHA-256 stored in the object's metadata (`sluice-sha256`), so an object that is
not exactly the file is never taken as uploaded. ETags are not compared: with SSE-KMS on AWS
and on some compatible servers they are not MD5s.

boto3's own retries are kept short (3 attempts): a caller with state (the archive uploader)
owns the long retry with backoff.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sluice.objectstore.errors import (
    BucketNotFound,
    ChecksumMismatch,
    CredentialsRefused,
    ObjectNotFound,
    ObjectStoreError,
    ObjectStoreUnavailable,
)
from sluice.objectstore.settings import ObjectStoreSettings

SHA256_METADATA = "sluice-sha256"
_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidToken",
    "ExpiredToken",
    "AuthorizationHeaderMalformed",
    "InvalidSecurity",
    "403",
}
_MISSING_BUCKET = {"NoSuchBucket"}
_MISSING_KEY = {"NoSuchKey", "404", "NotFound"}
_BAD_DIGEST = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"}


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """An object as a listing or HEAD shows it; `key` is relative to the settings' prefix."""

    key: str
    size: int
    etag: str
    sha256: str | None = None  # from the metadata Sluice writes (HEAD only)


@dataclass(frozen=True, slots=True)
class PutResult:
    key: str
    size: int
    sha256: str
    parts: int  # 1 for a single PUT


class ObjectStore:
    """One bucket (and prefix) of an S3-compatible server."""

    def __init__(self, settings: ObjectStoreSettings) -> None:
        import boto3  # imported here: the CLI's other commands start without it
        from botocore.config import Config

        self.settings = settings
        config = Config(
            region_name=settings.region,
            s3={"addressing_style": "path" if settings.path_style else "virtual"},
            retries={"mode": "standard", "total_max_attempts": 3},
            connect_timeout=settings.connect_timeout_s,
            read_timeout=settings.read_timeout_s,
            # boto3 >= 1.36 adds CRC32 checksums to every upload by default; GCS and older
            # MinIO/R2 refuse them. Content-MD5 (below) is what every one of them checks.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        credentials: dict[str, Any] = {}
        if settings.access_key_id and settings.secret_access_key:
            credentials = {
                "aws_access_key_id": settings.access_key_id,
                "aws_secret_access_key": settings.secret_access_key,
            }
        session = boto3.session.Session()
        self._s3 = session.client(
            "s3", endpoint_url=settings.endpoint_url, config=config, **credentials
        )

    def __repr__(self) -> str:
        return f"ObjectStore({self.describe()})"

    def describe(self) -> str:
        """`s3://bucket/prefix at endpoint`: how logs and `sluice status` name this store."""
        s = self.settings
        return f"s3://{s.bucket}/{s.prefix} at {s.endpoint}"

    def bucket_key(self, key: str) -> str:
        """The object's key in the bucket: the store's prefix, then `key`."""
        return self.settings.prefix + key

    # --- writing ---------------------------------------------------------------------------
    def put(
        self,
        key: str,
        data: bytes | Path,
        *,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> PutResult:
        """Store `data` (bytes, or a file read in parts) under `key`, replacing what was there,
        and verify it. Past `multipart_threshold` bytes it is sent as a multipart upload."""
        size = len(data) if isinstance(data, bytes) else data.stat().st_size
        sha = _sha256(data)
        meta = {**(metadata or {}), SHA256_METADATA: sha}
        with self._errors("put", key):
            if size <= self.settings.multipart_threshold:
                body = data if isinstance(data, bytes) else data.read_bytes()
                self._s3.put_object(
                    Bucket=self.settings.bucket,
                    Key=self.bucket_key(key),
                    Body=body,
                    ContentMD5=_md5(body),
                    ContentType=content_type,
                    Metadata=meta,
                )
                parts = 1
            else:
                parts = self._put_multipart(key, data, content_type, meta)
        info = self.head(key)
        if info is None or info.size != size or info.sha256 != sha:
            raise ChecksumMismatch(
                f"the stored object is not what was sent ({size} bytes, sha256 {sha[:12]}...)",
                operation="verify",
                endpoint=self.settings.endpoint,
                bucket=self.settings.bucket,
                key=self.bucket_key(key),
            )
        return PutResult(key, size, sha, parts)

    def _put_multipart(
        self, key: str, data: bytes | Path, content_type: str, meta: dict[str, str]
    ) -> int:
        bucket, full = self.settings.bucket, self.bucket_key(key)
        upload = self._s3.create_multipart_upload(
            Bucket=bucket, Key=full, ContentType=content_type, Metadata=meta
        )["UploadId"]
        done: list[dict[str, Any]] = []
        try:
            for number, part in enumerate(_parts(data, self.settings.part_bytes), 1):
                answer = self._s3.upload_part(
                    Bucket=bucket,
                    Key=full,
                    UploadId=upload,
                    PartNumber=number,
                    Body=part,
                    ContentMD5=_md5(part),
                )
                done.append({"PartNumber": number, "ETag": answer["ETag"]})
            self._s3.complete_multipart_upload(
                Bucket=bucket, Key=full, UploadId=upload, MultipartUpload={"Parts": done}
            )
        except BaseException:
            # Best effort: a kill -9 leaves the parts behind anyway (a lifecycle rule that
            # aborts incomplete uploads cleans them: docs/storage.md).
            with contextlib.suppress(Exception):  # the original error is the one to report
                self._s3.abort_multipart_upload(Bucket=bucket, Key=full, UploadId=upload)
            raise
        return len(done)

    def delete(self, key: str) -> None:
        """Remove an object (no error when it does not exist)."""
        with self._errors("delete", key):
            self._s3.delete_object(Bucket=self.settings.bucket, Key=self.bucket_key(key))

    def create_bucket(self) -> None:
        """Create the bucket (for tests and first-time setup; operators usually create it)."""
        with self._errors("create bucket", None):
            self._s3.create_bucket(Bucket=self.settings.bucket)

    # --- reading ---------------------------------------------------------------------------
    def head(self, key: str) -> ObjectInfo | None:
        """The object's size, ETag and Sluice's checksum; None when it does not exist."""
        try:
            with self._errors("head", key):
                answer = self._s3.head_object(Bucket=self.settings.bucket, Key=self.bucket_key(key))
        except ObjectNotFound:
            return None
        sha = answer.get("Metadata", {}).get(SHA256_METADATA)
        return ObjectInfo(key, int(answer["ContentLength"]), answer.get("ETag", ""), sha)

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def get(self, key: str) -> bytes:
        with self.open(key) as body, self._errors("get", key):
            return body.read()

    def open(self, key: str) -> IO[bytes]:
        """A stream of the object's bytes (close it when done); `gzip.open` reads it as is."""
        with self._errors("get", key):
            answer = self._s3.get_object(Bucket=self.settings.bucket, Key=self.bucket_key(key))
        body: IO[bytes] = answer["Body"]
        return body

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, in key order (pages fetched lazily)."""
        for page in self._pages(prefix, delimiter=None):
            for item in page.get("Contents", ()):
                key = item["Key"][len(self.settings.prefix) :]
                yield ObjectInfo(key, int(item["Size"]), item.get("ETag", ""))

    def folders(self, prefix: str = "") -> Iterator[str]:
        """The "folders" one level under `prefix` (which ends in "/"): `prefix + name + "/"`."""
        for page in self._pages(prefix, delimiter="/"):
            for item in page.get("CommonPrefixes", ()):
                yield item["Prefix"][len(self.settings.prefix) :]

    def _pages(self, prefix: str, delimiter: str | None) -> Iterator[dict[str, Any]]:
        paginator = self._s3.get_paginator("list_objects_v2")
        args: dict[str, Any] = {"Bucket": self.settings.bucket, "Prefix": self.bucket_key(prefix)}
        if delimiter:
            args["Delimiter"] = delimiter
        with self._errors("list", prefix):
            yield from paginator.paginate(**args)

    def check(self) -> None:
        """Raise the error a request would meet now (bucket missing, credentials, down)."""
        with self._errors("check", None):
            self._s3.head_bucket(Bucket=self.settings.bucket)

    # --- errors ----------------------------------------------------------------------------
    def _errors(self, operation: str, key: str | None) -> _Translate:
        """Errors name the key as the bucket has it (the prefix too: an operator checks that
        key, or a policy on that prefix), or the prefix for calls on the bucket itself."""
        return _Translate(self.settings, operation, self.bucket_key(key or ""))


class _Translate:
    """Turns botocore's exceptions into ObjectStoreErrors naming where (never a credential)."""

    def __init__(self, settings: ObjectStoreSettings, operation: str, key: str | None) -> None:
        self.settings, self.operation, self.key = settings, operation, key

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> None:
        if exc is None or isinstance(exc, ObjectStoreError) or not isinstance(exc, Exception):
            return
        raise translate(exc, self.settings, self.operation, self.key) from exc


def translate(
    exc: Exception, settings: ObjectStoreSettings, operation: str, key: str | None
) -> ObjectStoreError:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    def make(cls: type[ObjectStoreError], text: str, code: str | None = None) -> ObjectStoreError:
        return cls(
            text,
            operation=operation,
            endpoint=settings.endpoint,
            bucket=settings.bucket,
            key=key,
            code=code,
        )

    if isinstance(exc, NoCredentialsError):
        message = "no credentials: set the access key settings or the AWS environment"
        return make(CredentialsRefused, message)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        text = f"{code or status}: {error.get('Message') or 'no message'}"
        cls: type[ObjectStoreError]
        if code in _MISSING_BUCKET:
            cls, text = BucketNotFound, f"the bucket does not exist ({code})"
        elif code in _CREDENTIAL_CODES or status == 403:
            cls = CredentialsRefused
        elif code in _MISSING_KEY or status == 404:
            cls = ObjectNotFound
            if operation == "check":  # HEAD bucket answers a bare 404
                cls, text = BucketNotFound, "the bucket does not exist (404)"
        elif code in _BAD_DIGEST:
            cls = ChecksumMismatch
        elif status >= 500 or status in (408, 429) or code in ("SlowDown", "RequestTimeout"):
            cls = ObjectStoreUnavailable
        else:
            cls = ObjectStoreError
        return make(cls, text, code or str(status))
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, BotoCoreError | OSError):  # cannot connect, timeouts, a broken connection
        return make(ObjectStoreUnavailable, text)
    return make(ObjectStoreError, text)


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _sha256(data: bytes | Path) -> str:
    if isinstance(data, bytes):
        return hashlib.sha256(data).hexdigest()
    with open(data, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _parts(data: bytes | Path, size: int) -> Iterator[bytes]:
    if isinstance(data, bytes):
        for start in range(0, len(data), size):
            yield data[start : start + size]
        return
    with open(data, "rb") as file:
        while chunk := file.read(size):
            yield chunk
