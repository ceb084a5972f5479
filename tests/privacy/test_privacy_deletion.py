"""A regulation end to end, on a real server, on both backends, with the archive in a folder and
in a bucket (moto's S3 server): suppression at ingest over HTTP across two workers, then a
deletion that leaves no trace of the user in any file of the data dir, any table, or the bucket,
while everyone else's data stays."""

from __future__ import annotations

import gzip
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from privacy_kit import Admin, files_holding, sluice, traces

from s3server import S3Server, s3_server_fixture  # noqa: F401 (the fixture)
from server import WRITE_KEY, SluiceServer, StartServer, wait_for
from sluice.archive.writer import CURSOR
from sluice.identity.tables import open_identity_db
from sluice.objectstore import ObjectStore

SERVER_ENV = {"SLUICE_WORKERS": "2", "SLUICE_ARCHIVE_MAX_FILE_AGE_S": "1"}
# The default DuckDB warehouse loads too: its deletion (`warehouse:default`) is searched as well.


def batch_of(user: str, email: str, n: int) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {"type": "identify", "userId": user, "traits": {"email": email, "plan": "pro"}}
    ]
    items += [
        {"type": "track", "userId": user, "event": "Viewed", "properties": {"i": i}}
        for i in range(n)
    ]
    items.append({"type": "page", "userId": user, "name": "Home"})
    return {"batch": items}


def send(server: SluiceServer, body: dict[str, Any]) -> None:
    res = server.post("/v1/batch", body, key=WRITE_KEY)
    assert res.status == 200, res.body


def settled(server: SluiceServer) -> bool:
    """Everything in the log is in finalized archive files and in the identity tables."""
    store = server.store
    end = store.last_seq()
    if (store.find_cursor(CURSOR) or 0) < end:
        return False
    db = open_identity_db(server.data_dir, server.env.get("SLUICE_DATABASE_URL"))
    try:
        rows = db.execute("SELECT seq FROM identity_position")
    finally:
        db.close()
    return bool(rows) and int(rows[0][0]) >= end


def bucket_holding(bucket: ObjectStore | None, *texts: str) -> list[str]:
    if bucket is None:
        return []
    needles = [t.encode() for t in texts]
    return [
        f"s3 {info.key}"
        for info in bucket.list("")
        if any(n in gzip.decompress(bucket.get(info.key)) for n in needles)
    ]


def profile_ids(server: SluiceServer, user: str) -> list[str]:
    db = open_identity_db(server.data_dir, server.env.get("SLUICE_DATABASE_URL"))
    try:
        rows = db.execute(
            "SELECT profile_id FROM identities WHERE id_type = 'user_id' AND id_value = ?", [user]
        )
    finally:
        db.close()
    return [str(r[0]) for r in rows]


@pytest.fixture(params=["local", "s3"])
def archive_env(request: pytest.FixtureRequest) -> tuple[dict[str, str], ObjectStore | None]:
    if request.param == "local":
        return {}, None
    s3: S3Server = request.getfixturevalue("s3_server")
    bucket = s3.new_bucket()
    env = {
        "SLUICE_ARCHIVE_STORAGE": "s3",
        "SLUICE_ARCHIVE_S3_BUCKET": bucket,
        "SLUICE_ARCHIVE_S3_PREFIX": "raw/",
        "SLUICE_ARCHIVE_S3_ENDPOINT_URL": s3.endpoint_url,
        "SLUICE_ARCHIVE_S3_REGION": "us-east-1",
        "SLUICE_ARCHIVE_S3_ACCESS_KEY_ID": s3.access_key_id,
        "SLUICE_ARCHIVE_S3_SECRET_ACCESS_KEY": s3.secret_access_key,
        "SLUICE_ARCHIVE_S3_PATH_STYLE": "true",
    }
    return env, s3.client(bucket, prefix="raw/")


