"""Segment's destinations delivered by Sluice's worker: a real `sluice serve` whose data dir holds
the installed bridge, a `segment:<slug>` destination in its workspace, and the local recording
server standing in for the vendor's API (`delivery.base_url`).

What is checked is what a user sees: the request Segment's code makes arrives, an event the API
refuses is parked with Segment's reason and the real request (credentials redacted), a failing
API puts events in the retry set, and a configuration Segment's definition would refuse is
refused at compile time naming the field.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path
from typing import Any

import pytest

from delivery.delivery_kit import add_destination, send, sluice, status, trace, track
from recorder import Recorder, Reply
from server import SluiceServer, StartServer, seed_sources, wait_for
from sluice.bridge import location
from sluice.delivery.config import DestinationConfigError, compile_destination
from sluice.destinations.base import Mapped
from sluice.ui.preview import preview

AMPLITUDE = {"apiKey": "amp-key-123456", "secretKey": "amp-secret-654321"}


@pytest.fixture
def bridged_server(
    start_server: StartServer, bridge_data_dir: Path, tmp_path: Path
) -> SluiceServer:
    """A server whose data dir has the installed bridge (linked from the test cache)."""
    data_dir = tmp_path / "data"
    seed_sources(data_dir)
    (data_dir / "bridge").symlink_to(bridge_data_dir / "bridge")
    return start_server({"SLUICE_WORKERS": "1"}, data_dir=data_dir)


@pytest.fixture
def use_bridge(bridge_data_dir: Path) -> Any:
    location.use_data_dir(bridge_data_dir)
    yield
    location.use_data_dir(Path("sluice-data"))


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def amplitude(recorder: Recorder, **extra: Any) -> dict[str, Any]:
    return {
        "id": "amp",
        "type": "segment:amplitude",
        "sources": ["web"],
        "settings": AMPLITUDE,
        "delivery": {"base_url": recorder.base_url, "retry_window_s": 3600},
        **extra,
    }


def test_segments_code_delivers_through_sluices_worker(
    bridged_server: SluiceServer, recorder: Recorder
) -> None:
    add_destination(bridged_server, amplitude(recorder))
    send(bridged_server, track("m-1", event="Signed Up", anonymousId="anon-1"))
    wait_for(lambda: recorder.requests, timeout=30, what="Amplitude's request")
    (request,) = recorder.requests
    assert (request.method, request.path) == ("POST", "/2/httpapi")
    assert request.headers["user-agent"] == "Segment (Actions)"
    body = request.json()
    assert body["api_key"] == AMPLITUDE["apiKey"]
    (event,) = body["events"]
    assert (event["event_type"], event["user_id"], event["device_id"]) == (
        "Signed Up", "user-1", "anon-1"
    )  # fmt: skip
    assert event["event_properties"] == {"revenue": 12.5}

    def delivered() -> int:
        status = json.loads(sluice(bridged_server, "status", "--json"))
        return int(status["destinations"]["amp"]["delivered"])

    wait_for(lambda: delivered() == 1, 10, what="the delivery counted")

    # The sidecar is reported: `sluice status` and `/readyz` (a check of its own, here only).
    def sidecars() -> dict[str, Any]:
        return dict(json.loads(sluice(bridged_server, "status", "--json"))["bridge"])

    (sidecar,) = wait_for(lambda: list(sidecars().values()), 20, what="the sidecar's report")
    assert sidecar["healthy"] and sidecar["node_pid"] and sidecar["restarts"] == 0
    ready = bridged_server.request("GET", "/readyz").json()
    assert ready["checks"]["bridge"]["ok"], ready
    metrics = bridged_server.request("GET", "/metrics").body.decode()
    up = f'sluice_bridge_sidecar_up{{host="{socket.gethostname()}",pid="'
    assert any(line.startswith(up) and line.endswith(" 1.0") for line in metrics.splitlines())
    assert "bridge sidecar of worker" in sluice(bridged_server, "status")

    # Node killed: the next execute starts it again and the event is delivered (at least once).
    os.kill(sidecar["node_pid"], signal.SIGKILL)
    send(bridged_server, track("m-2", event="After The Crash"))

    def crash_event_arrived() -> bool:
        return any(r.json()["events"][0]["event_type"] == "After The Crash"
                   for r in recorder.requests)  # fmt: skip

    wait_for(crash_event_arrived, 30, what="delivery after the crash")
    wait_for(lambda: delivered() == 2, 10, what="the second delivery counted")
    wait_for(lambda: next(iter(sidecars().values()))["restarts"] >= 1, 20, what="a restart")


def test_a_refused_event_is_parked_with_segments_reason_and_the_real_request(
    bridged_server: SluiceServer, recorder: Recorder
) -> None:
    recorder.respond_with(Reply(400, {"code": 400, "error": "Invalid field values"}))
    add_destination(bridged_server, amplitude(recorder))
    send(bridged_server, track("m-400", event="Bad One"))
    parked = wait_for(lambda: json_lines(sluice(bridged_server, "parked", "list", "--json")), 30)
    (entry,) = parked
    assert entry["messageId"] == "m-400" and "400" in entry["reason"]
    assert entry["request"]["url"] == f"{recorder.base_url}/2/httpapi"
    kept = json.dumps(entry)
    assert AMPLITUDE["apiKey"] not in kept and AMPLITUDE["secretKey"] not in kept


def test_a_failing_api_puts_events_in_the_retry_set(
    bridged_server: SluiceServer, recorder: Recorder
) -> None:
    recorder.respond_with(Reply(503, {"code": 503}))
    add_destination(bridged_server, amplitude(recorder))
    send(bridged_server, track("m-503"))
    rows = wait_for(lambda: json_lines(sluice(bridged_server, "retrying", "list", "--json")), 30)
    assert rows[0]["messageId"] == "m-503" and "503" in rows[0]["lastError"]
    recorder.respond_with(Reply(200, {"code": 200}))
    sluice(bridged_server, "retrying", "retry", "--destination", "amp")
    wait_for(lambda: not json_lines(sluice(bridged_server, "retrying", "list", "--json")), 30)


# --- what compiling refuses -------------------------------------------------------------------
@pytest.mark.usefixtures("use_bridge")
@pytest.mark.parametrize(
    ("doc", "path", "words"),
    [
        ({"type": "segment:kafka"}, "type", "cannot run in Sluice"),
        ({"type": "segment:no-such-thing"}, "type", "no Segment destination"),
        ({"type": "segment:amplitude", "settings": {}}, "settings.apiKey", "needs the setting"),
        ({"type": "segment:amplitude", "settings": {**AMPLITUDE, "apikey": "x"}},
         "settings.apikey", "has no setting"),
        ({"type": "segment:amplitude", "settings": {**AMPLITUDE, "endpoint": "mars"}},
         "settings.endpoint", "must be one of north_america, europe"),
        ({"type": "segment:amplitude", "settings": AMPLITUDE,
          "mappings": [{"action": "logEventV2", "trigger": 'type = "track"',
                        "mapping": {"event_typo": {"@path": "$.event"}}}]},
         "mappings[0].mapping", "has no field 'event_typo'"),
        ({"type": "webhook", "settings": {"urls": ["http://x"]},
          "delivery": {"base_url": "http://y"}}, "delivery.base_url", "settings.endpoint"),
    ],
    ids=["unsupported", "unknown", "required", "unknown-setting", "choice", "mapping-field",
         "base-url-native"],
)  # fmt: skip
def test_what_segment_would_refuse_is_refused_naming_the_field(
    doc: dict[str, Any], path: str, words: str
) -> None:
    with pytest.raises(DestinationConfigError) as caught:
        compile_destination({"id": "d", **doc})
    assert caught.value.path == path and words in caught.value.message, caught.value


@pytest.mark.usefixtures("use_bridge")
def test_segment_names_resolve_and_presets_apply() -> None:
    config = compile_destination({"id": "d", "type": "segment:amplitude", "settings": AMPLITUDE})
    assert config.destination.id == "segment:amplitude"
    assert {m.name for m in config.mappings} >= {"Track Calls", "Page Calls"}
    # A name Segment gives a destination Sluice has natively is the native one (native wins).
    for name in ("actions-amplitude", "Actions Amplitude", "amplitude (actions)"):
        native = compile_destination({"id": "d", "type": name, "settings": AMPLITUDE})
        assert native.destination.id == "amplitude", name
    settings = {"api_key": "k", "app_id": "a", "endpoint": "https://rest.iad-01.braze.com"}
    braze = compile_destination(
        {"id": "b", "type": "Braze Cloud Mode (Actions)", "settings": settings}
    )
    assert braze.destination.id == "segment:braze"
    assert "Braze Cloud Mode (Actions)" in braze.names


@pytest.mark.usefixtures("use_bridge")
def test_without_node_a_segment_destination_is_refused_naming_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no node here
    with pytest.raises(DestinationConfigError) as caught:
        compile_destination({"id": "d", "type": "segment:amplitude", "settings": AMPLITUDE})
    assert caught.value.path == "type" and "install Node.js 18.17" in caught.value.message


@pytest.mark.usefixtures("use_bridge")
def test_executes_batch_as_segment_does() -> None:
    """performBatch only where the mapping turns `enable_batching` on, by its `batch_size`
    within the field's maximum; one event per execute otherwise."""
    settings = {"projectToken": "t", "apiSecret": "s"}
    trigger = 'type = "track"'

    def subscription_sizes(mapping: dict[str, Any]) -> int:
        subscription = {"action": "trackEvent", "trigger": trigger, "mapping": mapping}
        doc = {"id": "mp", "type": "segment:mixpanel", "settings": settings,
               "mappings": [subscription]}  # fmt: skip
        destination = compile_destination(doc).destination
        return int(destination.subscriptions[0].batch_size)  # type: ignore[attr-defined]

    assert subscription_sizes({"event": {"@path": "$.event"}}) == 1
    assert subscription_sizes({"event": {"@path": "$.event"}, "enable_batching": True}) == 1000
    assert subscription_sizes({"enable_batching": True, "batch_size": 250}) == 250
    assert subscription_sizes({"enable_batching": True, "batch_size": 99_999}) == 2000
    config = compile_destination({"id": "mp", "type": "segment:mixpanel", "settings": settings})
    mapped = [
        Mapped(f"m{i}", {"subscription": 0, "event": {"type": "track", "messageId": f"m{i}"}}, {})
        for i in range(5)
    ]
    requests = config.destination.build("trackEvent", mapped)
    expected = 1 if config.destination.subscriptions[0].batch_size > 1 else 5  # type: ignore[attr-defined]
    assert len(requests) == expected


