"""The Profile API's contract beyond its answers: its own OpenAPI document (served, in step with
the app's constants, and the running server's answers conform to it) and Segment's rate limit
(429 `rate_limit_error` with `Retry-After`, per token, shared by every HTTP worker)."""

from __future__ import annotations

import base64
import copy
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from prometheus_client.parser import text_string_to_metric_families
from schemathesis import checks

from server import SLUICE, SluiceServer, clean_env, wait_for
from sluice.config import ConfigError, load_settings
from sluice.profileapi.app import CLASSES, LIMITS, RESOURCES
from sluice.profileapi.openapi import openapi_document

USER = "jane-42"
BASE = "/v1/spaces/default/collections/users/profiles"


def sluice(data_dir: Path, *args: str) -> str:
    done = subprocess.run(
        [*SLUICE, *args, "--data-dir", str(data_dir)],
        env=clean_env(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout


def auth(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{token}:".encode()).decode()}


def with_profile(server: SluiceServer) -> str:
    """A Profile API token, once the worker resolved a user (an identify and a track)."""
    (token,) = sluice(server.data_dir, "token", "create", "--scope", "profile").split()
    batch = [
        {"type": "identify", "messageId": "c-1", "userId": USER, "anonymousId": "anon-c",
         "traits": {"email": "jane@example.com", "plan": "pro"}},
        {"type": "track", "messageId": "c-2", "userId": USER, "event": "Order Completed",
         "properties": {"total": 3}},
        {"type": "group", "messageId": "c-3", "userId": USER, "groupId": "acme",
         "traits": {"name": "Acme"}},
    ]  # fmt: skip
    assert server.post("/v1/batch", {"batch": batch}).status == 200

    def resolved() -> bool:
        res = server.request("GET", f"{BASE}/user_id:{USER}/events", headers=auth(token))
        return res.status == 200 and len(res.json()["data"]) == 3

    wait_for(resolved, timeout=60, interval=0.3, what="the identity consumer")
    return token


@pytest.fixture(scope="module")
def open_server(start_module_server: Callable[..., SluiceServer]) -> tuple[SluiceServer, str]:
    """Two HTTP workers, no rate limit: schemathesis sends many requests."""
    server = start_module_server({"SLUICE_WORKERS": "2", "SLUICE_PROFILE_API_RATE_LIMIT": "0"})
    return server, with_profile(server)


# --- the document ----------------------------------------------------------------------------
def test_the_document_describes_every_resource_with_the_apps_limits() -> None:
    document = openapi_document()
    prefix = "/v1/spaces/{space}/collections/{collection}/profiles/{identifier}/"
    described = {p.removeprefix(prefix) for p in document["paths"] if p.startswith(prefix)}
    assert described == set(RESOURCES)
    for resource in RESOURCES:
        operation = document["paths"][prefix + resource]["get"]
        params = {p["name"]: p["schema"] for p in operation.get("parameters", [])}
        if resource in LIMITS:
            default, maximum = LIMITS[resource]
            assert (params["limit"]["default"], params["limit"]["maximum"]) == (default, maximum)
        else:
            assert "limit" not in params
        assert {"401", "404", "429"} <= set(operation["responses"]), resource
    traits = document["paths"][prefix + "traits"]["get"]["parameters"]
    assert next(p for p in traits if p["name"] == "class")["schema"]["enum"] == list(CLASSES)
    assert document["components"]["securitySchemes"]["basicAuth"]["scheme"] == "basic"


def test_the_server_serves_the_document_without_a_token(open_server: Any) -> None:
    server, _ = open_server
    res = server.request("GET", "/v1/spaces/openapi.json")
    assert res.status == 200
    assert res.headers["content-type"] == "application/json"
    assert res.json() == msgspec.json.decode(msgspec.json.encode(openapi_document()))
    # Every other path under /v1/spaces/ still needs a token.
    assert server.request("GET", f"{BASE}/user_id:{USER}/traits").status == 401


# The served document, with examples that name the profile the fixture makes, so that some of
# schemathesis's requests find it (200s) among the generated ones (mostly 400s and 404s).
_DOCUMENT = copy.deepcopy(openapi_document())
for _item in _DOCUMENT["paths"].values():
    for _param in _item.get("parameters", []):
        _param["example"] = {"space": "default", "collection": "users",
                             "identifier": f"user_id:{USER}"}[_param["name"]]  # fmt: skip
schema = schemathesis.openapi.from_dict(_DOCUMENT)


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)  # fmt: skip
def test_the_api_answers_as_documented(case: schemathesis.Case, open_server: Any) -> None:
    server, token = open_server
    response = case.call_and_validate(
        base_url=server.base_url,
        headers=auth(token),
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
        ],
        timeout=30,
    )
    if response.request.headers.get("Authorization") == auth(token)["Authorization"]:
        assert response.status_code != 401, response.text


def test_the_documented_examples_find_the_profile(open_server: Any) -> None:
    server, token = open_server
    for resource in RESOURCES:
        res = server.request("GET", f"{BASE}/user_id:{USER}/{resource}", headers=auth(token))
        assert res.status == 200, (resource, res.body)


# --- the rate limit --------------------------------------------------------------------------
def test_a_token_over_its_rate_limit_gets_segments_429(
    start_server: Callable[..., SluiceServer],
) -> None:
    # 0.01 requests/s: a bucket of one request that refills in 100 s, so the second request is
    # refused however slow this machine is. Two workers share the bucket: whichever answers.
    server = start_server({"SLUICE_WORKERS": "2", "SLUICE_PROFILE_API_RATE_LIMIT": "0.01"})
    (first,) = sluice(server.data_dir, "token", "create", "--scope", "profile").split()
    (second,) = sluice(server.data_dir, "token", "create", "--scope", "profile").split()
    path = f"{BASE}/user_id:{USER}/traits"
    assert server.request("GET", path, headers=auth(first)).status == 404  # counted: a request
    for _ in range(3):  # whichever worker answers
        res = server.request("GET", path, headers=auth(first))
        assert res.status == 429, res.body
        assert res.json() == {
            "error": {
                "code": "rate_limit_error",
                "message": "Too many requests: this token may make 0.01 requests a second"
                " (SLUICE_PROFILE_API_RATE_LIMIT)",
            }
        }
        assert 1 <= int(res.headers["retry-after"]) <= 100
        assert res.headers["request-id"]
    # Per token: another token has its own budget; no token at all is still a 401, not a 429.
    assert server.request("GET", path, headers=auth(second)).status == 404
    assert server.request("GET", path).status == 401
    assert server.request("GET", path, headers=auth("sluice_not-a-token")).status == 401
    # Refusals are logged, once per token and minute in each process (not one line each).
    logged = server.log().count("is over its rate limit of 0.01 requests/s")
    assert 1 <= logged <= 2, server.log()
    # ... and each is counted in /metrics, whichever process answered, by the token's id.
    res = server.request("GET", "/metrics")
    assert res.status == 200, res.body
    refused = {
        s.labels["token"]: s.value
        for family in text_string_to_metric_families(res.body.decode())
        for s in family.samples
        if s.name == "sluice_profile_api_rate_limited_total"
    }
    assert list(refused.values()) == [3.0], refused
    (token_id,) = refused
    assert token_id.startswith("tok_") and token_id in server.log()  # the id, not the secret
    assert first not in res.body.decode()


@pytest.mark.parametrize("raw", ["-1", "nan", "inf", "fast"])
def test_a_wrong_rate_limit_setting_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="SLUICE_PROFILE_API_RATE_LIMIT"):
        load_settings({"SLUICE_PROFILE_API_RATE_LIMIT": raw})


def test_the_rate_limit_defaults_to_segments_100_a_second() -> None:
    assert load_settings({}).profile_api_rate_limit == 100.0
    assert load_settings({"SLUICE_PROFILE_API_RATE_LIMIT": "0"}).profile_api_rate_limit == 0
