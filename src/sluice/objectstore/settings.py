"""Where objects go: a bucket, a key prefix, an endpoint and how to sign requests.

The same Struct serves the archive (`SLUICE_ARCHIVE_S3_*`, config.py) and later the lake. The
secret is kept out of `repr` and of every message: an object store's settings are logged and
shown by `sluice status` (bucket, prefix, endpoint), its credentials never.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import msgspec

# S3 refuses multipart parts under 5 MiB (except the last); 16 MiB parts keep a 100 MB archive
# file (about 11 MB of gzip) in one request and cost few requests for a lake's large files.
MIN_PART_BYTES = 5 * 1024 * 1024
DEFAULT_MULTIPART_THRESHOLD = 16 * 1024 * 1024
DEFAULT_PART_BYTES = 16 * 1024 * 1024
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_READ_TIMEOUT_S = 60.0
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]")


class ObjectStoreSettings(msgspec.Struct, frozen=True, kw_only=True):
    """A bucket and how to reach it. Credentials left out come from the standard AWS chain
    (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws, container or instance role)."""

    bucket: str
    prefix: str = ""  # every key is under it ("" or ending in "/")
    endpoint_url: str | None = None  # None: AWS S3 of `region`
    region: str | None = None  # None: the AWS chain's (AWS_REGION, ~/.aws/config)
    access_key_id: str | None = None
    secret_access_key: str | None = None
    path_style: bool = False  # https://host/bucket/key instead of https://bucket.host/key
    multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD
    part_bytes: int = DEFAULT_PART_BYTES
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.prefix and not self.prefix.endswith("/"):
            msgspec.structs.force_setattr(self, "prefix", self.prefix + "/")
        if self.part_bytes < MIN_PART_BYTES:
            raise ValueError(f"part_bytes must be at least {MIN_PART_BYTES} (S3's minimum)")

    def __repr__(self) -> str:
        secret = "None" if self.secret_access_key is None else "'***'"
        return (
            f"ObjectStoreSettings(bucket={self.bucket!r}, prefix={self.prefix!r}, "
            f"endpoint_url={self.endpoint_url!r}, region={self.region!r}, "
            f"access_key_id={self.access_key_id!r}, secret_access_key={secret}, "
            f"path_style={self.path_style!r})"
        )

    @property
    def endpoint(self) -> str:
        """The endpoint as messages name it."""
        return self.endpoint_url or f"AWS S3 ({self.region or 'default region'})"


def bucket_problem(bucket: str) -> str | None:
    """Why a bucket name cannot be used (S3's, GCS's and R2's common rules), or None."""
    if not _BUCKET.fullmatch(bucket):
        return "3 to 63 lowercase letters, digits, dots or hyphens, starting and ending alike"
    return None


def endpoint_problem(url: str) -> str | None:
    """Why an endpoint URL cannot be used, or None. Credentials in the URL are refused: they
    would be printed wherever the endpoint is."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    if parts.username is not None or parts.password is not None:
        return "must not hold credentials (use the access key settings)"
    if parts.query or parts.fragment:
        return "must not have a query or fragment"
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "has an invalid port"
    return None
