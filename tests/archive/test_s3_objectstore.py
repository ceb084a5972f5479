"""The object-store client against a real S3-compatible server (moto's, in a subprocess)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from s3server import S3Server, s3_server_fixture  # noqa: F401 (the fixture)
from sluice.objectstore import (
    BucketNotFound,
    CredentialsRefused,
    ObjectStoreSettings,
    ObjectStoreUnavailable,
)
from sluice.objectstore.settings import MIN_PART_BYTES, bucket_problem, endpoint_problem


def test_put_get_list_head_delete(s3_server: S3Server, tmp_path: Path) -> None:
    store = s3_server.client(s3_server.new_bucket(), prefix="base")
    body = gzip.compress(b'{"a": 1}\n' * 1000)
    result = store.put("x/1.gz", body, content_type="application/gzip")
    assert (result.size, result.parts) == (len(body), 1)
    assert store.get("x/1.gz") == body
    with store.open("x/1.gz") as stream, gzip.open(stream) as lines:
        assert lines.read() == b'{"a": 1}\n' * 1000
    file = tmp_path / "2.gz"
    file.write_bytes(b"second")
    store.put("x/y/2.gz", file)
    assert [o.key for o in store.list("x/")] == ["x/1.gz", "x/y/2.gz"]
    assert list(store.folders("x/")) == ["x/y/"]
    info = store.head("x/1.gz")
    assert info is not None and info.size == len(body) and info.sha256 == result.sha256
    # Keys are under the prefix in the bucket itself.
    raw = s3_server.client(store.settings.bucket)
    assert [o.key for o in raw.list()] == ["base/x/1.gz", "base/x/y/2.gz"]
    store.put("x/1.gz", b"replaced")  # the same key again: replaced, not a second object
    assert store.get("x/1.gz") == b"replaced"
    store.delete("x/1.gz")
    assert not store.exists("x/1.gz")
    assert store.head("nothing") is None


def test_multipart_above_the_threshold(s3_server: S3Server, tmp_path: Path) -> None:
    store = s3_server.client(
        s3_server.new_bucket(), multipart_threshold=MIN_PART_BYTES, part_bytes=MIN_PART_BYTES
    )
    file = tmp_path / "big.gz"
    file.write_bytes(os.urandom(MIN_PART_BYTES * 2 + 1234))
    result = store.put("big.gz", file)
    assert result.parts == 3
    assert store.get("big.gz") == file.read_bytes()


def test_wrong_credentials_are_named_without_the_secret(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    store = s3_server.client(bucket, secret_access_key="wrong-secret-value")
    with pytest.raises(CredentialsRefused) as caught:
        store.put("a", b"x")
    text = str(caught.value)
    assert bucket in text and s3_server.endpoint_url in text and "put" in text
    assert "wrong-secret-value" not in text + repr(store) + repr(store.settings)
    assert s3_server.secret_access_key not in text


def test_missing_bucket_and_endpoint_down(s3_server: S3Server) -> None:
    with pytest.raises(BucketNotFound, match="does not exist"):
        s3_server.client("no-such-bucket-here").put("a", b"x")
    with pytest.raises(BucketNotFound):
        s3_server.client("no-such-bucket-here").check()
    down = s3_server.client("any-bucket", endpoint_url="http://127.0.0.1:1", connect_timeout_s=1)
    with pytest.raises(ObjectStoreUnavailable) as caught:
        down.put("a", b"x")
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://storage.googleapis.com", True),
        ("http://127.0.0.1:9000", True),
        ("ftp://host", False),
        ("https://key:secret@host", False),
        ("not a url", False),
    ],
    ids=["gcs", "minio", "scheme", "userinfo", "garbage"],
)
def test_endpoint_validation(url: str, ok: bool) -> None:
    assert (endpoint_problem(url) is None) == ok


def test_bucket_names_and_prefix() -> None:
    assert bucket_problem("acme-archive") is None
    assert bucket_problem("Acme") is not None and bucket_problem("ab") is not None
    assert ObjectStoreSettings(bucket="b-1", prefix="p").prefix == "p/"