def test_suppress_with_delete_leaves_no_trace(
    start_server: StartServer,
    seeded_store: tuple[dict[str, str], Path],
    archive_env: tuple[dict[str, str], ObjectStore | None],
) -> None:
    env, data_dir = seeded_store
    extra, bucket = archive_env
    server = start_server({**SERVER_ENV, **env, **extra}, data_dir=data_dir)
    tag = uuid.uuid4().hex[:10]
    victim, victim_email = f"victim-{tag}", f"victim-{tag}@example.com"
    keeper = f"keeper-{tag}"
    send(server, batch_of(victim, victim_email, 5))
    send(server, batch_of(keeper, f"keeper-{tag}@example.com", 3))
    wait_for(lambda: settled(server), timeout=60, interval=0.2, what="archive and identity")
    # Before: the victim is everywhere (else this test could not fail).
    assert profile_ids(server, victim)
    before = traces(data_dir, env.get("SLUICE_DATABASE_URL"), victim) + bucket_holding(
        bucket, victim
    )
    assert any("archive" in t or t.startswith("s3 ") for t in before), before

    admin = Admin(server)
    body = {
        "regulationType": "SUPPRESS_WITH_DELETE",
        "subjectType": "USER_ID",
        "subjectIds": [victim],
    }
    created = admin.ok(admin.call("POST", "/regulations", body))
    regulate_id = created["data"]["regulateId"]

    # Every worker drops the victim's events within a couple of seconds (config poll: 1 s);
    # these arrive while the deletion waits for exactly that, or runs: none may be stored.
    time.sleep(2.5)
    suppressed_before = server.counters().get(("web", "suppressed"), 0)
    for _ in range(6):
        send(server, {"batch": [{"type": "track", "userId": victim, "event": "Again"}]})
    wait_for(
        lambda: server.counters().get(("web", "suppressed"), 0) >= suppressed_before + 6,
        timeout=20,
        what="the suppressed counter",
    )
    send(
        server, batch_of(keeper, f"keeper-{tag}@example.com", 1)
    )  # a newer event than the victim's

    def finished() -> dict[str, Any] | None:
        reg = admin.ok(admin.call("GET", f"/regulations/{regulate_id}"))["data"]["regulation"]
        assert reg["overallStatus"] not in ("FAILED", "PARTIAL_SUCCESS"), reg
        return reg if reg["overallStatus"] == "FINISHED" else None

    reg = wait_for(finished, timeout=120, interval=0.5, what="the regulation to finish")
    legs = {t["name"]: t for t in reg["targets"]}
    assert {"log", "archive", "profiles"} <= set(legs)
    assert all(t["status"] == "FINISHED" for t in legs.values()), legs
    assert legs["log"]["removed"] >= 7 and legs["profiles"]["removed"] > 0
    assert legs["archive"]["removed"] >= 7
    assert reg["subjectCount"] == 1 and victim not in str(reg)
    # Each change of state is logged once, without the user id.
    logged = server.log()
    assert logged.count(f"regulation {regulate_id} (SUPPRESS_WITH_DELETE, 1 id(s)): RUNNING") == 1
    assert logged.count(f"regulation {regulate_id} (SUPPRESS_WITH_DELETE): FINISHED") == 1
    assert logged.count(f"regulation {regulate_id}: leg archive FINISHED") == 1
    assert victim not in logged

    # After: not one byte of the victim, in any file, table or object; the keeper is intact.
    assert not profile_ids(server, victim)
    server.stop()  # no process holds a file open that could still be written
    leftover = traces(data_dir, env.get("SLUICE_DATABASE_URL"), victim, victim_email)
    assert leftover + bucket_holding(bucket, victim, victim_email) == []
    # DuckDB files too, byte for byte: the warehouse target rewrites the file, so not even its
    # free blocks hold the deleted rows.
    assert files_holding(data_dir, victim, victim_email, everything=True) == []
    kept = traces(data_dir, env.get("SLUICE_DATABASE_URL"), keeper) + bucket_holding(bucket, keeper)
    assert any("archive" in t or t.startswith("s3 ") for t in kept), kept
    assert any("events" in t or t.startswith("file log.db") for t in kept), kept

    # The CLI reads the same regulation and suppression list.
    shown = sluice(data_dir, env, "regulations", "show", regulate_id, "--json")
    assert '"overallStatus":"FINISHED"' in shown.stdout
    listed = sluice(data_dir, env, "regulations", "list")
    assert regulate_id in listed.stdout and "SUPPRESS_WITH_DELETE" in listed.stdout
    assert sluice(data_dir, env, "suppressions", "check", victim).stdout.strip() == "suppressed"
    other = sluice(data_dir, env, "suppressions", "check", keeper, check=False)
    assert other.returncode == 1
