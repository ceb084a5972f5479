"""The workspace through the admin API: whole documents, and sources, destinations, warehouses
one at a time. Every change must obey exactly the rules `sluice apply` applies to a file."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import yaml
from admin_client import BASE_WORKSPACE, Api, sluice

from server import OTHER_KEY, WRITE_KEY, SluiceServer, wait_for


@pytest.fixture(autouse=True)
def reset(api: Api) -> None:
    api.reset()


def webhook(dest_id: str = "hook", **extra: Any) -> dict[str, Any]:
    return {
        "id": dest_id,
        "type": "webhook",
        "settings": {"urls": ["http://127.0.0.1:9/hook"]},
        **extra,
    }


def track_status(server: SluiceServer, key: str) -> int:
    body = {"type": "track", "event": "Key Check", "userId": "u1"}
    return server.post("/v1/track", body, key=key).status


# --- the whole workspace ------------------------------------------------------------------------
def test_get_workspace_is_what_sluice_export_prints(api: Api, admin_server: SluiceServer) -> None:
    api.ok(api.post("/destinations", webhook(sources=["web"], name="Hook")), 201)
    api.ok(api.post("/warehouses", {"id": "dw", "type": "duckdb", "sources": ["app"]}), 201)
    exported = sluice(admin_server.data_dir, "export").stdout

    as_yaml = api.get("/workspace?format=yaml")
    assert as_yaml.status == 200
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert as_yaml.body.decode() == exported

    document = api.ok(api.get("/workspace"))
    assert document == yaml.safe_load(exported)
    assert document["destinations"] == [
        {
            "id": "hook",
            "type": "webhook",
            "name": "Hook",
            "sources": ["web"],
            "settings": {"urls": ["http://127.0.0.1:9/hook"]},
        }
    ]
    # Applying what GET returned changes nothing, through the API or with the CLI.
    report = api.ok(api.put("/workspace", document))
    assert report == {
        "changed": False,
        "dry_run": False,
        "created": [],
        "updated": [],
        "deleted": [],
        "generated_keys": {},
    }
    path = admin_server.data_dir.parent / "roundtrip.yaml"
    path.write_text(exported)
    applied = sluice(admin_server.data_dir, "apply", str(path)).stdout
    assert applied.startswith("No changes")


def test_put_workspace_reports_like_apply_and_dry_run_changes_nothing(api: Api) -> None:
    document = {
        **BASE_WORKSPACE,
        "sources": [*BASE_WORKSPACE["sources"], {"id": "ios"}],
        "destinations": [webhook()],
    }
    dry = api.ok(api.put("/workspace?dry_run=true", document))
    assert dry["dry_run"] is True and dry["changed"] is True
    assert dry["created"] == ["source/ios", "destination/hook"]
    assert dry["generated_keys"] == {"ios": None}
    assert api.get("/sources/ios").status == 404

    report = api.ok(api.put("/workspace", document))
    assert report["created"] == ["source/ios", "destination/hook"]
    assert report["updated"] == [] and report["deleted"] == []
    (key,) = report["generated_keys"].values()
    assert api.ok(api.get("/sources/ios"))["write_keys"] == [key]

    smaller = {**BASE_WORKSPACE, "workspace": "renamed"}
    report = api.ok(api.put("/workspace", smaller))
    assert report["updated"] == ["workspace/workspace"]
    assert sorted(report["deleted"]) == ["destination/hook", "source/ios"]


def test_put_workspace_takes_yaml(api: Api) -> None:
    text = (
        "workspace: tests\n"
        "sources:\n"
        f"  - {{id: app, write_keys: [{OTHER_KEY}]}}\n"
        f"  - {{id: web, name: Web, write_keys: [{WRITE_KEY}]}}\n"
        "  - id: yaml-only\n"
    )
    res = api.put("/workspace", text.encode(), headers={"Content-Type": "application/yaml"})
    report = api.ok(res)
    assert report["created"] == ["source/yaml-only"]


INVALID_DOCUMENTS = [
    pytest.param(
        "sources:\n  - id: web\n    write_key: wk_abcdefgh\n", id="unknown-field-with-hint"
    ),
    pytest.param("sources:\n  - id: web\n  - id: web\n", id="duplicate-id"),
    pytest.param("sources:\n  - id: Web!\n", id="bad-id"),
    pytest.param(
        "sources: [{id: web}]\ndestinations:\n  - {id: d, type: webhook, sources: [mobile]}\n",
        id="unknown-source",
    ),
    pytest.param("warehouses:\n  - {id: w, type: mysql}\n", id="bad-enum"),
    pytest.param(
        "destinations:\n  - id: d\n    type: webhook\n    settings: {urls: ['ftp://x']}\n",
        id="destination-settings",
    ),
    pytest.param("destinations:\n  - {id: d, type: carrier-pigeon}\n", id="unknown-type"),
    pytest.param(
        "destinations:\n  - id: d\n    type: webhook\n    settings: {urls: ['http://x']}\n"
        "    mappings: [{action: nope}]\n",
        id="unknown-action",
    ),
    pytest.param(
        "destinations:\n  - id: d\n    type: webhook\n    settings: {urls: ['http://x']}\n"
        "    filters: [{title: t, if: 'type = ', actions: [{type: drop}]}]\n",
        id="filter-condition",
    ),
    pytest.param("sources: [web\n", id="yaml-syntax"),
]


@pytest.mark.parametrize("text", INVALID_DOCUMENTS)
def test_put_workspace_refuses_what_apply_refuses_with_the_same_message(
    api: Api, admin_server: SluiceServer, text: str
) -> None:
    path = admin_server.data_dir.parent / "invalid.yaml"
    path.write_text(text)
    cli = sluice(admin_server.data_dir, "apply", "--dry-run", str(path), check=False)
    assert cli.returncode == 2
    expected = cli.stderr.strip().removeprefix(f"{path}: ")

    res = api.put("/workspace", text.encode(), headers={"Content-Type": "application/yaml"})
    assert res.status == 422, res.body
    error = res.json()
    assert error["code"] == "invalid"
    assert error["message"] == expected
    assert expected.startswith(f"{error['field']}: ")
    if not text.startswith("sources: [web"):
        # The same document as JSON: the same answer.
        res = api.put("/workspace", yaml.safe_load(text))
        assert res.status == 422 and res.json() == error
    assert api.ok(api.get("/workspace"))["workspace"] == "tests"  # nothing was applied


def test_put_workspace_refuses_a_body_that_is_not_json(api: Api) -> None:
    res = api.put("/workspace", b'{"sources": [')
    assert res.status == 400
    assert res.json()["code"] == "invalid_json"
    res = api.put("/workspace?dry_run=maybe", BASE_WORKSPACE)
    assert res.status == 400
    assert res.json() == {
        "code": "bad_parameter",
        "message": "dry_run: Expected true or false, got 'maybe'",
        "field": "dry_run",
    }


# --- sources -----------------------------------------------------------------------------------
def test_sources_create_read_update_delete(api: Api) -> None:
    listed = api.ok(api.get("/sources"))["sources"]
    assert [s["id"] for s in listed] == ["app", "web"]
    assert listed[1] == {
        "id": "web",
        "name": "Web",
        "write_keys": [WRITE_KEY],
        "enabled": True,
        "webhook": None,
    }

    res = api.post("/sources", {"id": "ios", "name": "iOS"})
    created = api.ok(res, 201)
    assert res.headers["location"] == "/api/v1/sources/ios"
    (key,) = created["write_keys"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", key)
    assert created == {
        "id": "ios",
        "name": "iOS",
        "write_keys": [key],
        "enabled": True,
        "webhook": None,
    }
    assert api.ok(api.get("/sources/ios")) == created

    # PUT replaces the object; write keys left out are kept, as `apply` keeps them.
    replaced = api.ok(api.put("/sources/ios", {"enabled": False, "webhook": None}))
    assert replaced == {
        "id": "ios",
        "name": "ios",
        "write_keys": [key],
        "enabled": False,
        "webhook": None,
    }
    patched = api.ok(api.patch("/sources/ios", {"name": "iPhone"}))
    assert patched == {
        "id": "ios",
        "name": "iPhone",
        "write_keys": [key],
        "enabled": False,
        "webhook": None,
    }
    assert api.ok(api.post("/sources/ios/enable"))["enabled"] is True
    assert api.ok(api.post("/sources/ios/disable"))["enabled"] is False

    assert api.delete("/sources/ios").status == 204
    res = api.get("/sources/ios")
    assert res.status == 404
    assert res.json() == {"code": "not_found", "message": "No source 'ios'"}
    for method, path in (
        ("DELETE", "/sources/ios"),
        ("PUT", "/sources/ios"),
        ("PATCH", "/sources/ios"),
        ("POST", "/sources/ios/enable"),
        ("POST", "/sources/ios/rotate-write-key"),
    ):
        body = {} if method in ("PUT", "PATCH") else None
        assert api.call(method, path, body).status == 404, (method, path)


def test_source_errors_name_the_field(api: Api) -> None:
    res = api.post("/sources", {"id": "web"})
    assert res.status == 409
    assert res.json() == {"code": "already_exists", "message": "A source 'web' exists already"}

    cases = [
        ({"id": "Bad Id"}, "id", "Expected an id: 1 to 64 characters"),
        ({"name": "no id"}, "id", "Missing required field"),
        ({"id": "x", "write_keys": "abc"}, "write_keys", "Expected array, got str"),
        ({"id": "x", "write_keys": ["short"]}, "write_keys[0]", "Expected a write key"),
        ({"id": "x", "write_keys": [WRITE_KEY]}, "write_keys[0]", "Duplicate write key"),
        ({"id": "x", "colour": "red"}, "colour", "Unknown field (expected one of: id,"),
        ([1, 2], "", "Expected a JSON object"),
    ]
    for body, field, message in cases:
        res = api.post("/sources", body)
        assert res.status == 422, (body, res.body)
        error = res.json()
        assert error["code"] == "invalid"
        assert error["field"] == field, (body, error)
        assert message in error["message"], (body, error)

    res = api.put("/sources/web", {"id": "other"})
    assert res.status == 422
    assert res.json()["field"] == "id"
    res = api.patch("/sources/web", {"enabled": "yes"})
    assert res.status == 422
    assert res.json() == {
        "code": "invalid",
        "message": "enabled: Expected bool, got str",
        "field": "enabled",
    }


def test_rotating_a_write_key_takes_effect_in_the_collector(
    api: Api, admin_server: SluiceServer
) -> None:
    assert track_status(admin_server, WRITE_KEY) == 200
    rotated = api.ok(api.post("/sources/web/rotate-write-key?keep_old=true"))
    new_key = rotated["write_key"]
    assert rotated["source"]["write_keys"] == [WRITE_KEY, new_key]
    wait_for(lambda: track_status(admin_server, new_key) == 200, what="the new key")
    assert track_status(admin_server, WRITE_KEY) == 200

    rotated = api.ok(api.post("/sources/web/rotate-write-key"))
    newest = rotated["write_key"]
    assert rotated["source"]["write_keys"] == [newest]
    # Both HTTP workers must stop accepting the old keys.
    wait_for(
        lambda: all(track_status(admin_server, key) == 401 for key in (WRITE_KEY, new_key) * 3),
        what="the old keys refused",
    )
    wait_for(lambda: track_status(admin_server, newest) == 200, what="the newest key")


# --- destinations ------------------------------------------------------------------------------
def test_destination_catalog(api: Api) -> None:
    types = api.ok(api.get("/destination-types"))["destination_types"]
    ids = [t["id"] for t in types]
    assert ids == sorted(ids)
    assert {"webhook", "amplitude", "mixpanel", "google-analytics-4"} <= set(ids)

    amplitude = api.ok(api.get("/destination-types/amplitude"))
    assert amplitude == next(t for t in types if t["id"] == "amplitude")
    assert amplitude["name"] == "Actions Amplitude"
    schema = amplitude["settings_schema"]
    assert schema["type"] == "object" and schema["required"] == ["api_key"]
    assert schema["properties"]["region"]["enum"] == ["europe", "north_america"]
    assert "logEventV2" in [a["id"] for a in amplitude["actions"]]
    assert amplitude["presets"][0]["trigger"] == 'type = "track" and event != "Order Completed"'

    res = api.get("/destination-types/carrier-pigeon")
    assert res.status == 404
    assert res.json()["code"] == "not_found"


def test_destinations_create_read_update_delete(api: Api) -> None:
    created = api.ok(api.post("/destinations", webhook(sources=["web"])), 201)
    assert created == {
        "id": "hook",
        "type": "webhook",
        "name": None,
        "mode": "cloud",
        "enabled": True,
        "sources": ["web"],
        "settings": {"urls": ["http://127.0.0.1:9/hook"]},
        "filters": [],
        "mappings": [],
        "consent_categories": [],
        "delivery": {},
    }
    assert api.ok(api.get("/destinations"))["destinations"] == [created]

    mappings = [
        {"action": "send", "trigger": 'type = "track"', "mapping": {"e": {"@path": "$.event"}}}
    ]
    filters = [{"title": "No secrets", "if": "event = 'Secret'", "actions": [{"type": "drop"}]}]
    patched = api.ok(api.patch("/destinations/hook", {"mappings": mappings}))
    assert patched["mappings"] == mappings and patched["sources"] == ["web"]
    res = api.patch("/destinations/hook", {"filters": filters, "enabled": False})
    patched = api.ok(res)
    assert patched["filters"] == filters and patched["enabled"] is False
    assert api.ok(api.post("/destinations/hook/enable"))["enabled"] is True
    assert api.ok(api.post("/destinations/hook/disable"))["enabled"] is False

    replaced = api.ok(
        api.put(
            "/destinations/hook",
            {"type": "webhook", "settings": {"urls": ["http://127.0.0.1:9/other"]}},
        )
    )
    assert replaced["settings"] == {"urls": ["http://127.0.0.1:9/other"]}
    assert replaced["mappings"] == [] and replaced["enabled"] is True

    assert api.delete("/destinations/hook").status == 204
    assert api.ok(api.get("/destinations")) == {"destinations": []}


def test_destination_errors_name_the_field(api: Api) -> None:
    cases = [
        (webhook(type="carrier-pigeon"), "type", "unknown destination type 'carrier-pigeon'"),
        (webhook(settings={"urls": ["ftp://x"]}), "settings", "is not an http(s) URL"),
        (webhook(settings={"url": "http://x"}), "settings", "unknown field `url`"),
        (webhook(sources=["mobile"]), "sources[0]", "Unknown source 'mobile'"),
        (webhook(mappings=[{"action": "nope"}]), "mappings[0].action", "nope"),
        (
            webhook(mappings=[{"action": "send", "trigger": "type = ", "mapping": {}}]),
            "mappings[0].trigger",
            "at position 7 in 'type = '",
        ),
        (
            webhook(filters=[{"title": "t", "if": "type = ", "actions": [{"type": "drop"}]}]),
            "filters[0].if",
            "at position 7 in 'type = '",
        ),
        (
            webhook(filters=[{"title": "t", "if": "all", "actions": [{"type": "explode"}]}]),
            "filters[0].actions[0].type",
            "Invalid value 'explode'",
        ),
        (webhook(delivery={"concurrency": 0}), "delivery.concurrency", "at least 1"),
    ]
    for body, field, message in cases:
        res = api.post("/destinations", body)
        assert res.status == 422, (body, res.body)
        error = res.json()
        assert error["code"] == "invalid"
        assert error["field"] == field, (body, error)
        assert message in error["message"], (body, error)
        assert error["message"].startswith(f"{field}: "), error
    assert api.ok(api.get("/destinations")) == {"destinations": []}


def test_a_filter_that_does_not_compile_is_refused_and_nothing_changes(api: Api) -> None:
    filters = [{"title": "No tests", "if": "userId = 'test'", "actions": [{"type": "drop"}]}]
    api.ok(api.post("/destinations", webhook(filters=filters)), 201)
    broken = [{**filters[0], "if": "userId = 'test"}]
    for res in (
        api.patch("/destinations/hook", {"filters": broken}),
        api.patch("/destinations/hook", {"filters": [{**broken[0], "enabled": False}]}),
        api.put("/destinations/hook", webhook(filters=broken)),
    ):
        assert res.status == 422, res.body
        assert res.json() == {
            "code": "invalid",
            "message": 'filters[0].if: unterminated string at position 9 in "userId = \'test"',
            "field": "filters[0].if",
        }
    assert api.ok(api.get("/destinations/hook"))["filters"] == filters


def test_deleting_a_source_a_destination_uses_is_a_conflict(api: Api) -> None:
    api.ok(api.post("/destinations", webhook(sources=["app", "web"])), 201)
    res = api.delete("/sources/web")
    assert res.status == 409
    assert res.json() == {
        "code": "in_use",
        "message": "Still in use: destination 'hook', sources[1]: Unknown source 'web'",
        "field": "destinations[0].sources[1]",
    }
    assert api.get("/sources/web").status == 200


# --- warehouses --------------------------------------------------------------------------------
def test_warehouses_create_read_update_delete(api: Api) -> None:
    created = api.ok(api.post("/warehouses", {"id": "dw", "type": "duckdb"}), 201)
    assert created == {"id": "dw", "type": "duckdb", "settings": {}, "sources": []}
    res = api.patch("/warehouses/dw", {"settings": {"path": "dw.duckdb"}, "sources": ["web"]})
    updated = api.ok(res)
    assert updated == {
        "id": "dw",
        "type": "duckdb",
        "settings": {"path": "dw.duckdb"},
        "sources": ["web"],
    }
    assert api.ok(api.get("/warehouses/dw")) == updated
    assert api.ok(api.get("/warehouses")) == {"warehouses": [updated]}

    res = api.post("/warehouses", {"id": "dw2", "type": "mysql"})
    assert res.status == 422
    assert res.json() == {
        "code": "invalid",
        "message": "type: Invalid enum value 'mysql', expected one of: duckdb, postgres, lake",
        "field": "type",
    }
    assert api.delete("/warehouses/dw").status == 204
    assert api.get("/warehouses/dw").status == 404


def test_changes_from_parallel_requests_are_all_kept(api: Api) -> None:
    """Read-change-apply under the workspace lease: no request drops another's change."""
    ids = [f"par{i}" for i in range(8)]
    with ThreadPoolExecutor(len(ids)) as pool:
        statuses = list(pool.map(lambda i: api.post("/sources", {"id": i}).status, ids))
    assert statuses == [201] * len(ids)
    listed = {s["id"] for s in api.ok(api.get("/sources"))["sources"]}
    assert set(ids) <= listed
