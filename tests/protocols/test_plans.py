"""Tracking plans in the workspace file and from Segment's exports: `sluice apply` refuses a
plan it could not enforce, naming the rule; `sluice protocols import` reads Segment's Public API
and Config API shapes into a plan `apply` accepts and the collector enforces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sluice.protocols.enforce import Enforcer
from sluice.protocols.plan import compile_plan
from sluice.protocols.segment_import import import_plan
from sluice.protocols.settings import Enforcement


def sluice(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sluice", *args], capture_output=True, text=True)


def plan_file(tmp_path: Path, rules: dict[str, Any], **extra: Any) -> Path:
    document = {
        "sources": [{"id": "web"}],
        "tracking_plans": [{"id": "p", "sources": ["web"], "rules": rules, **extra}],
    }
    file = tmp_path / "workspace.json"
    file.write_text(json.dumps(document))
    return file


def event(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "rules": {"properties": {"properties": {"properties": properties}}}}


@pytest.mark.parametrize(
    ("rules", "extra", "path", "message"),
    [
        pytest.param(
            {"events": [event("A", {}), event("B", {}), event("C", {}),
                        event("D", {"revenue": {"type": "nmber"}})]},
            {},
            "tracking_plans[0].rules.events[3].rules.properties.properties.properties.revenue",
            "Invalid JSON Schema: Unknown type 'nmber'",
            id="unknown-type",
        ),
        pytest.param(
            {"global": {"required": "userId"}}, {}, "tracking_plans[0].rules.global",
            "Invalid JSON Schema: required must be an array", id="common-schema",
        ),
        pytest.param(
            {"events": [{"name": "A", "rules": {"$ref": "https://example.com/s.json"}}]}, {},
            "tracking_plans[0].rules.events[0].rules",
            "Remote $ref 'https://example.com/s.json' is not allowed", id="remote-ref",
        ),
        pytest.param(
            {"events": [{"name": "A", "rule": {}}]}, {}, "tracking_plans[0].rules.events[0].rule",
            "Unknown field", id="unknown-field",
        ),
        pytest.param(
            {"events": [{"name": "A"}, {"name": "A"}]}, {},
            "tracking_plans[0].rules.events[1].version", "defined twice", id="duplicate-version",
        ),
        pytest.param(
            {}, {"enforcement": {"unplanned_events": "drop"}},
            "tracking_plans[0].enforcement.unplanned_events", "Invalid enum value 'drop'",
            id="bad-setting",
        ),
        pytest.param(
            {}, {"enforcement": {"forward_blocked_to": "nowhere"}},
            "tracking_plans[0].enforcement.forward_blocked_to", "Unknown source 'nowhere'",
            id="unknown-forward-source",
        ),
    ],
)  # fmt: skip
def test_apply_refuses_a_plan_it_cannot_enforce(
    tmp_path: Path, rules: dict[str, Any], extra: dict[str, Any], path: str, message: str
) -> None:
    done = sluice(
        "apply", str(plan_file(tmp_path, rules, **extra)), "--data-dir", str(tmp_path / "d")
    )
    assert done.returncode == 2, done.stdout
    assert f"workspace.json: {path}: " in done.stderr
    assert message in done.stderr


def test_apply_accepts_and_exports_a_plan(tmp_path: Path) -> None:
    rules = {"events": [event("A", {"n": {"type": "integer"}})]}
    file = plan_file(tmp_path, rules, enforcement={"unplanned_events": "block"})
    data = str(tmp_path / "d")
    done = sluice("apply", str(file), "--data-dir", data)
    assert done.returncode == 0, done.stderr
    exported = yaml.safe_load(sluice("export", "--data-dir", data).stdout)
    assert exported["tracking_plans"][0]["rules"] == rules
    assert exported["tracking_plans"][0]["enforcement"] == {"unplanned_events": "block"}
    assert "No changes" in sluice("apply", str(file), "--data-dir", data).stdout


ORDER_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {"properties": {"type": "object", "required": ["order_id"],
                                  "properties": {"order_id": {"type": ["string"]}}}},
}  # fmt: skip
PUBLIC_API = {
    "data": {
        "trackingPlan": {"id": "tp_2aBc", "name": "Shop Plan", "slug": "shop-plan", "type": "LIVE"},
        "rules": [
            {"type": "COMMON", "key": "global", "version": 1,
             "jsonSchema": {"properties": {"userId": {"type": "string"}}}},
            {"type": "TRACK", "key": "Order Completed", "version": 1, "jsonSchema": ORDER_SCHEMA},
            {"type": "TRACK", "key": "Order Completed", "version": 2, "jsonSchema": {}},
            {"type": "TRACK", "key": "Old Event", "version": 1, "jsonSchema": {},
             "deprecatedAt": "2024-01-01T00:00:00Z"},
            {"type": "IDENTIFY", "version": 1,
             "jsonSchema": {"properties": {"traits": {"properties": {"email": {}}}}}},
            {"type": "PAGE", "key": "Home", "version": 1, "jsonSchema": {}},
        ],
    }
}  # fmt: skip


def test_import_from_segments_public_api_export(tmp_path: Path) -> None:
    export = tmp_path / "plan.json"
    export.write_text(json.dumps(PUBLIC_API))
    done = sluice("protocols", "import", str(export), "--source", "web")
    assert done.returncode == 0, done.stderr
    entry = yaml.safe_load(done.stdout)["tracking_plans"][0]
    assert entry["id"] == "shop-plan" and entry["name"] == "Shop Plan"
    assert entry["sources"] == ["web"]
    assert [(e["name"], e.get("type", "track"), e.get("version", 1))
            for e in entry["rules"]["events"]] == [
        ("Order Completed", "track", 1), ("Order Completed", "track", 2), ("Home", "page", 1)
    ]  # fmt: skip
    assert entry["rules"]["global"] == {"properties": {"userId": {"type": "string"}}}
    # the imported plan applies and is enforced as Segment's plan would be
    document = {"sources": [{"id": "web"}], "tracking_plans": [entry]}
    file = tmp_path / "workspace.yaml"
    file.write_text(yaml.safe_dump(document))
    assert sluice("apply", str(file), "--data-dir", str(tmp_path / "d")).returncode == 0
    plan = compile_plan(entry["id"], entry["name"], entry["rules"])
    enforcer = Enforcer("web", plan, Enforcement(unplanned_events="block"))
    old = enforcer.check({"type": "track", "event": "Old Event", "userId": "u"})
    assert old is not None and old.blocked == "Unplanned event"
    bad = enforcer.check({"type": "track", "event": "Order Completed", "userId": 7,
                          "properties": {}})  # fmt: skip
    assert bad is not None
    assert [(v["field"], v["type"]) for v in bad.violations] == [
        ("properties.order_id", "Required"), ("userId", "Invalid Type")
    ]  # fmt: skip


def test_import_from_segments_config_api_export() -> None:
    config_api = {
        "name": "workspaces/acme/tracking-plans/rs_123",
        "display_name": "Mobile",
        "rules": {
            "global": {},
            "events": [{"name": "Signed Up", "description": "d", "version": 1,
                        "rules": ORDER_SCHEMA, "labels": {"team": "growth"}}],
            "identify_traits": {"properties": {"traits": {"required": ["email"]}}},
            "group_traits": {},
        },
    }  # fmt: skip
    entry = import_plan(config_api)
    assert entry["id"] == "mobile"
    assert entry["rules"] == {
        "events": config_api["rules"]["events"],  # type: ignore[index]
        "identify": {"properties": {"traits": {"required": ["email"]}}},
    }
