"""Segment's tracking plan exports read into a workspace file's `tracking_plans` entry.

Two shapes exist: the Public API's rule list (`GET /tracking-plans/{id}/rules`: `{"data":
{"rules": [{"type": "TRACK", "key": "Order Completed", "jsonSchema": {...}, "version": 1}]}}`,
optionally with the plan under `data.trackingPlan`) and the older Config API's plan
(`{"display_name": ..., "rules": {"global": ..., "events": [{"name", "version", "rules"}],
"identify_traits": ...}}`).
Both become the Config API shape Sluice keeps, then go through the same checks as a hand-written
plan, so an import that Sluice could not enforce is refused naming the rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sluice.protocols.errors import PlanError
from sluice.protocols.plan import compile_plan

_CALL_TYPES = {"TRACK": "track", "PAGE": "page", "SCREEN": "screen"}


def import_plan(document: Any, plan_id: str | None = None) -> dict[str, Any]:
    """A `tracking_plans` entry (`id`, `name`, `rules`) from a Segment export."""
    data = document.get("data", document) if isinstance(document, Mapping) else document
    meta: Mapping[str, Any] = {}
    if isinstance(data, Mapping):
        found = data.get("trackingPlan")
        meta = found if isinstance(found, Mapping) else data
    # the Config API's `name` is a resource path; its `display_name` is the name
    name = str(meta.get("display_name") or meta.get("name") or plan_id or "imported")
    if isinstance(data, list) or (
        isinstance(data, Mapping) and isinstance(data.get("rules"), list)
    ):
        raw = data if isinstance(data, list) else data["rules"]
        rules = _from_public_api(raw)
    elif isinstance(data, Mapping) and isinstance(data.get("rules"), Mapping):
        rules = _from_config_api(data["rules"])
    else:
        raise PlanError("Not a Segment tracking plan export: no `rules` list or mapping found")
    entry_id = plan_id or _slug(str(meta.get("slug") or name))
    compile_plan(entry_id, name, rules)  # refuses what Sluice could not enforce
    return {"id": entry_id, "name": name, "rules": rules}


def _from_public_api(raw: list[Any]) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    for i, rule in enumerate(raw):
        if not isinstance(rule, Mapping):
            raise PlanError("Expected a rule object", path=f"rules[{i}]")
        if rule.get("deprecatedAt"):
            continue  # removed from the plan
        kind = str(rule.get("type", "")).upper()
        schema = rule.get("jsonSchema") or {}
        if kind in _CALL_TYPES:
            event: dict[str, Any] = {"name": str(rule.get("key") or "")}
            if kind != "TRACK":
                event["type"] = _CALL_TYPES[kind]
            if isinstance(rule.get("version"), int) and rule["version"] != 1:
                event["version"] = rule["version"]
            event["rules"] = schema
            events.append(event)
        elif kind in ("COMMON", "IDENTIFY", "GROUP"):
            rules["global" if kind == "COMMON" else kind.lower()] = schema
        else:
            raise PlanError(f"Unknown rule type {rule.get('type')!r}", path=f"rules[{i}].type")
    if events:
        rules["events"] = events
    return rules


def _from_config_api(raw: Mapping[str, Any]) -> dict[str, Any]:
    aliases = {"identify_traits": "identify", "group_traits": "group"}
    rules: dict[str, Any] = {}
    for key, value in raw.items():
        key = aliases.get(key, key)
        if key == "events" and isinstance(value, list):
            rules["events"] = [
                {
                    k: v
                    for k, v in event.items()
                    if k in ("name", "type", "version", "description", "labels", "rules")
                }
                if isinstance(event, Mapping)
                else event
                for event in value
            ]
        elif value:  # Segment writes empty schemas as {}: nothing planned there
            rules[key] = value
    return rules


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")[:64]
    return slug or "imported"
