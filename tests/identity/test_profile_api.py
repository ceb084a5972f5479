"""The Profile API on a real server: events sent with the Tracking API, resolved by the worker's
identity consumer, then read back over HTTP with a Profile API token, as Segment's clients do."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from prometheus_client.parser import text_string_to_metric_families

from server import SLUICE, WRITE_KEY, Response, SluiceServer, clean_env, wait_for

SPACE = "papi"
ANON, USER, EMAIL, GROUP = "anon-7f3a", "jane-42", "jane+42@example.io", "acme-co"
BASE = f"/v1/spaces/{SPACE}/collections/users/profiles"

# Shapes of Segment's documented answers (our own values): the keys a client reads.
SEGMENT_TRAITS = {
    "traits": {"plan": "gold", "first_name": "Ada"},
    "cursor": {"url": "/v1/spaces/x/collections/users/profiles/user_id:a/traits?limit=2",
               "has_more": True, "next": "first_name", "limit": 2},
}  # fmt: skip
SEGMENT_EXTERNAL_ID = {
    "source_id": "src1", "collection": "users", "id": "a", "type": "user_id",
    "created_at": "2026-01-02T03:04:05.000Z", "encoding": "none", "first_message_id": "m1",
}  # fmt: skip
SEGMENT_EVENT = {
    "external_ids": [{"collection": "users", "type": "user_id", "id": "a", "encoding": "none"}],
    "context": {"library": {"name": "analytics-python"}}, "type": "track", "message_id": "m2",
    "source_id": "src1", "timestamp": "2026-01-02T03:04:05.000Z", "properties": {"total": 5},
    "event": "Order Completed", "related": {"users": None},
}  # fmt: skip
SEGMENT_METADATA = {
    "metadata": {
        "created_at": "2026-01-02T03:04:05.000Z", "updated_at": "2026-01-02T03:04:05.000Z",
        "expires_at": None, "first_message_id": "m1", "first_source_id": "src1",
        "last_message_id": "m2", "last_source_id": "src1",
    }
}  # fmt: skip


def sluice(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `sluice` command on the server's data dir."""
    return subprocess.run(
        [*SLUICE, *args, "--data-dir", str(data_dir)],
        env=clean_env(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip


def _events() -> list[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(minutes=10)

    def at(minute: int) -> str:
        return (start + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")

    return [
        {"type": "page", "messageId": "pa-1", "anonymousId": ANON, "name": "Home",
         "timestamp": at(0)},
        {"type": "track", "messageId": "pa-2", "anonymousId": ANON, "event": "Product Viewed",
         "properties": {"sku": "K-1"}, "timestamp": at(1)},
        {"type": "identify", "messageId": "pa-3", "anonymousId": ANON, "userId": USER,
         "traits": {"email": EMAIL, "plan": "pro", "first_name": "Jane"}, "timestamp": at(2)},
        {"type": "track", "messageId": "pa-4", "userId": USER, "event": "Order Completed",
         "properties": {"total": 30}, "timestamp": at(3)},
        {"type": "group", "messageId": "pa-5", "userId": USER, "groupId": GROUP,
         "traits": {"name": "Acme"}, "timestamp": at(4)},
        {"type": "track", "messageId": "pa-6", "anonymousId": "someone-else", "event": "Other",
         "timestamp": at(5)},
    ]  # fmt: skip


class Client:
    def __init__(self, server: SluiceServer, token: str) -> None:
        self.server, self.token = server, token

    def get(self, path: str, token: str | None = None, **params: Any) -> Response:
        query = "&".join(f"{k}={quote(str(v))}" for k, v in params.items())
        auth = base64.b64encode(f"{token or self.token}:".encode()).decode()
        return self.server.request(
            "GET", path + (f"?{query}" if query else ""), headers={"Authorization": f"Basic {auth}"}
        )

    def ok(self, path: str, **params: Any) -> Any:
        res = self.get(path, **params)
        assert res.status == 200, (res.status, res.body)
        return res.json()


@pytest.fixture(scope="module")
def setup(
    start_module_server: Callable[..., SluiceServer], tmp_path_factory: pytest.TempPathFactory
) -> tuple[SluiceServer, Client, str]:
    tmp = tmp_path_factory.mktemp("papi")
    data = tmp / "data"
    workspace = tmp / "ws.yaml"
    workspace.write_text(f"workspace: {SPACE}\nsources: [{{id: web, write_keys: [{WRITE_KEY}]}}]\n")
    sluice(data, "apply", str(workspace))
    server = start_module_server({"SLUICE_WORKERS": "2"}, data_dir=data)
    (token,) = sluice(data, "token", "create", "--scope", "profile", "--name", "p").stdout.split()
    (admin,) = sluice(data, "token", "create", "--name", "a").stdout.split()
    assert server.post("/v1/batch", {"batch": _events()}).status == 200
    client = Client(server, token)

    def resolved() -> bool:
        res = client.get(f"{BASE}/user_id:{USER}/events", limit=100)
        return res.status == 200 and len(res.json()["data"]) == 5

    wait_for(resolved, timeout=60, interval=0.3, what="the identity consumer")
    return server, client, admin


def test_anonymous_then_sign_up_is_one_profile_under_both_ids(setup: Any) -> None:
    _, client, _ = setup
    for ident in (f"user_id:{USER}", f"anonymous_id:{ANON}", f"email:{quote(EMAIL)}"):
        traits = client.ok(f"{BASE}/{ident}/traits")
        assert traits["traits"] == {"email": EMAIL, "plan": "pro", "first_name": "Jane"}
        ids = client.ok(f"{BASE}/{ident}/external_ids")["data"]
        assert {(i["type"], i["id"]) for i in ids} == {
            ("anonymous_id", ANON), ("user_id", USER), ("email", EMAIL)
        }  # fmt: skip
        assert all(i["collection"] == "users" and i["source_id"] == "web" for i in ids)
        events = client.ok(f"{BASE}/{ident}/events")["data"]
        assert [e["message_id"] for e in events] == ["pa-5", "pa-4", "pa-3", "pa-2", "pa-1"]
        meta = client.ok(f"{BASE}/{ident}/metadata")["metadata"]
        assert (meta["first_message_id"], meta["last_message_id"]) == ("pa-1", "pa-5")
    # By the profile id itself (`use_...`), as `sluice profiles show` prints it.
    shown = sluice(client.server.data_dir, "profiles", "show", f"user_id:{USER}", "--json")
    profile_id = json.loads(shown.stdout)["profile_id"]
    assert profile_id.startswith("use_")
    assert client.ok(f"{BASE}/{profile_id}/traits")["traits"]["plan"] == "pro"


def test_answers_have_segments_shapes(setup: Any) -> None:
    _, client, _ = setup
    traits = client.ok(f"{BASE}/user_id:{USER}/traits", limit=2)
    assert traits.keys() == SEGMENT_TRAITS.keys()
    assert traits["cursor"].keys() == SEGMENT_TRAITS["cursor"].keys()
    assert traits["cursor"]["url"] == f"{BASE}/user_id:{USER}/traits?limit=2"
    assert traits["cursor"]["has_more"] is True and traits["cursor"]["limit"] == 2
    ids = client.ok(f"{BASE}/user_id:{USER}/external_ids")
    assert all(i.keys() == SEGMENT_EXTERNAL_ID.keys() for i in ids["data"])
    events = client.ok(f"{BASE}/user_id:{USER}/events")["data"]
    assert all(e.keys() == SEGMENT_EVENT.keys() for e in events)
    order = next(e for e in events if e["message_id"] == "pa-4")
    assert (order["event"], order["properties"], order["type"]) == (
        "Order Completed", {"total": 30}, "track"
    )  # fmt: skip
    assert {"collection": "users", "type": "user_id", "id": USER, "encoding": "none"} in order[
        "external_ids"
    ]
    meta = client.ok(f"{BASE}/user_id:{USER}/metadata")
    assert meta["metadata"].keys() == SEGMENT_METADATA["metadata"].keys()


def test_paging_with_limit_and_next(setup: Any) -> None:
    _, client, _ = setup
    for resource, key in (("events", "data"), ("external_ids", "data"), ("traits", "traits")):
        seen: list[Any] = []
        params: dict[str, Any] = {"limit": 2}
        while True:
            page = client.ok(f"{BASE}/user_id:{USER}/{resource}", **params)
            items = page[key]
            seen += list(items) if key == "traits" else [str(i) for i in items]
            assert len(items) <= 2
            if not page["cursor"]["has_more"]:
                assert page["cursor"]["next"] == ""
                break
            params["next"] = page["cursor"]["next"]
        full = client.ok(f"{BASE}/user_id:{USER}/{resource}", limit=10)[key]
        expected = list(full) if key == "traits" else [str(i) for i in full]
        assert seen == expected and len(seen) >= 3, resource
    asc = client.ok(f"{BASE}/user_id:{USER}/events", sort="asc", limit=2)
    nxt = client.ok(
        f"{BASE}/user_id:{USER}/events", sort="asc", limit=2, next=asc["cursor"]["next"]
    )
    assert [e["message_id"] for e in asc["data"] + nxt["data"]] == ["pa-1", "pa-2", "pa-3", "pa-4"]


def test_verbose_include_and_event_filters(setup: Any) -> None:
    _, client, _ = setup
    verbose = client.ok(f"{BASE}/user_id:{USER}/traits", verbose="true")["traits"]
    assert verbose["plan"]["value"] == "pro" and verbose["plan"]["source_id"] == "web"
    assert verbose["plan"]["updated_at"].endswith("Z")
    only = client.ok(f"{BASE}/user_id:{USER}/traits", include="plan,first_name")["traits"]
    assert only == {"plan": "pro", "first_name": "Jane"}
    assert client.ok(f"{BASE}/user_id:{USER}/traits", **{"class": "audience"})["traits"] == {}
    ids = client.ok(f"{BASE}/user_id:{USER}/external_ids", include="email")["data"]
    assert [(i["type"], i["id"]) for i in ids] == [("email", EMAIL)]
    named = client.ok(f"{BASE}/user_id:{USER}/events", include="Order Completed")["data"]
    assert [e["message_id"] for e in named] == ["pa-4"]
    rest = client.ok(f"{BASE}/user_id:{USER}/events", exclude="Order Completed,Product Viewed")
    assert [e["message_id"] for e in rest["data"]] == ["pa-5", "pa-3", "pa-1"]
    third = client.ok(f"{BASE}/user_id:{USER}/events", sort="asc")["data"][2]["timestamp"]
    late = client.ok(f"{BASE}/user_id:{USER}/events", start=third)["data"]
    assert [e["message_id"] for e in late] == ["pa-5", "pa-4", "pa-3"]
    early = client.ok(f"{BASE}/user_id:{USER}/events", end=third, sort="asc")["data"]
    assert [e["message_id"] for e in early] == ["pa-1", "pa-2", "pa-3"]


def test_links_between_users_and_accounts(setup: Any) -> None:
    _, client, _ = setup
    links = client.ok(f"{BASE}/user_id:{USER}/links")["data"]
    assert [link["to_collection"] for link in links] == ["accounts"]
    assert [(i["type"], i["id"]) for i in links[0]["external_ids"]] == [("group_id", GROUP)]
    accounts = f"/v1/spaces/{SPACE}/collections/accounts/profiles/group_id:{GROUP}"
    assert client.ok(f"{accounts}/traits")["traits"] == {"name": "Acme"}
    back = client.ok(f"{accounts}/links")["data"]
    assert [link["to_collection"] for link in back] == ["users"]
    assert ("user_id", USER) in {(i["type"], i["id"]) for i in back[0]["external_ids"]}


def test_unknown_profile_and_space_are_404(setup: Any) -> None:
    _, client, _ = setup
    res = client.get(f"{BASE}/user_id:nobody/traits")
    assert (res.status, res.json()) == (
        404, {"error": {"code": "not_found", "message": "Profile was not found."}}
    )  # fmt: skip
    assert res.headers.get("request-id")
    other = client.get(f"/v1/spaces/elsewhere/collections/users/profiles/user_id:{USER}/traits")
    assert other.status == 404 and other.json()["error"]["code"] == "not_found"
    # An account is not a user: the collection is part of the lookup.
    assert client.get(f"{BASE}/group_id:{GROUP}/traits").status == 404


@pytest.mark.parametrize("kind", ["missing", "wrong", "admin", "bearer"])
def test_bad_tokens_are_401(setup: Any, kind: str) -> None:
    server, client, admin = setup
    path = f"{BASE}/user_id:{USER}/traits"
    if kind == "missing":
        res = server.request("GET", path)
    elif kind == "bearer":
        res = server.request("GET", path, headers={"Authorization": f"Bearer {client.token}"})
    else:
        res = client.get(path, token="sluice_not-a-token" if kind == "wrong" else admin)
    assert res.status == 401
    assert res.json()["error"]["code"] == "authentication_error"
    assert res.headers["www-authenticate"].startswith("Basic")


def test_a_profile_token_is_refused_by_the_admin_api(setup: Any) -> None:
    server, client, admin = setup
    refused = server.request(
        "GET", "/api/v1/sources", headers={"Authorization": f"Bearer {client.token}"}
    )
    assert refused.status == 401
    accepted = server.request(
        "GET", "/api/v1/sources", headers={"Authorization": f"Bearer {admin}"}
    )
    assert accepted.status == 200
    assert client.token not in server.log()


@pytest.mark.parametrize(
    ("resource", "params", "code"),
    [
        ("traits", {"limit": "0"}, "validation_error"),
        ("traits", {"limit": "201"}, "validation_error"),
        ("events", {"limit": "101"}, "validation_error"),
        ("events", {"limit": "ten"}, "validation_error"),
        ("events", {"sort": "newest"}, "validation_error"),
        ("events", {"start": "yesterday"}, "validation_error"),
        ("traits", {"verbose": "maybe"}, "validation_error"),
        ("traits", {"class": "everything"}, "validation_error"),
        ("events", {"next": "not-a-cursor!"}, "invalid_request_error"),
        ("traits", {"next": "MTIz"}, "invalid_request_error"),  # a cursor of another kind
    ],
    ids=lambda v: str(v) if not isinstance(v, dict) else "&".join(f"{k}={v[k]}" for k in v),
)
def test_bad_parameters_are_400(
    setup: Any, resource: str, params: dict[str, str], code: str
) -> None:
    _, client, _ = setup
    res = client.get(f"{BASE}/user_id:{USER}/{resource}", **params)
    assert res.status == 400, res.body
    assert res.json()["error"]["code"] == code and res.json()["error"]["message"]


def test_bad_identifier_collection_and_method(setup: Any) -> None:
    server, client, _ = setup
    assert client.get(f"{BASE}/nocolon/traits").json()["error"]["code"] == "invalid_request_error"
    wrong = client.get(f"/v1/spaces/{SPACE}/collections/things/profiles/user_id:{USER}/traits")
    assert wrong.status == 400
    assert client.get(f"{BASE}/user_id:{USER}/nothing").status == 404
    posted = server.request("POST", f"{BASE}/user_id:{USER}/traits", b"{}")
    assert posted.status == 405 and posted.json()["error"]["code"] == "invalid_request_error"


def test_the_graph_is_in_metrics_and_status(setup: Any) -> None:
    """The worker reports the graph (identity/report.py): `/metrics` and `sluice status` show
    its position caught up with the log, its merges, and identity.db's checkpoints."""
    server, _, _ = setup
    end = server.store.last_seq()

    def samples() -> dict[str, float]:
        res = server.request("GET", "/metrics")
        assert res.status == 200
        found = {}
        for family in text_string_to_metric_families(res.body.decode()):
            for s in family.samples:
                if s.name.startswith("sluice_identity_") and s.labels.get("space") == SPACE:
                    found[s.name] = s.value
        return found

    wait_for(
        lambda: samples().get("sluice_identity_position") == end,
        timeout=30, interval=0.5, what="the identity report in /metrics",
    )  # fmt: skip
    found = samples()
    graph = json.loads(sluice(server.data_dir, "identity", "status", "--json").stdout)
    assert found["sluice_identity_lag_events"] == 0
    assert found["sluice_identity_merges"] == graph["merges"]
    assert found["sluice_identity_merges_refused"] == 0
    assert found["sluice_identity_wal_checkpoints_total"] >= 1  # SQLite: the thread's
    assert found["sluice_identity_wal_checkpoint_failures_total"] == 0
    status = json.loads(sluice(server.data_dir, "status", "--json").stdout)["identity"][SPACE]
    assert status["position"] == end and status["lag"] == 0
    assert status["merges"] == graph["merges"]
    assert status["wal_checkpoint_failing"] is False
    text = sluice(server.data_dir, "status").stdout
    assert (
        f"identity graph of {SPACE}: log position {end} (lag 0), {graph['merges']} merges" in text
    )