def test_refreshed_oauth_tokens_are_kept_and_outlive_the_worker(
    bridged_server: SluiceServer, recorder: Recorder
) -> None:
    """m3ter (OAuth): the old token gets 401, Segment's loop refreshes it, the retry succeeds;
    the new token is kept in the store, so a restarted server sends it at once."""

    def answer(request: Any) -> Reply:
        if request.path.endswith("/oauth/token"):
            return Reply(200, {"access_token": "fresh-token-1", "expires_in": 3600})
        if request.headers.get("authorization") == "Bearer fresh-token-1":
            return Reply(200, {"result": "accepted"})
        return Reply(401, {"message": "expired"})

    recorder.respond_with(answer)
    doc = {
        "id": "usage", "type": "segment:m3ter", "sources": ["web"],
        "settings": {"access_key_id": "key-1", "api_secret": "secret-1", "org_id": "org-1",
                     "oauth": {"access_token": "stale-token", "refresh_token": "r-1"}},
        "delivery": {"base_url": recorder.base_url},
    }  # fmt: skip
    add_destination(bridged_server, doc)
    usage = {"uid": "u-1", "meter": "api_calls", "account": "acct-1"}
    send(bridged_server, track("u-1", event="Usage", properties=usage))
    wait_for(lambda: any(r.headers.get("authorization") == "Bearer fresh-token-1"
                         for r in recorder.requests), 30, what="the retried request")  # fmt: skip
    wait_for(lambda: bridged_server.store.oauth_tokens("usage"), 10, what="the kept token")
    assert bridged_server.store.oauth_tokens("usage") == ("fresh-token-1", None)

    bridged_server.stop()
    recorder.requests.clear()
    bridged_server.start()
    send(bridged_server, track("u-2", event="Usage", properties=usage))
    wait_for(lambda: recorder.requests, 30, what="the next request")
    first = recorder.requests[0]
    assert first.headers.get("authorization") == "Bearer fresh-token-1", first
    assert "stale-token" not in bridged_server.log() and "fresh-token-1" not in bridged_server.log()


