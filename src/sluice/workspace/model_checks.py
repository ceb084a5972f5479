"""The workspace document's rules that span several objects: `check_workspace`.

The Structs (`model`) check each object's shape and types; these rules need the whole document:
unique ids, unique write keys, references to existing sources, JSON-only free-form values, the
warehouse settings every backend shares (`max_event_tables`). Apart from the Structs because they
are code over the document, not its description.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence

from sluice.workspace.errors import WorkspaceError
from sluice.workspace.model import (
    MAX_EVENT_TABLES,
    Destination,
    IdentitySettings,
    Source,
    TrackingPlan,
    Warehouse,
    WebhookSource,
    Workspace,
)
from sluice.workspace.model_engage import ENGAGE_SOURCE_ID


def check_workspace(ws: Workspace) -> None:
    """Raise `WorkspaceError` (without a file) for the first rule the document breaks."""
    kinds: list[tuple[str, Sequence[Source | Destination | Warehouse | TrackingPlan]]] = [
        ("sources", ws.sources),
        ("destinations", ws.destinations),
        ("warehouses", ws.warehouses),
        ("tracking_plans", ws.tracking_plans),
    ]
    for field, objects in kinds:
        _check_unique_ids(field, objects)
    _check_write_keys(ws.sources)
    for i, source in enumerate(ws.sources):
        if source.webhook is not None:
            _check_webhook(f"sources[{i}].webhook", source.webhook)
    source_ids = {source.id for source in ws.sources} | {ENGAGE_SOURCE_ID}
    for path, refs in _source_refs(ws):
        _check_source_refs(path, refs, source_ids)
    for path, value in _free_form_values(ws):
        check_json_value(path, value)
    _check_tracking_plans(ws.tracking_plans, source_ids)
    for i, warehouse in enumerate(ws.warehouses):
        cap = warehouse.settings.get(MAX_EVENT_TABLES)
        if cap is not None and (type(cap) is not int or cap < 0):
            raise WorkspaceError(
                f"Expected a whole number of event tables per source, 0 or more, got {cap!r}",
                path=f"warehouses[{i}].settings.{MAX_EVENT_TABLES}",
            )
        problem = profiles_setting_problem(warehouse.type, warehouse.settings.get("profiles"))
        if problem is not None:
            raise WorkspaceError(problem, path=f"warehouses[{i}].settings.profiles")
    if ws.identity is not None:
        _check_identity(ws.identity)
    # it imports the workspace package, which imports this module
    from sluice.engage.definitions import check_engage

    check_engage(ws)
    _check_transformations_and_pii(ws)


PROFILES_SYNC_TYPES = ("duckdb", "postgres")  # warehouses that can take Profiles Sync tables


def profiles_setting_problem(warehouse_type: str, value: object) -> str | None:
    """Why a warehouse's `settings.profiles` (Profiles Sync, warehouse/profiles_sync.py) cannot
    be accepted for its type; None when it can."""
    if value is None:
        return None
    if not isinstance(value, bool):
        return f"Expected true or false, got {value!r}"
    if value and warehouse_type not in PROFILES_SYNC_TYPES:
        return (
            f"Profiles Sync loads into {' and '.join(PROFILES_SYNC_TYPES)} warehouses, not"
            f" {warehouse_type!r}"
        )
    return None


def _check_transformations_and_pii(ws: Workspace) -> None:
    from sluice.pii.validate import check_pii
    from sluice.transform.validate import check_transformations

    check_transformations(ws)
    check_pii(ws)


def _check_identity(identity: IdentitySettings) -> None:
    seen: dict[str, int] = {}
    for i, rule in enumerate(identity.id_types):
        if rule.type in seen:
            raise WorkspaceError(
                f"Identifier type {rule.type!r} has two rules (also at"
                f" identity.id_types[{seen[rule.type]}])",
                path=f"identity.id_types[{i}].type",
            )
        seen[rule.type] = i
    for i, pattern in enumerate(identity.blocked.patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise WorkspaceError(
                f"Invalid regular expression: {exc}", path=f"identity.blocked.patterns[{i}]"
            ) from None


def _check_tracking_plans(plans: Sequence[TrackingPlan], source_ids: set[str]) -> None:
    """Each plan compiles (`sluice.protocols`), each source has at most one plan, and the
    sources its settings name exist: a plan Sluice cannot enforce is refused, not ignored."""
    from sluice.protocols.errors import PlanError
    from sluice.protocols.plan import compile_plan

    planned: dict[str, int] = {}
    for i, plan in enumerate(plans):
        where = f"tracking_plans[{i}]"
        try:
            compile_plan(plan.id, plan.name or plan.id, plan.rules)
        except PlanError as exc:
            path = f"{where}.rules.{exc.path}" if exc.path else f"{where}.rules"
            raise WorkspaceError(exc.message, path=path) from None
        for j, source in enumerate(plan.sources):
            if source in planned:
                raise WorkspaceError(
                    f"Source {source!r} already has a tracking plan"
                    f" (tracking_plans[{planned[source]}]); a source has one plan",
                    path=f"{where}.sources[{j}]",
                )
            planned[source] = i
        settings = [(f"{where}.enforcement", plan.enforcement)] + [
            (f"{where}.source_settings.{s}", e) for s, e in plan.source_settings.items()
        ]
        for source in plan.source_settings:
            if source not in plan.sources:
                raise WorkspaceError(
                    f"Source {source!r} is not one of this plan's sources",
                    path=f"{where}.source_settings.{source}",
                )
        for path, enforcement in settings:
            if enforcement is None:
                continue
            for field in ("forward_blocked_to", "forward_violations_to"):
                target = getattr(enforcement, field)
                if target is not None and target not in source_ids:
                    raise WorkspaceError(f"Unknown source {target!r}", path=f"{path}.{field}")


def _check_webhook(path: str, webhook: WebhookSource) -> None:
    from sluice.errors import SluiceError
    from sluice.mapping import validate

    if not webhook.secrets:
        raise WorkspaceError(
            "A webhook source needs its signing secret (the provider shows it where the"
            " webhook is set up); unsigned deliveries are refused",
            path=f"{path}.secrets",
        )
    if webhook.signature is not None and webhook.provider != "generic":
        raise WorkspaceError(
            f"`signature` is for the generic provider; {webhook.provider} has its own scheme",
            path=f"{path}.signature",
        )
    for event_type, mapping in webhook.mappings.items():
        try:
            validate(mapping)
        except SluiceError as exc:
            raise WorkspaceError(str(exc), path=f"{path}.mappings.{event_type}") from None


def _check_unique_ids(
    field: str, objects: Sequence[Source | Destination | Warehouse | TrackingPlan]
) -> None:
    seen: dict[str, int] = {}
    for i, obj in enumerate(objects):
        if obj.id in seen:
            raise WorkspaceError(
                f"Duplicate id {obj.id!r} (also at {field}[{seen[obj.id]}])",
                path=f"{field}[{i}].id",
            )
        seen[obj.id] = i


def _check_write_keys(sources: Sequence[Source]) -> None:
    # The key itself is a secret: errors say where the other copy is, not what it is.
    seen: dict[str, str] = {}
    for i, source in enumerate(sources):
        for j, key in enumerate(source.write_keys):
            path = f"sources[{i}].write_keys[{j}]"
            if key in seen:
                raise WorkspaceError(f"Duplicate write key (also at {seen[key]})", path=path)
            seen[key] = path


def _check_source_refs(path: str, refs: Sequence[str], source_ids: set[str]) -> None:
    listed: set[str] = set()
    for i, ref in enumerate(refs):
        if ref not in source_ids:
            raise WorkspaceError(f"Unknown source {ref!r}", path=f"{path}[{i}]")
        if ref in listed:
            raise WorkspaceError(f"Source {ref!r} is listed twice", path=f"{path}[{i}]")
        listed.add(ref)


def _source_refs(ws: Workspace) -> Iterator[tuple[str, list[str]]]:
    for i, d in enumerate(ws.destinations):
        yield f"destinations[{i}].sources", d.sources
    for i, w in enumerate(ws.warehouses):
        yield f"warehouses[{i}].sources", w.sources
    for i, t in enumerate(ws.tracking_plans):
        yield f"tracking_plans[{i}].sources", t.sources


def _free_form_values(ws: Workspace) -> Iterator[tuple[str, object]]:
    for i, d in enumerate(ws.destinations):
        yield f"destinations[{i}].settings", d.settings
        yield f"destinations[{i}].filters", d.filters
        yield f"destinations[{i}].mappings", d.mappings
    for i, w in enumerate(ws.warehouses):
        yield f"warehouses[{i}].settings", w.settings
    for i, t in enumerate(ws.tracking_plans):
        yield f"tracking_plans[{i}].rules", t.rules


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_json_value(path: str, value: object) -> None:
    """Free-form values are stored as JSON: refuse what JSON cannot hold rather than mangle it."""
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise WorkspaceError("Expected a finite number", path=path)
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            check_json_value(f"{path}[{i}]", item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                # YAML reads unquoted `yes`, `on`, `1` as booleans and numbers, keys included.
                raise WorkspaceError(
                    f"Expected a string key, got {type(key).__name__} {key!r} (quote the key)",
                    path=path,
                )
            check_json_value(f"{path}.{key}" if _PLAIN_KEY.match(key) else f"{path}[{key!r}]", item)
        return
    raise WorkspaceError(
        f"Expected a string, number, boolean, null, list or mapping, got {type(value).__name__}",
        path=path,
    )
