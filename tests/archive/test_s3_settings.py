"""Archive storage settings: refused at start when they cannot work, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3server import S3Server, s3_server_fixture  # noqa: F401 (the fixture)
from sluice.archive.bucket import archive_bucket_settings
from sluice.archive.upload import archive_status
from sluice.config import ConfigError, load_settings
from sluice.store.sqlite import SqliteStore

SECRET = "s3cr3t-value-never-shown"
BASE = {"SLUICE_ARCHIVE_STORAGE": "s3", "SLUICE_ARCHIVE_S3_BUCKET": "acme-archive"}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SLUICE_ARCHIVE_STORAGE": "ftp"}, "SLUICE_ARCHIVE_STORAGE"),
        ({"SLUICE_ARCHIVE_STORAGE": "s3"}, "SLUICE_ARCHIVE_S3_BUCKET"),
        ({**BASE, "SLUICE_ARCHIVE_S3_BUCKET": "Bad_Bucket"}, "SLUICE_ARCHIVE_S3_BUCKET"),
        (
            {**BASE, "SLUICE_ARCHIVE_S3_ENDPOINT_URL": "minio:9000"},
            "SLUICE_ARCHIVE_S3_ENDPOINT_URL",
        ),
        (
            {**BASE, "SLUICE_ARCHIVE_S3_ENDPOINT_URL": f"https://k:{SECRET}@host"},
            "SLUICE_ARCHIVE_S3_ENDPOINT_URL",
        ),
        (
            {**BASE, "SLUICE_ARCHIVE_S3_SECRET_ACCESS_KEY": SECRET},
            "SLUICE_ARCHIVE_S3_ACCESS_KEY_ID",
        ),
        ({**BASE, "SLUICE_ARCHIVE_S3_PATH_STYLE": "maybe"}, "SLUICE_ARCHIVE_S3_PATH_STYLE"),
    ],
    ids=["storage", "no-bucket", "bucket-name", "url", "url-credentials", "half-keys", "bool"],
)
def test_unusable_settings_are_refused_naming_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert named in str(caught.value) and SECRET not in str(caught.value)


def test_settings_and_status_never_show_the_secret(tmp_path: Path) -> None:
    settings = load_settings(
        {
            **BASE,
            "SLUICE_DATA_DIR": str(tmp_path),
            "SLUICE_ARCHIVE_S3_PREFIX": "sluice",
            "SLUICE_ARCHIVE_S3_ENDPOINT_URL": "https://acct.r2.cloudflarestorage.com",
            "SLUICE_ARCHIVE_S3_REGION": "auto",
            "SLUICE_ARCHIVE_S3_ACCESS_KEY_ID": "key-id",
            "SLUICE_ARCHIVE_S3_SECRET_ACCESS_KEY": SECRET,
            "SLUICE_ARCHIVE_S3_PATH_STYLE": "true",
        }
    )
    bucket = archive_bucket_settings(settings)
    assert bucket is not None and bucket.prefix == "sluice/" and bucket.path_style
    assert bucket.secret_access_key == SECRET
    assert SECRET not in repr(settings) + repr(bucket)
    store = SqliteStore(tmp_path / "log.db")
    try:
        status = archive_status(settings, store)
    finally:
        store.close()
    assert status["where"] == "s3://acme-archive/sluice/ at https://acct.r2.cloudflarestorage.com"
    assert status["failing"] is None and SECRET not in str(status)


def test_the_status_command_shows_a_failing_archive(s3_server: S3Server, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sluice.archive.writer import ArchiveWriter
    from sluice.cli.main import app
    from sluice.objectstore import ObjectStoreError

    env = {
        **BASE,
        "SLUICE_ARCHIVE_S3_BUCKET": "never-created",
        "SLUICE_DATA_DIR": str(tmp_path),
        "SLUICE_ARCHIVE_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "SLUICE_ARCHIVE_S3_ACCESS_KEY_ID": s3_server.access_key_id,
        "SLUICE_ARCHIVE_S3_SECRET_ACCESS_KEY": s3_server.secret_access_key,
        "SLUICE_ARCHIVE_S3_PATH_STYLE": "1",
    }
    settings = load_settings(env)
    store = SqliteStore(settings.log_path)
    try:
        from test_s3_archive import append

        append(store, 5)
        with pytest.raises(ObjectStoreError):
            ArchiveWriter(settings, store).step()
    finally:
        store.close()
    result = CliRunner().invoke(app, ["status"], env=env)
    assert result.exit_code == 0, result.output
    assert "failing (bucket_missing)" in result.output and "s3://never-created/" in result.output
    assert s3_server.secret_access_key not in result.output