def test_segments_code_cannot_reach_a_denied_network(
    bridged_server: SluiceServer, recorder: Recorder
) -> None:
    """The egress policy applies to requests Segment's code makes: parked, never retried."""
    mapping = {"url": "http://169.254.169.254/latest/meta-data/", "method": "POST",
               "data": {"@path": "$.properties"}}  # fmt: skip
    send_it = {"action": "send", "trigger": 'type = "track"', "mapping": mapping}
    doc = {"id": "hook", "type": "segment:webhook", "sources": ["web"], "mappings": [send_it]}
    add_destination(bridged_server, doc)
    send(bridged_server, track("m-meta"))
    (entry,) = wait_for(lambda: json_lines(sluice(bridged_server, "parked", "list", "--json")), 30)
    assert "egress_denied" in entry["reason"] and entry["messageId"] == "m-meta"
    assert not json_lines(sluice(bridged_server, "retrying", "list", "--json"))


@pytest.mark.usefixtures("use_bridge")
def test_the_preview_shows_segments_requests_and_sends_nothing(recorder: Recorder) -> None:
    doc = amplitude(recorder)
    event = track("m-preview", event="Previewed", anonymousId="anon-9")
    shown = preview(doc, event)
    assert shown["ok"] and shown["passes"], shown
    (request,) = shown["requests"]
    assert (request["method"], request["url"]) == ("POST", f"{recorder.base_url}/2/httpapi")
    assert request["body"]["api_key"] != AMPLITUDE["apiKey"]  # redacted, as everywhere
    assert request["body"]["events"][0]["event_type"] == "Previewed"
    assert request["messageIds"] == ["m-preview"]
    assert recorder.requests == []  # captured, never sent
    # An event Segment's code refuses (no event name for event_type): no request, the reason.
    refused = preview(doc, {**event, "event": None})
    assert refused["ok"] and refused["requests"] == [], refused
    assert any("Segment's code refused it" in p for p in refused["problems"]), refused


