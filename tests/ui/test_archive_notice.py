"""The overview says when the archive's uploads to its bucket fail: a running `sluice serve`
archiving to a bucket that does not exist (on a real S3-compatible server) shows the notice over
real HTTP, naming the bucket and never the secret; once the bucket exists the files go up and
the notice is gone."""

from __future__ import annotations

import uuid

from ui_kit import StartServer, exchange, signed_in_cookie

from s3server import S3Server, s3_server_fixture  # noqa: F401 (the fixture)
from server import wait_for

NOTICE = b'id="archive-failing"'


def test_the_overview_shows_failing_archive_uploads_until_the_bucket_exists(
    start_server: StartServer, s3_server: S3Server
) -> None:
    bucket = f"later-{uuid.uuid4().hex[:12]}"
    server = start_server(
        {
            "SLUICE_WORKERS": "1",
            "SLUICE_ARCHIVE_MAX_FILE_AGE_S": "1",
            "SLUICE_ARCHIVE_STORAGE": "s3",
            "SLUICE_ARCHIVE_S3_BUCKET": bucket,
            "SLUICE_ARCHIVE_S3_ENDPOINT_URL": s3_server.endpoint_url,
            "SLUICE_ARCHIVE_S3_REGION": "us-east-1",
            "SLUICE_ARCHIVE_S3_ACCESS_KEY_ID": s3_server.access_key_id,
            "SLUICE_ARCHIVE_S3_SECRET_ACCESS_KEY": s3_server.secret_access_key,
            "SLUICE_ARCHIVE_S3_PATH_STYLE": "true",
        }
    )
    cookie = signed_in_cookie("127.0.0.1", server.port, server.data_dir)

    def overview() -> bytes:
        page, _ = exchange("127.0.0.1", server.port, "GET", "/", headers={"cookie": cookie})
        assert page.status == 200, page.body[:300]
        return page.body

    sent = server.post("/v1/track", {"userId": "u1", "event": "Archived Later"})
    assert sent.status == 200
    body = wait_for(
        lambda: next((page for page in [overview()] if NOTICE in page), None),
        timeout=60,
        what="the overview's archive notice",
    )
    assert b"Archive uploads failing (bucket missing) since" in body
    assert f"s3://{bucket}/ at {s3_server.endpoint_url}".encode() in body
    assert s3_server.secret_access_key.encode() not in body
    s3_server.client(bucket).create_bucket()
    wait_for(lambda: NOTICE not in overview(), timeout=90, what="the notice gone")
    archived = [o.key for o in s3_server.client(bucket).list("segment-logs/")]
    assert archived and all(key.endswith(".gz") for key in archived)
