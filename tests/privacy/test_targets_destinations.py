"""Deletion requests to Amplitude, Mixpanel and PostHog, received by a local recording server.

Each vendor's documented request (method, path, query, headers, body) is asserted exactly; a
vendor's failure gives RETRYING or FAILED with the status and the vendor's words, never a
credential.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from recorder import Recorder, Reply
from sluice.config import Settings
from sluice.privacy.targets.base import Subject, Target, TargetOutcome
from sluice.privacy.targets.external import external_targets
from sluice.workspace.model import Destination, Warehouse, Workspace

ALICE = Subject("USER_ID", ("u-alice-7f3a",))
AMPLITUDE = {"api_key": "amp-key-1", "secret_key": "amp-secret-2"}
MIXPANEL = {"project_token": "mp-token-3", "gdpr_api_token": "mp-oauth-4"}
POSTHOG = {"api_key": "phc_5", "personal_api_key": "phx_personal_6", "project_id": "42"}
SECRETS = ["amp-key-1", "amp-secret-2", "mp-token-3", "mp-oauth-4", "phc_5", "phx_personal_6"]


def target(type_: str, settings: dict[str, Any], **extra: Any) -> Target:
    """The destination's target, as the runner gets it from the workspace."""
    workspace = Workspace(
        destinations=[Destination(id="d1", type=type_, settings=settings, **extra)],
        # A lake that was never loaded: the one warehouse, so the destination comes second.
        warehouses=[Warehouse(id="lake", type="lake")],
    )
    targets = external_targets(workspace, Settings(), store=None)
    assert [t.name for t in targets] == ["lake:lake", "destination:d1"]
    return targets[1]


def run(t: Target, subject: Subject = ALICE) -> TargetOutcome:
    outcome: TargetOutcome = asyncio.run(t.delete("reg-9", subject))
    return outcome


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_amplitude_user_privacy_api(recorder: Recorder) -> None:
    recorder.respond_with(Reply(200, {"day": "2026-12-20", "status": "staging"}))
    outcome = run(target("amplitude", {**AMPLITUDE, "endpoint": recorder.base_url}))
    assert outcome.status == "FINISHED", outcome
    assert outcome.target == "destination:d1"
    (req,) = recorder.requests
    assert (req.method, req.path, req.query) == ("POST", "/api/2/deletions/users", {})
    assert req.headers["authorization"] == basic("amp-key-1", "amp-secret-2")
    assert req.headers["content-type"] == "application/json"
    assert req.json() == {
        "user_ids": ["u-alice-7f3a"],
        "requester": "Sluice regulation reg-9",
        "ignore_invalid_id": True,
    }


def test_amplitude_sends_100_ids_a_request_and_default_hosts() -> None:
    from sluice.destinations.amplitude import Amplitude

    dest = Amplitude(Amplitude.parse_settings({**AMPLITUDE, "region": "europe"}))
    ids = [f"u{i}" for i in range(250)]
    requests = dest.deletion_requests("r", ids)
    assert [len(json.loads(r.body)["user_ids"]) for r in requests] == [100, 100, 50]
    assert requests[0].url == "https://analytics.eu.amplitude.com/api/2/deletions/users"
    us = Amplitude(Amplitude.parse_settings(AMPLITUDE)).deletion_requests("r", ids[:1])
    assert us[0].url == "https://amplitude.com/api/2/deletions/users"


def test_mixpanel_gdpr_api(recorder: Recorder) -> None:
    recorder.respond_with(Reply(200, {"status": "ok", "results": {"task_id": "t1"}}))
    subject = Subject("ANONYMOUS_ID", ("anon-1", "anon-2"))
    outcome = run(target("mixpanel", {**MIXPANEL, "endpoint": recorder.base_url}), subject)
    assert outcome.status == "FINISHED", outcome
    (req,) = recorder.requests
    assert (req.method, req.path) == ("POST", "/api/app/data-deletions/v3.0/")
    assert req.query == {"token": ["mp-token-3"]}
    assert req.headers["authorization"] == "Bearer mp-oauth-4"
    assert req.headers["content-type"] == "application/json"
    assert req.json() == {"distinct_ids": ["anon-1", "anon-2"], "compliance_type": "GDPR"}


def test_mixpanel_region_hosts() -> None:
    from sluice.destinations.mixpanel import Mixpanel

    eu = Mixpanel(Mixpanel.parse_settings({**MIXPANEL, "api_region": "EU 🇪🇺"}))
    (req,) = eu.deletion_requests(["a"])
    assert req.url == "https://eu.mixpanel.com/api/app/data-deletions/v3.0/?token=mp-token-3"


def test_posthog_persons_bulk_delete(recorder: Recorder) -> None:
    recorder.respond_with(Reply(202, b""))
    outcome = run(target("posthog", {**POSTHOG, "endpoint": recorder.base_url}))
    assert outcome.status == "FINISHED", outcome
    (req,) = recorder.requests
    assert (req.method, req.path, req.query) == (
        "POST",
        "/api/projects/42/persons/bulk_delete/",
        {},
    )
    assert req.headers["authorization"] == "Bearer phx_personal_6"
    assert req.headers["content-type"] == "application/json"
    assert req.json() == {"distinct_ids": ["u-alice-7f3a"], "delete_events": True}


