"""Tracking plans enforced at ingest (issue 22, scope 1 and 2): a real `sluice serve` whose
workspace file gives three sources one plan with different Protocols settings. Each test posts
over loopback as Segment's libraries do and reads the log, the rejections and the counters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from server import PROBE_KEY, CounterDelta, SluiceServer, StartServer, wait_for

WEB, APP, LOOSE = "wk_web_protocols_01", "wk_app_protocols_01", "wk_loose_protocols_01"

ORDER_V1 = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "properties": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "revenue": {"type": "number"},
                           "coupon_count": {"type": "integer"}},
            "required": ["order_id"],
        }
    },
}  # fmt: skip
ORDER_V2 = {
    "type": "object",
    "properties": {
        "properties": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "currency": {"type": "string"}},
            "required": ["order_id", "currency"],
        }
    },
}
HOME = {
    "type": "object",
    "properties": {"properties": {"type": "object", "properties": {"path": {"type": "string"}}}},
}
IDENTIFY = {"properties": {"traits": {"properties": {"email": {"type": "string"}}}}}

WORKSPACE = {
    "sources": [
        {"id": "web", "write_keys": [WEB]},
        {"id": "app", "write_keys": [APP]},
        {"id": "loose", "write_keys": [LOOSE]},
        {"id": "quarantine"},
        {"id": "alerts"},
        {"id": "probe", "write_keys": [PROBE_KEY]},
    ],
    "tracking_plans": [
        {
            "id": "shop",
            "name": "Shop",
            "sources": ["web", "app", "loose"],
            "rules": {
                "events": [
                    {"name": "Order Completed", "rules": ORDER_V1},
                    {"name": "Order Completed", "version": 2, "rules": ORDER_V2},
                    {"name": "Home", "type": "page", "rules": HOME},
                ],
                "identify": IDENTIFY,
            },
            "enforcement": {
                "unplanned_events": "block",
                "unplanned_properties": "omit",
                "violations": "omit",
                "unplanned_traits": "omit",
                "forward_violations_to": "alerts",
            },
            "source_settings": {
                "app": {"violations": "block", "forward_blocked_to": "quarantine"},
                "loose": {},
            },
        }
    ],
}


def apply(data_dir: Path, document: dict[str, Any], tmp: Path) -> subprocess.CompletedProcess[str]:
    file = tmp / "workspace.json"
    file.write_text(json.dumps(document))  # JSON is YAML
    return subprocess.run(
        [sys.executable, "-m", "sluice", "apply", str(file), "--data-dir", str(data_dir)],
        capture_output=True, text=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def server(
    start_module_server: StartServer, tmp_path_factory: pytest.TempPathFactory
) -> SluiceServer:
    tmp = tmp_path_factory.mktemp("protocols")
    done = apply(tmp / "data", WORKSPACE, tmp)
    assert done.returncode == 0, done.stderr
    return start_module_server({"SLUICE_WORKERS": "1"}, data_dir=tmp / "data")


def send(server: SluiceServer, key: str, message: dict[str, Any]) -> dict[str, Any] | None:
    """Post one call; the stored payload with that messageId in any source, or None."""
    res = server.post(f"/v1/{message['type']}", message, key=key)
    assert res.status == 200, res.body
    found = server.store.find_events(message["messageId"])
    return json.loads(found[0].payload) if found else None


def stored_in(server: SluiceServer, message_id: str) -> list[str]:
    return [e.source_id for e in server.store.find_events(message_id)]


def order(message_id: str, **properties: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Order Completed", "userId": "u1",
            "messageId": message_id, "properties": properties}  # fmt: skip


def test_a_planned_valid_event_is_stored_untouched(server: SluiceServer) -> None:
    stored = send(server, WEB, order("ok-1", order_id="o1", revenue=10.5))
    assert stored is not None
    assert stored["properties"] == {"order_id": "o1", "revenue": 10.5}
    assert "protocols" not in stored.get("context", {})


def test_an_unplanned_event_is_blocked_where_configured(server: SluiceServer) -> None:
    delta = CounterDelta(server)
    message = {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "unpl-1"}
    assert send(server, WEB, message) is None
    delta.settle()
    assert delta[("web", "rejected:tracking_plan_blocked")] == 1
    [rejection] = [r for r in server.store.rejections(50, "web") if b"unpl-1" in r.payload]
    assert rejection.reason == "tracking_plan_blocked"
    assert rejection.detail == "Unplanned event"


def test_an_unplanned_event_is_allowed_where_configured(server: SluiceServer) -> None:
    message = {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "unpl-2"}
    stored = send(server, LOOSE, message)
    assert stored is not None and stored["event"] == "Signed Up"
    assert stored_in(server, "unpl-2") == ["loose"]


def test_a_wrong_type_is_omitted_with_context_protocols(server: SluiceServer) -> None:
    stored = send(server, WEB, order("omit-1", order_id="o1", revenue="ten", coupon="X"))
    assert stored is not None
    assert stored["properties"] == {"order_id": "o1"}
    assert stored["context"]["protocols"] == {
        "omitted": ["coupon"],
        "omitted_on_violation": ["revenue"],
        "sourceId": "web",
        "violations": [
            {"type": "Invalid Type", "field": "properties.revenue",
             "description": "Invalid type. Expected: number, given: string"},
        ],
    }  # fmt: skip


def test_a_wrong_type_is_allowed_and_flagged_where_configured(server: SluiceServer) -> None:
    stored = send(server, LOOSE, order("allow-1", order_id="o1", coupon_count=1.5, extra=True))
    assert stored is not None
    assert stored["properties"] == {"order_id": "o1", "coupon_count": 1.5, "extra": True}
    assert stored["context"]["protocols"] == {
        "sourceId": "loose",
        "violations": [
            {"type": "Invalid Type", "field": "properties.coupon_count",
             "description": "Invalid type. Expected: integer, given: number"},
        ],
    }  # fmt: skip


def test_a_violation_blocks_and_forwards_to_the_chosen_source(server: SluiceServer) -> None:
    delta = CounterDelta(server)
    message = order("block-1", revenue=3)  # order_id is required
    stored = send(server, APP, message)
    assert stored_in(server, "block-1") == ["quarantine"]  # not in app's log
    assert stored is not None
    assert stored["context"]["protocols"]["violations"] == [
        {"type": "Required", "field": "properties.order_id",
         "description": "Missing required property 'order_id'"},
    ]  # fmt: skip
    delta.settle()
    assert delta[("app", "rejected:tracking_plan_blocked")] == 1
    assert delta[("app", "protocols_forwarded:blocked")] == 1


def test_violations_are_counted_listed_and_sent_as_tracks(server: SluiceServer) -> None:
    delta = CounterDelta(server)
    for i in range(3):
        send(server, WEB, order(f"count-{i}", order_id="o", revenue=[i]))
    delta.settle()
    name = 'protocols_violation:["Order Completed","properties.revenue","Invalid Type"]'
    assert delta[("web", name)] == 3
    listed = subprocess.run(
        [sys.executable, "-m", "sluice", "violations", "--source", "web", "--event",
         "Order Completed", "--json", "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    revenue = [r for r in rows if r["field"] == "properties.revenue"]
    assert revenue[0]["type"] == "Invalid Type" and revenue[0]["value"] >= 3
    assert {r["source_id"] for r in rows} == {"web"}
    alerts = [
        json.loads(e.payload)
        for e in server.events_after(0)
        if e.source_id == "alerts" and b"count-1" in e.payload
    ]
    assert len(alerts) == 1
    assert alerts[0]["event"] == "Violation Generated"
    assert alerts[0]["userId"] == "schema-violations"
    assert alerts[0]["properties"]["eventMessageID"] == "count-1"
    assert alerts[0]["properties"]["violationField"] == "properties.revenue"
    assert alerts[0]["properties"]["trackingPlanID"] == "shop"


def test_event_version_selects_the_rule(server: SluiceServer) -> None:
    v2 = order("ver-2", order_id="o1")
    v2["context"] = {"protocols": {"event_version": 2}}
    stored = send(server, LOOSE, v2)
    assert stored is not None
    assert stored["context"]["protocols"]["violations"] == [
        {"type": "Required", "field": "properties.currency",
         "description": "Missing required property 'currency'"},
    ]  # fmt: skip
    assert stored["context"]["protocols"]["event_version"] == 2
    stored = send(server, LOOSE, order("ver-1", order_id="o1"))  # no version: version 1
    assert stored is not None and "protocols" not in stored.get("context", {})


def test_unplanned_traits_are_omitted_and_a_batch_keeps_its_neighbours(
    server: SluiceServer,
) -> None:
    batch = {"batch": [
        {"type": "identify", "userId": "u1", "messageId": "tr-1",
         "traits": {"email": "a@example.com", "shoe_size": 42},
         "context": {"app": {"version": "1.2"}}},
        {"type": "track", "event": "Nope", "userId": "u1", "messageId": "tr-2"},
        order("tr-3", order_id="o3"),
    ]}  # fmt: skip
    assert server.post("/v1/batch", batch, key=WEB).status == 200
    wait_for(lambda: stored_in(server, "tr-3"), what="the batch")
    [identify] = [json.loads(e.payload) for e in server.store.find_events("tr-1")]
    assert identify["traits"] == {"email": "a@example.com"}
    assert identify["context"]["protocols"]["omitted"] == ["shoe_size"]
    assert identify["context"]["app"] == {"version": "1.2"}  # kept next to `protocols`
    assert stored_in(server, "tr-2") == []  # blocked alone
    assert stored_in(server, "tr-3") == ["web"]


def test_a_page_is_checked_against_its_name_rule(server: SluiceServer) -> None:
    page = {"type": "page", "name": "Home", "userId": "u1", "messageId": "page-1",
            "properties": {"path": 5}}  # fmt: skip
    stored = send(server, LOOSE, page)
    assert stored is not None
    assert stored["context"]["protocols"]["violations"] == [
        {"type": "Invalid Type", "field": "properties.path",
         "description": "Invalid type. Expected: string, given: integer"},
    ]  # fmt: skip
    other = {"type": "page", "name": "Other", "userId": "u1", "messageId": "page-2",
             "properties": {"path": 5}}  # fmt: skip
    stored = send(server, LOOSE, other)  # no rule for it: pages are never "unplanned"
    assert stored is not None and "protocols" not in stored.get("context", {})
