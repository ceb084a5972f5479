"""Segment's own destination code through the sidecar: the requests it makes (answered here by
Python) and the verdicts Sluice draws from what it reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import Request, StubServer, json_answer, run_with_sidecar, track
from sluice.bridge.catalog import Catalog
from sluice.bridge.outcomes import NOT_RETRIED_AFTER_WRITE, outcome_of
from sluice.bridge.results import ExecuteResult
from sluice.bridge.sidecar import Sidecar
from sluice.destinations.base import Verdict

AMPLITUDE_SETTINGS = {"apiKey": "amp-key", "secretKey": "amp-secret", "endpoint": "north_america"}
MIXPANEL_SETTINGS = {"projectToken": "mp-token", "apiSecret": "mp-secret"}


@pytest.fixture(scope="module")
def catalog(bridge_data_dir: Path) -> Catalog:
    return Catalog.for_data_dir(bridge_data_dir)


def preset(catalog: Catalog, slug: str, name: str) -> dict[str, Any]:
    """An automatic preset as the subscription Sluice sends when no mapping is configured."""
    found = next(p for p in catalog.resolve(slug).automatic_presets() if p.name == name)
    return {
        "subscribe": found.subscribe,
        "partnerAction": found.partner_action,
        "mapping": found.mapping,
    }


def amplitude(
    bridge_dir: Path, catalog: Catalog, stub: StubServer, event: Any = None
) -> ExecuteResult:
    subscription = preset(catalog, "actions-amplitude", "Track Calls")

    async def body(sidecar: Sidecar) -> ExecuteResult:
        return await sidecar.execute(
            "amplitude", subscription, AMPLITUDE_SETTINGS, event=event or track()
        )

    return run_with_sidecar(bridge_dir, stub, body)


def test_amplitude_preset_sends_segments_request(bridge_dir: Path, catalog: Catalog) -> None:
    stub = StubServer(lambda r: json_answer(200, {"code": 200, "events_ingested": 1}))
    result = amplitude(bridge_dir, catalog, stub)
    assert (
        outcome_of(result, ["msg-Signed Up"], destination="amplitude").verdict is Verdict.DELIVERED
    )
    (request,) = stub.requests
    assert (request.method, request.url) == ("POST", "https://api2.amplitude.com/2/httpapi")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "Segment (Actions)"
    sent = request.json()
    assert sent["api_key"] == "amp-key"
    (event,) = sent["events"]
    assert event["event_type"] == "Signed Up"
    assert event["user_id"] == "user-1" and event["device_id"] == "anon-1"
    assert event["event_properties"] == {"plan": "pro", "revenue": 12.5}
    assert event["ip"] == "203.0.113.9"
    assert result.exchanges[0].status == 200 and result.exchanges[0].response_body


@pytest.mark.parametrize(
    ("status", "headers", "verdict", "retry_after"),
    [
        (400, {}, Verdict.PARK, None),
        (401, {}, Verdict.PARK, None),
        (429, {"retry-after": "7"}, Verdict.RETRY, 7.0),
        (500, {}, Verdict.RETRY, None),
    ],
    ids=["400-parks", "401-parks", "429-retries-after", "500-retries"],
)
def test_amplitude_error_statuses(
    bridge_dir: Path,
    catalog: Catalog,
    status: int,
    headers: dict[str, str],
    verdict: Verdict,
    retry_after: float | None,
) -> None:
    stub = StubServer(lambda r: json_answer(status, {"code": status, "error": "nope"}, **headers))
    result = amplitude(bridge_dir, catalog, stub)
    assert not result.ok and result.error is not None
    assert result.error.status == status
    outcome = outcome_of(result, ["m1"], destination="amplitude")
    assert outcome.verdict is verdict, outcome
    assert outcome.retry_after_s == retry_after
    assert f"HTTP {status}" in outcome.reason


def test_fetch_timeout_is_a_network_error_and_retries(bridge_dir: Path, catalog: Catalog) -> None:
    def timeout(request: Request) -> Any:
        raise TimeoutError("no answer in 10 s")

    result = amplitude(bridge_dir, catalog, StubServer(timeout))
    assert result.error is not None and result.error.name == "FetchError"
    assert result.error.code == "ETIMEDOUT"
    assert result.exchanges[0].error and result.exchanges[0].status == 0
    outcome = outcome_of(result, ["m1"], destination="amplitude")
    assert outcome.verdict is Verdict.RETRY and "timeout" in outcome.reason


def test_ajv_validation_failure_parks_with_the_validators_message(
    bridge_dir: Path, catalog: Catalog
) -> None:
    stub = StubServer()
    result = amplitude(bridge_dir, catalog, stub, event=track(event=None))
    assert stub.requests == []  # refused before any request
    assert result.error is not None
    outcome = outcome_of(result, ["m1"], destination="amplitude")
    assert outcome.verdict is Verdict.PARK
    assert result.error.name in ("AggregateAjvError", "ValidationError", "PayloadValidationError")
    assert outcome.reason.startswith(result.error.name) and result.error.message in outcome.reason


def mixpanel_batch(
    bridge_dir: Path, catalog: Catalog, stub: StubServer, events: list[dict[str, Any]]
) -> ExecuteResult:
    subscription = preset(catalog, "mixpanel", "Track Calls")

    async def body(sidecar: Sidecar) -> ExecuteResult:
        return await sidecar.execute(
            "mixpanel", subscription, MIXPANEL_SETTINGS, events=events,
            features={"mixpanel-multistatus": True},
        )  # fmt: skip

    return run_with_sidecar(bridge_dir, stub, body)


def test_mixpanel_batch_multistatus_with_mixed_statuses(bridge_dir: Path, catalog: Catalog) -> None:
    events = [track(f"E{i}", messageId=f"m{i}") for i in range(3)]
    failed = {"index": 1, "insert_id": "m1", "field": "properties.time", "message": "too old"}
    stub = StubServer(
        lambda r: json_answer(
            200,
            {
                "code": 400,
                "num_records_imported": 2,
                "status": "Bad Request",
                "failed_records": [failed],
            },
        )
    )
    result = mixpanel_batch(bridge_dir, catalog, stub, events)
    (request,) = stub.requests
    assert request.url == "https://api.mixpanel.com/import?strict=1"
    assert [e["event"] for e in request.json()] == ["E0", "E1", "E2"]
    assert [e["properties"]["$insert_id"] for e in request.json()] == ["m0", "m1", "m2"]
    assert result.multistatus is not None
    assert [s.status for s in result.multistatus] == [200, 400, 200]
    outcome = outcome_of(result, ["m0", "m1", "m2"], destination="mixpanel")
    assert outcome.verdict is Verdict.DELIVERED
    assert list(outcome.failures) == ["m1"]
    assert outcome.failures["m1"].verdict is Verdict.PARK
    assert "too old" in outcome.failures["m1"].reason


def test_mixpanel_batch_invalid_event_is_a_400_entry(bridge_dir: Path, catalog: Catalog) -> None:
    events = [track("Good", messageId="m0"), {**track(messageId="m1"), "event": None}]
    stub = StubServer(lambda r: json_answer(200, {"code": 200, "num_records_imported": 1}))
    result = mixpanel_batch(bridge_dir, catalog, stub, events)
    assert [e["event"] for e in stub.requests[0].json()] == ["Good"]
    outcome = outcome_of(result, ["m0", "m1"], destination="mixpanel")
    assert list(outcome.failures) == ["m1"]
    assert outcome.failures["m1"].verdict is Verdict.PARK
    assert "PAYLOAD_VALIDATION_FAILED" in outcome.failures["m1"].reason


def test_a_typeerror_in_destination_code_parks_as_bridge_error(
    bridge_dir: Path, catalog: Catalog
) -> None:
    # Mixpanel's multistatus handler reads `response.data.code`: a `null` body breaks it.
    stub = StubServer(lambda r: (200, {"content-type": "application/json"}, b"null"))
    result = mixpanel_batch(bridge_dir, catalog, stub, [track("E0", messageId="m0")])
    assert result.error is not None and result.error.name == "TypeError"
    outcome = outcome_of(result, ["m0"], destination="mixpanel")
    assert outcome.verdict is Verdict.PARK
    assert outcome.reason.startswith("bridge error: TypeError: ")


def test_non_get_success_then_failure_parks_unless_idempotent(
    bridge_dir: Path, catalog: Catalog
) -> None:
    """Mixpanel's identify POSTs $identify to /track, then the traits to /engage."""

    def answer(request: Request) -> Any:
        return json_answer(200 if request.url.endswith("/track") else 503, 1)

    stub = StubServer(answer)
    subscription = preset(catalog, "mixpanel", "Identify Calls")
    event = {**track(), "type": "identify", "traits": {"email": "a@example.com", "name": "Ann"}}

    async def body(sidecar: Sidecar) -> ExecuteResult:
        return await sidecar.execute("mixpanel", subscription, MIXPANEL_SETTINGS, event=event)

    result = run_with_sidecar(bridge_dir, stub, body)
    assert [(r.method, r.url.rsplit("/", 1)[-1]) for r in stub.requests] == [
        ("POST", "track"),
        ("POST", "engage"),
    ]
    assert result.non_get_succeeded
    parked = outcome_of(result, ["m1"], destination="mixpanel", idempotent=False)
    assert parked.verdict is Verdict.PARK and parked.reason.endswith(NOT_RETRIED_AFTER_WRITE)
    # Mixpanel deduplicates on $insert_id: on the allow-list, the whole perform is retried.
    assert outcome_of(result, ["m1"], destination="mixpanel").verdict is Verdict.RETRY