def test_posthog_cloud_app_host() -> None:
    from sluice.destinations.posthog import PostHog

    eu = PostHog(PostHog.parse_settings({**POSTHOG, "endpoint": "https://eu.i.posthog.com"}))
    (req,) = eu.deletion_requests(["a"])
    assert req.url == "https://eu.posthog.com/api/projects/42/persons/bulk_delete/"


VENDORS = [
    ("amplitude", AMPLITUDE, "Amplitude"),
    ("mixpanel", MIXPANEL, "Mixpanel"),
    ("posthog", POSTHOG, "PostHog"),
]


@pytest.mark.parametrize(("type_", "settings", "vendor"), VENDORS, ids=[v[0] for v in VENDORS])
def test_a_500_is_retrying_with_the_status_and_no_secret(
    recorder: Recorder, type_: str, settings: dict[str, Any], vendor: str
) -> None:
    # A vendor that echoes the request's credentials in its error must not leak them.
    echoed = " ".join([*SECRETS, basic("amp-key-1", "amp-secret-2")])
    recorder.respond_with(Reply(500, f"internal error for {echoed}"))
    outcome = run(target(type_, {**settings, "endpoint": recorder.base_url}))
    assert outcome.status == "RETRYING"
    assert outcome.detail.startswith(f"destination d1: {vendor} answered HTTP 500: internal error")
    for secret in [s for s in SECRETS if s in settings.values()]:
        assert secret not in outcome.detail
    if type_ == "amplitude":  # HTTP Basic's header, as an API may echo it
        assert base64.b64encode(b"amp-key-1:amp-secret-2").decode() not in outcome.detail


@pytest.mark.parametrize(("type_", "settings", "vendor"), VENDORS, ids=[v[0] for v in VENDORS])
def test_a_401_is_failed(
    recorder: Recorder, type_: str, settings: dict[str, Any], vendor: str
) -> None:
    recorder.respond_with(Reply(401, {"error": "invalid credentials"}))
    outcome = run(target(type_, {**settings, "endpoint": recorder.base_url}))
    assert outcome.status == "FAILED"
    assert "answered HTTP 401" in outcome.detail and "invalid credentials" in outcome.detail


def test_a_vendor_that_is_down_is_retrying(recorder: Recorder) -> None:
    url = recorder.base_url
    recorder.stop()
    outcome = run(target("posthog", {**POSTHOG, "endpoint": url}))
    assert outcome.status == "RETRYING"
    assert "PostHog answered nothing" in outcome.detail


@pytest.mark.parametrize(
    ("type_", "settings", "needs"),
    [
        ("amplitude", {"api_key": "key-1"}, "settings.secret_key"),
        ("mixpanel", {"project_token": "token-1"}, "settings.gdpr_api_token"),
        ("posthog", {"api_key": "phc_1", "project_id": "1"}, "settings.personal_api_key"),
        ("posthog", {"api_key": "phc_1", "personal_api_key": "phx_1"}, "settings.project_id"),
    ],
    ids=["amplitude", "mixpanel", "posthog-key", "posthog-project"],
)
def test_missing_credentials_fail_naming_the_setting(
    recorder: Recorder, type_: str, settings: dict[str, Any], needs: str
) -> None:
    outcome = run(target(type_, {**settings, "endpoint": recorder.base_url}))
    assert outcome.status == "FAILED"
    assert needs in outcome.detail
    assert recorder.requests == []


def test_other_destinations_are_not_supported_with_a_sentence(recorder: Recorder) -> None:
    hook = run(target("webhook", {"urls": [recorder.base_url]}))
    assert hook.status == "NOT_SUPPORTED"
    assert "has no deletion API Sluice can call" in hook.detail
    device = run(target("webhook", {"urls": [recorder.base_url]}, mode="device"))
    assert device.status == "NOT_SUPPORTED" and "device mode" in device.detail
    amplitude_anon = run(
        target("amplitude", {**AMPLITUDE, "endpoint": recorder.base_url}),
        Subject("ANONYMOUS_ID", ("anon-1",)),
    )
    assert amplitude_anon.status == "NOT_SUPPORTED"
    assert recorder.requests == []


def test_a_destination_whose_settings_are_wrong_fails_naming_it() -> None:
    outcome = run(target("amplitude", {"api_key": 3}))
    assert outcome.status == "FAILED"
    assert "api_key" in outcome.detail


def test_egress_policy_applies(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    from sluice.delivery import egress

    monkeypatch.setenv("SLUICE_EGRESS_DENY", "127.0.0.0/8")
    egress.policy.cache_clear()
    try:
        outcome = run(target("posthog", {**POSTHOG, "endpoint": recorder.base_url}))
    finally:
        monkeypatch.delenv("SLUICE_EGRESS_DENY")
        egress.policy.cache_clear()
    assert outcome.status == "FAILED"
    assert "egress_denied" in outcome.detail
    assert recorder.requests == []
