"""The admin API's regulation routes and the CLI, round trip against one real server (two HTTP
workers): Segment's request and answer shapes, errors with code/message/field, suppression and
UNSUPPRESS over HTTP, `/metrics` and `sluice status`."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from privacy_kit import Admin, sluice

from server import WRITE_KEY, SluiceServer, StartServer, require, wait_for
from sluice.store.base_event_store import EventQuery

ENV = {"SLUICE_WORKERS": "2", "SLUICE_WAREHOUSE_INTERVAL_S": "0"}


@pytest.fixture(scope="module")
def server(start_module_server: StartServer) -> Iterator[SluiceServer]:
    yield start_module_server(ENV)


@pytest.fixture(scope="module")
def admin(server: SluiceServer) -> Admin:
    return Admin(server)


def body(kind: str, *ids: str, subject: str = "USER_ID") -> dict[str, Any]:
    return {"regulationType": kind, "subjectType": subject, "subjectIds": list(ids)}


def stored_users(server: SluiceServer) -> list[str]:
    events = server.store.newest(EventQuery(limit=10_000, source_id="web"))
    return [e.payload.decode() for e in events]


def test_create_list_get_and_the_cli_see_the_same(server: SluiceServer, admin: Admin) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    res = admin.call("POST", "/regulations", body("SUPPRESS_ONLY", user))
    created = admin.ok(res)
    regulate_id = created["data"]["regulateId"]
    assert res.headers["location"] == f"/api/v1/regulations/{regulate_id}"
    reg = admin.ok(admin.call("GET", f"/regulations/{regulate_id}"))["data"]["regulation"]
    assert reg["overallStatus"] == "FINISHED" and reg["regulationType"] == "SUPPRESS_ONLY"
    assert reg["subjectType"] == "USER_ID" and reg["subjectCount"] == 1
    assert reg["targets"] == [] and user not in str(reg)
    listed = admin.ok(admin.call("GET", "/regulations?status=FINISHED"))["data"]["regulations"]
    assert regulate_id in [r["id"] for r in listed]
    assert admin.ok(admin.call("GET", "/regulations?status=RUNNING"))["data"]["regulations"] == [
        r for r in admin.ok(admin.call("GET", "/regulations"))["data"]["regulations"]
        if r["overallStatus"] == "RUNNING"
    ]  # fmt: skip
    key = hashlib.sha256(user.encode()).hexdigest()
    found = admin.ok(admin.call("GET", "/suppressions"))["data"]["suppressions"]
    assert any(s["subjectHash"] == key and s["regulateId"] == regulate_id for s in found)
    # The CLI reads the same store.
    shown = sluice(server.data_dir, server.env, "regulations", "show", regulate_id)
    assert regulate_id in shown.stdout and "FINISHED" in shown.stdout
    assert key in sluice(server.data_dir, server.env, "suppressions", "list").stdout
    # A source-scoped regulation of a known source, and its list.
    scoped = admin.ok(admin.call("POST", "/regulations/sources/web", body("DELETE_ONLY", user)))
    scoped_id = scoped["data"]["regulateId"]
    mine = admin.ok(admin.call("GET", "/regulations/sources/web"))["data"]["regulations"]
    assert [r["id"] for r in mine][:1] == [scoped_id] and mine[0]["sourceId"] == "web"


@pytest.mark.parametrize(
    ("path", "payload", "status", "code", "field"),
    [
        ("/regulations", body("FORGET", "u"), 422, "invalid", "regulationType"),
        ("/regulations", body("DELETE_ONLY", "u", subject="EMAIL"), 422, "invalid", "subjectType"),
        ("/regulations", body("DELETE_ONLY"), 422, "invalid", "subjectIds"),
        ("/regulations", body("DELETE_ONLY", *map(str, range(5001))), 422, "invalid", "subjectIds"),
        ("/regulations", {"regulationType": "DELETE_ONLY"}, 422, "invalid", "subjectType"),
        ("/regulations", {**body("DELETE_ONLY", "u"), "extra": 1}, 422, "invalid", "extra"),
        ("/regulations/sources/nope", body("DELETE_ONLY", "u"), 404, "not_found", None),
        ("/regulations", body("DELETE_ARCHIVE_ONLY", "a", subject="ANONYMOUS_ID"), 422, "invalid",
         "regulationType"),
    ],
    ids=["type", "subject", "no-ids", "5001-ids", "missing", "unknown-field", "no-source",
         "archive-unscoped"],
)  # fmt: skip
def test_bad_requests_get_segment_like_errors(
    admin: Admin, path: str, payload: dict[str, Any], status: int, code: str, field: str | None
) -> None:
    before = len(admin.ok(admin.call("GET", "/regulations?limit=1000"))["data"]["regulations"])
    res = admin.call("POST", path, payload)
    assert res.status == status, res.body
    answer = res.json()
    assert answer["code"] == code and answer["message"]
    if field:  # the field at fault, or the message names it (a missing or unknown field)
        assert answer.get("field") == field or field in answer["message"], answer
    after = len(admin.ok(admin.call("GET", "/regulations?limit=1000"))["data"]["regulations"])
    assert after == before


def test_auth_and_unknown_ids(server: SluiceServer, admin: Admin) -> None:
    res = server.request("GET", "/api/v1/regulations")
    assert res.status == 401 and res.json()["code"] == "unauthorized"
    res = admin.call("GET", "/regulations/reg_nope")
    assert res.status == 404 and res.json()["code"] == "not_found"
    res = admin.call("GET", "/regulations?status=DONE")
    assert res.status == 400 and res.json()["field"] == "status"


def test_cli_refuses_bad_input_naming_the_field(server: SluiceServer) -> None:
    out = sluice(server.data_dir, server.env, "regulations", "create", "--type", "NOPE", "u",
                 check=False)  # fmt: skip
    assert out.returncode == 1 and "regulationType" in out.stderr
    out = sluice(server.data_dir, server.env, "regulations", "create", "--type", "DELETE_ONLY",
                 "--source", "nope", "u", check=False)  # fmt: skip
    assert out.returncode == 1 and "--source" in out.stderr
    out = sluice(server.data_dir, server.env, "regulations", "show", "reg_nope", check=False)
    assert out.returncode == 1 and "reg_nope" in out.stderr


def _post_track(server: SluiceServer, user: str, marker: str) -> None:
    item = {"type": "track", "userId": user, "event": "Clicked", "properties": {"m": marker}}
    res = server.post("/v1/batch", {"batch": [item]}, key=WRITE_KEY)
    assert res.status == 200, res.body


def test_suppression_at_ingest_then_unsuppress(server: SluiceServer, admin: Admin) -> None:
    user = f"s-{uuid.uuid4().hex[:8]}"
    admin.ok(admin.call("POST", "/regulations", body("SUPPRESS_ONLY", user)))
    before = server.counters().get(("web", "suppressed"), 0)
    time.sleep(2.5)  # every worker reloads the workspace each second
    markers = [uuid.uuid4().hex for _ in range(8)]
    for marker in markers:  # two workers: each request may reach either
        _post_track(server, user, marker)
    wait_for(
        lambda: server.counters().get(("web", "suppressed"), 0) >= before + len(markers),
        timeout=20,
        what="the suppressed counter",
    )
    stored = "\n".join(stored_users(server))
    assert not any(m in stored for m in markers)
    scrape = server.request("GET", "/metrics").body.decode()
    assert 'sluice_events_suppressed_total{source="web"}' in scrape
    assert 'sluice_regulations{status="FINISHED"}' in scrape
    status = sluice(server.data_dir, server.env, "status")
    assert "events of suppressed users dropped" in status.stdout

    admin.ok(admin.call("POST", "/regulations", body("UNSUPPRESS", user)))
    time.sleep(2.5)
    after = uuid.uuid4().hex
    _post_track(server, user, after)
    wait_for(lambda: any(after in p for p in stored_users(server)), what="the event stored")
    out = sluice(server.data_dir, server.env, "suppressions", "check", user, check=False)
    assert out.returncode == 1 and out.stdout.strip() == "not suppressed"


JS_DIR = Path(__file__).resolve().parent.parent / "js"
NODE_LIBRARY = JS_DIR / "node_modules" / "@segment" / "analytics-node" / "package.json"


def test_segments_node_library_sees_suppression_as_success(
    server: SluiceServer, admin: Admin
) -> None:
    """The real `@segment/analytics-node`: a batch mixing a suppressed user and another is
    answered 200 (the library retries nothing, reports nothing); only the other is stored."""
    node = shutil.which("node")
    require(node is not None and NODE_LIBRARY.is_file(), "node or analytics-node is missing")
    assert node is not None
    run = uuid.uuid4().hex[:8]
    hidden, shown = f"hidden-{run}", f"shown-{run}"
    admin.ok(admin.call("POST", "/regulations", body("SUPPRESS_ONLY", hidden)))
    time.sleep(2.5)
    before = server.counters().get(("web", "suppressed"), 0)
    calls = [
        {"call": "track", "params": {"userId": user, "event": "Read", "properties": {"n": i}}}
        for i in range(5)
        for user in (hidden, shown)
    ]
    proc = subprocess.run(
        [node, str(JS_DIR / "send_node.mjs"), "--host", server.base_url, "--write-key", WRITE_KEY],
        input=msgspec.json.encode(calls),
        capture_output=True,
        cwd=JS_DIR,
        timeout=60,
        check=False,
    )
    report = msgspec.json.decode(proc.stdout)
    assert proc.returncode == 0 and report["errors"] == [], proc.stderr
    assert {r["status"] for r in report["requests"]} == {200}
    wait_for(
        lambda: server.counters().get(("web", "suppressed"), 0) >= before + 5,
        timeout=20,
        what="the suppressed counter",
    )
    stored = "\n".join(stored_users(server))
    assert stored.count(f'"userId":"{shown}"') == 5 and hidden not in stored