# --- failures look as a native destination's ------------------------------------------------
FAILURES = {
    # mode: (what the API does, where the event ends up, words in its error)
    "rejecting": (Reply(400, {"code": 400, "error": "Invalid"}), "parked", "400"),
    "failing": (Reply(503, {"code": 503}), "retrying", "503"),
    "timing-out": (Reply(200, {"code": 200}, delay_s=4), "retrying", "timeout"),
    "down": (None, "retrying", "connect"),
}


@pytest.mark.parametrize("mode", list(FAILURES))
def test_a_failure_shows_as_it_does_for_the_native_destination(
    bridged_server: SluiceServer, recorder: Recorder, mode: str
) -> None:
    """Native Amplitude and Segment's Amplitude side by side against the same failing API:
    the event lands in the same place (parked or retrying), with the same kind of error, in
    `trace` and in `sluice status` alike."""
    reply, where, words = FAILURES[mode]
    delivery = {"retry_window_s": 3600, "timeout_s": 1}
    add_destination(bridged_server, amplitude(recorder, delivery={**delivery,
                    "base_url": recorder.base_url}))  # fmt: skip
    native = {"id": "native", "type": "amplitude", "sources": ["web"], "delivery": delivery,
              "settings": {"api_key": "amp-key-123456", "endpoint": recorder.base_url}}  # fmt: skip
    add_destination(bridged_server, native)
    if reply is None:
        recorder.stop()
    else:
        recorder.respond_with(reply)
    send(bridged_server, track(f"m-{mode}", event="Failing"))
    command = "parked" if where == "parked" else "retrying"

    def listed() -> dict[str, dict[str, Any]]:
        rows = json_lines(sluice(bridged_server, command, "list", "--json"))
        return {row["destination"]: row for row in rows}

    rows = wait_for(lambda: (r := listed()) and len(r) == 2 and r, 40, what=f"both {command}")
    for dest in ("amp", "native"):
        row = rows[dest]
        error = row["reason"] if where == "parked" else row["lastError"]
        assert row["messageId"] == f"m-{mode}" and words in error.lower(), (dest, row)
        hop = trace(bridged_server, f"m-{mode}")[dest]
        assert hop["status"] == where and words in json.dumps(hop).lower(), (dest, hop)
        counted = status(bridged_server, dest)
        assert counted["parked" if where == "parked" else "retrying"] >= 1, (dest, counted)