WEBHOOK = {
    "subscribe": 'type = "track"',
    "partnerAction": "send",
    "mapping": {
        "url": "https://hooks.example.com/in",
        "method": "PUT",
        "headers": {"x-token": "t"},
        "data": {"name": {"@path": "$.event"}, "props": {"@path": "$.properties"}},
    },
}


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(200, Verdict.DELIVERED), (404, Verdict.PARK), (503, Verdict.RETRY)],
    ids=["200", "404", "503"],
)
def test_webhook(bridge_dir: Path, status: int, verdict: Verdict) -> None:
    stub = StubServer(lambda r: (status, {"content-type": "text/plain"}, b"ok"))

    async def body(sidecar: Sidecar) -> ExecuteResult:
        return await sidecar.execute("webhook", WEBHOOK, {}, event=track())

    result = run_with_sidecar(bridge_dir, stub, body)
    (request,) = stub.requests
    assert (request.method, request.url) == ("PUT", "https://hooks.example.com/in")
    assert request.headers["x-token"] == "t"
    assert json.loads(request.body) == {
        "name": "Signed Up",
        "props": {"plan": "pro", "revenue": 12.5},
    }
    assert outcome_of(result, ["m1"], destination="webhook").verdict is verdict


def test_oauth_401_refreshes_the_token_and_reports_it(bridge_dir: Path, catalog: Catalog) -> None:
    """m3ter: a 401 makes Segment's loop refresh the token (client credentials), tell Python,
    and run the perform again with the new token."""

    def answer(request: Request) -> Any:
        if request.url.endswith("/oauth/token"):
            return json_answer(200, {"access_token": "new-token"})
        if request.headers.get("authorization") == "Bearer new-token":
            return json_answer(200, {"result": "accepted"})
        return json_answer(401, {"message": "expired"})

    stub = StubServer(answer)
    refreshed: list[tuple[str, str]] = []

    async def persist(exec_id: str, tokens: Any) -> None:
        refreshed.append((exec_id, tokens.access_token))

    subscription = preset(catalog, "m3ter", "Submit usage data to m3ter")
    settings = {
        "access_key_id": "key", "api_secret": "secret", "org_id": "org-1",
        "oauth": {"access_token": "old-token", "refresh_token": "r"},
    }  # fmt: skip
    event = track("Usage", properties={"uid": "u-1", "meter": "api_calls", "account": "acct-1"})

    async def body(sidecar: Sidecar) -> ExecuteResult:
        return await sidecar.execute(
            "m3ter", subscription, settings, event=event, on_token_refresh=persist
        )

    result = run_with_sidecar(bridge_dir, stub, body)
    calls = [
        (r.url.rsplit("/", 1)[-1], r.headers.get("authorization", "")[:12]) for r in stub.requests
    ]
    assert calls[0] == ("measurements", "Bearer old-t")
    assert ("token", "Basic a2V5On") in calls  # Basic base64("key:secret")
    assert calls[-1] == ("measurements", "Bearer new-t")
    assert [t.access_token for t in result.token_refreshes] == ["new-token"]
    assert refreshed and refreshed[0][1] == "new-token"
    assert outcome_of(result, ["m1"], destination="m3ter").verdict is Verdict.DELIVERED
