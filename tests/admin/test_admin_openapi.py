"""The OpenAPI document: it lists exactly the routes the app has, and the running server's
answers conform to it (schemathesis generates the requests from the document)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import schemathesis
from admin_client import API, Api
from hypothesis import HealthCheck, settings
from schemathesis import checks

from server import SluiceServer
from sluice.admin.app import build_admin_api
from sluice.admin.openapi import openapi_document
from sluice.config import Settings
from sluice.store.sqlite import SqliteStore

METHODS = {"get", "put", "post", "patch", "delete"}


def document_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def test_the_document_lists_exactly_the_apps_routes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db")
    try:
        app = build_admin_api(store, Settings(data_dir=tmp_path))
    finally:
        store.close()
    routes = {
        (method, re.sub(r":\w+}", "}", route.path))  # `{message_id:path}` is `{message_id}`
        for route in app.routes
        for method in getattr(route, "methods", ())
        if method != "HEAD"
    }
    assert document_operations(openapi_document()) == routes


def test_the_document_is_served_and_well_formed(api: Api, admin_server: SluiceServer) -> None:
    res = admin_server.request("GET", API + "/openapi.json")
    document = res.json()
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from `sluice token create`",
    }
    operation_ids = [
        op["operationId"]
        for item in document["paths"].values()
        for method, op in item.items()
        if method in METHODS
    ]
    assert len(operation_ids) == len(set(operation_ids))
    for path, item in document["paths"].items():
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", path)), path
        for method, op in item.items():
            if method not in METHODS:
                continue
            open_route = op.get("security") == []
            assert open_route == (path == "/openapi.json"), (method, path)
            assert open_route or "401" in op["responses"], (method, path)
    # Python's `\Z` has no meaning in JSON Schema's regular expressions.
    assert "\\Z" not in res.body.decode()


# --- schemathesis ---------------------------------------------------------------------------------
# Loaded from the same data the server serves (a test above checks they are equal), not through
# `schemathesis.pytest.from_fixture`: that loader fails on pytest 9 (it sets `node._nodeid`).
schema = schemathesis.openapi.from_dict(openapi_document())


def test_the_server_serves_this_document(admin_server: SluiceServer) -> None:
    served = admin_server.request("GET", API + "/openapi.json").json()
    assert served == msgspec.json.decode(msgspec.json.encode(openapi_document()))


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_answers_as_documented(
    case: schemathesis.Case, admin_server: SluiceServer, token: str
) -> None:
    response = case.call_and_validate(
        base_url=f"{admin_server.base_url}{API}",
        headers={"Authorization": f"Bearer {token}"},
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
        ],
        timeout=30,
    )
    # Schemathesis leaves the token out of some requests on purpose (to see them refused); the
    # others must get through, or the checks above saw nothing but 401s.
    if response.request.headers.get("Authorization") == f"Bearer {token}":
        assert response.status_code != 401, response.text
