"""Bearer tokens: made, listed and revoked with the real CLI, checked by the running server."""

from __future__ import annotations

import hashlib
import json

import msgspec
import pytest
from admin_client import API, Api, create_token, sluice

from server import WRITE_KEY, SluiceServer, basic, wait_for


def assert_unauthorized(response_status: int, body: bytes, headers: dict[str, str]) -> None:
    assert response_status == 401
    assert headers["content-type"] == "application/json"
    assert headers["www-authenticate"] == 'Bearer realm="sluice"'
    error = json.loads(body)
    assert error["code"] == "unauthorized"
    assert error["message"]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Bearer ",
        "Bearer sluice_not-a-token",
        basic(WRITE_KEY),
        f"Bearer {WRITE_KEY}",
        "Token sluice_whatever",
    ],
    ids=[
        "none",
        "empty-bearer",
        "blank-token",
        "unknown-token",
        "basic-write-key",
        "write-key-as-bearer",
        "other-scheme",
    ],
)
def test_requests_without_a_valid_token_are_refused(
    admin_server: SluiceServer, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for path in ("/sources", "/workspace", "/stats", "/events/abc/trace"):
        res = admin_server.request("GET", API + path, headers=headers)
        assert_unauthorized(res.status, res.body, res.headers)


def test_refused_before_the_body_is_looked_at(admin_server: SluiceServer) -> None:
    res = admin_server.request(
        "PUT", API + "/workspace", b"{not json", {"Authorization": "Bearer nope"}
    )
    assert_unauthorized(res.status, res.body, res.headers)


def test_the_openapi_document_needs_no_token(admin_server: SluiceServer) -> None:
    res = admin_server.request("GET", API + "/openapi.json")
    assert res.status == 200
    assert res.json()["openapi"] == "3.1.0"


def test_a_token_works_until_revoked(admin_server: SluiceServer) -> None:
    token = create_token(admin_server.data_dir, "short-lived")
    api = Api(admin_server, token)
    # Two workers: several requests reach both, each of which must know the new token.
    for _ in range(4):
        assert api.get("/sources").status == 200
    listed = [
        json.loads(line)
        for line in sluice(admin_server.data_dir, "token", "list", "--json").stdout.splitlines()
    ]
    (mine,) = [t for t in listed if t["name"] == "short-lived"]
    assert mine["revoked_at"] is None
    assert "sha256" not in mine and token not in json.dumps(listed)

    out = sluice(admin_server.data_dir, "token", "revoke", mine["id"])
    assert out.stdout.startswith(f"Revoked admin token {mine['id']} at ")
    for _ in range(4):
        res = api.get("/sources")
        assert_unauthorized(res.status, res.body, res.headers)
    listed = [
        json.loads(line)
        for line in sluice(admin_server.data_dir, "token", "list", "--json").stdout.splitlines()
    ]
    (mine,) = [t for t in listed if t["id"] == mine["id"]]
    assert mine["revoked_at"] is not None


def test_tokens_are_stored_as_their_hash_only(admin_server: SluiceServer) -> None:
    token = create_token(admin_server.data_dir, "hashed")
    objects = admin_server.store.list_config("admin_token")
    stored = [msgspec.json.decode(o.body) for o in objects]
    (record,) = [r for r in stored if r["name"] == "hashed"]
    assert record["sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert all(token.encode() not in o.body for o in objects)
    assert token.startswith("sluice_") and len(token) > 40


def test_revoking_an_unknown_token_fails(admin_server: SluiceServer) -> None:
    out = sluice(admin_server.data_dir, "token", "revoke", "tok_nothing", check=False)
    assert out.returncode == 1
    assert "no admin token has the id 'tok_nothing'" in out.stderr


def test_tokens_survive_sluice_apply(admin_server: SluiceServer) -> None:
    token = create_token(admin_server.data_dir, "kept")
    api = Api(admin_server, token)
    exported = sluice(admin_server.data_dir, "export").stdout
    path = admin_server.data_dir.parent / "exported.yaml"
    path.write_text(exported.replace("sources:\n", "sources:\n  - id: extra\n", 1))
    sluice(admin_server.data_dir, "apply", str(path))
    wait_for(lambda: api.get("/sources/extra").status == 200, what="the applied source")
    assert api.get("/sources").status == 200


def test_unknown_paths_and_methods_answer_json(api: Api) -> None:
    res = api.get("/no-such-thing")
    assert res.status == 404
    assert res.json() == {"code": "not_found", "message": "Not Found: GET /api/v1/no-such-thing"}
    res = api.call("DELETE", "/stats")
    assert res.status == 405
    assert res.json()["code"] == "method_not_allowed"
    assert set(res.headers["allow"].split(", ")) == {"GET", "HEAD"}
