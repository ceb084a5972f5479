"""Reconciling the store with a workspace document, both ways.

`apply_workspace` makes the store's control plane hold exactly what the document describes (like
`kubectl apply`: applying the same file twice changes nothing the second time, and objects the
file no longer lists are removed) in one transaction. `export_workspace` reads the store back into
a document that applies without change. Each object is a `ConfigObject(kind, id, body)` whose body
is the JSON of its Struct; sources use a fixed body with all four keys, which the store's
`sources()` and the collector read.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from sluice.devicemode import is_device_mode
from sluice.store.base import ConfigObject, EventStore
from sluice.store.errors import StoreError
from sluice.workspace.errors import WorkspaceError
from sluice.workspace.model import (
    Destination,
    IdentitySettings,
    Source,
    TrackingPlan,
    Warehouse,
    WebhookSource,
    Workspace,
)
from sluice.workspace.model_engage import Audience, ComputedTrait
from sluice.workspace.model_privacy import Privacy
from sluice.workspace.model_transformations import Transformation

WORKSPACE_KIND = "workspace"
WORKSPACE_ID = "workspace"
# Kinds this module owns; objects of other kinds in the control plane are left as they are.
MANAGED_KINDS = frozenset(
    {WORKSPACE_KIND, "source", "destination", "warehouse", "tracking_plan", "identity", "engage"}
    | {"transformation", "privacy"}  # sluice.transform, sluice.pii
)
# The `identity:` section, one object (absent: the identity graph's defaults).
IDENTITY_KIND = "identity"
IDENTITY_ID = "identity"
# `computed_traits:` and `audiences:`, one object (sluice.engage reads it).
ENGAGE_KIND = "engage"
DEFAULT_SOURCE_ID = "default"
DEFAULT_SOURCE_NAME = "Default"
WRITE_KEY_BYTES = 24

T = TypeVar("T")


class EngageBody(msgspec.Struct):
    """The stored `engage` object: the workspace's computed traits and audiences."""

    computed_traits: list[ComputedTrait] = []
    audiences: list[Audience] = []


class _WorkspaceBody(msgspec.Struct):
    name: str


class _SourceBody(msgspec.Struct, omit_defaults=True):
    """A source as stored: the four keys always present, since readers rely on them; a
    webhook source's configuration besides (absent for others: their bodies are unchanged)."""

    id: str
    name: str
    write_keys: list[str]
    enabled: bool
    webhook: dict[str, Any] | None = None


@dataclass(slots=True)
class ApplyReport:
    """What an apply changed, as `kind/id` strings, and the write keys it made up."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    generated_keys: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


def generate_write_key() -> str:
    """A new random write key (32 URL-safe characters)."""
    return secrets.token_urlsafe(WRITE_KEY_BYTES)


def apply_workspace(store: EventStore, ws: Workspace, *, dry_run: bool = False) -> ApplyReport:
    """Make the store match `ws`; with `dry_run`, only report what would change.

    `ws` must already be checked (`parse_workspace` does it). Sources listed without write keys
    keep the keys the store has for their id, or get a generated one when they have none.
    Raises `WorkspaceError` (without a file) when a kept key clashes with one the document lists.
    """
    current = {(obj.kind, obj.id): obj for obj in store.list_config()}
    report = ApplyReport()
    desired = list(_desired_objects(ws, current, report.generated_keys))
    for obj in desired:
        before = current.get((obj.kind, obj.id))
        if before is None:
            report.created.append(f"{obj.kind}/{obj.id}")
        elif msgspec.json.decode(before.body) != msgspec.json.decode(obj.body):
            report.updated.append(f"{obj.kind}/{obj.id}")
    wanted = {(obj.kind, obj.id) for obj in desired}
    report.deleted = [
        f"{kind}/{id_}"
        for kind, id_ in current
        if kind in MANAGED_KINDS and (kind, id_) not in wanted
    ]
    if report.changed and not dry_run:
        others = [obj for obj in current.values() if obj.kind not in MANAGED_KINDS]
        store.replace_config([*desired, *others])
        # A new destination receives what arrives from now on (as at Segment), even if the
        # delivery worker notices it only later: its cursor starts at the log's end.
        end = store.last_seq()
        for name in report.created:
            kind, _, id_ = name.partition("/")
            if (
                kind == "destination"
                and store.find_cursor(f"destination:{id_}") is None
                and not any(d.kind == kind and d.id == id_ and is_device_mode(d.body)
                            for d in desired)
            ):  # fmt: skip
                store.commit_cursor(f"destination:{id_}", end)
    return report


def export_workspace(store: EventStore) -> Workspace:
    """The workspace the store holds, as a document `apply_workspace` accepts unchanged.

    Raises `StoreError` when a stored object cannot be read as its kind.
    """
    ws = Workspace()
    for obj in store.list_config():
        if obj.kind == WORKSPACE_KIND:
            ws.workspace = _decode(obj, _WorkspaceBody).name
        elif obj.kind == "source":
            body = _decode(obj, _SourceBody)
            ws.sources.append(
                Source(
                    id=body.id,
                    name=None if body.name == body.id else body.name,
                    write_keys=body.write_keys,
                    enabled=body.enabled,
                    webhook=None
                    if body.webhook is None
                    else msgspec.convert(body.webhook, WebhookSource),
                )
            )
        elif obj.kind == "destination":
            ws.destinations.append(_decode(obj, Destination))
        elif obj.kind == "warehouse":
            ws.warehouses.append(_decode(obj, Warehouse))
        elif obj.kind == "tracking_plan":
            ws.tracking_plans.append(_decode(obj, TrackingPlan))
        elif obj.kind == IDENTITY_KIND:
            ws.identity = _decode(obj, IdentitySettings)
        elif obj.kind == ENGAGE_KIND:
            engage = _decode(obj, EngageBody)
            ws.computed_traits, ws.audiences = engage.computed_traits, engage.audiences
        elif obj.kind == "transformation":
            ws.transformations.append(_decode(obj, Transformation))
        elif obj.kind == "privacy":
            ws.privacy = _decode(obj, Privacy)
    # Sorted here, not by the backend, so that every store exports the same text.
    for objects in (
        ws.sources,
        ws.destinations,
        ws.warehouses,
        ws.tracking_plans,
        ws.transformations,
    ):
        objects.sort(key=lambda obj: obj.id)
    return ws


def ensure_default_source(store: EventStore) -> tuple[str, str] | None:
    """Give a store without any source one, so a fresh install accepts events at once.

    Returns `(source_id, write_key)` when it created the source, None when sources exist.
    """
    if store.sources():
        return None
    key = generate_write_key()
    body = _SourceBody(DEFAULT_SOURCE_ID, DEFAULT_SOURCE_NAME, [key], True)
    store.put_config(ConfigObject("source", DEFAULT_SOURCE_ID, msgspec.json.encode(body)))
    return DEFAULT_SOURCE_ID, key


def _desired_objects(
    ws: Workspace,
    current: Mapping[tuple[str, str], ConfigObject],
    generated: dict[str, str],
) -> Iterator[ConfigObject]:
    yield ConfigObject(
        WORKSPACE_KIND, WORKSPACE_ID, msgspec.json.encode(_WorkspaceBody(ws.workspace))
    )
    for body in _source_bodies(ws, current, generated):
        yield ConfigObject("source", body.id, msgspec.json.encode(body))
    for kind, objects in (
        ("destination", ws.destinations),
        ("warehouse", ws.warehouses),
        ("tracking_plan", ws.tracking_plans),
        ("transformation", ws.transformations),
    ):
        for obj in objects:
            yield ConfigObject(kind, obj.id, msgspec.json.encode(obj))
    if ws.identity is not None:
        yield ConfigObject(IDENTITY_KIND, IDENTITY_ID, msgspec.json.encode(ws.identity))
    if ws.computed_traits or ws.audiences:
        engage = EngageBody(ws.computed_traits, ws.audiences)
        yield ConfigObject(ENGAGE_KIND, ENGAGE_KIND, msgspec.json.encode(engage))
    if ws.privacy is not None:
        yield ConfigObject("privacy", "privacy", msgspec.json.encode(ws.privacy))


def _source_bodies(
    ws: Workspace,
    current: Mapping[tuple[str, str], ConfigObject],
    generated: dict[str, str],
) -> list[_SourceBody]:
    bodies: list[_SourceBody] = []
    # Keys written in the file are unique already (`check_workspace`); a key kept from the
    # store may still clash with one the file gives to another source.
    listed = {
        key: f"sources[{i}].write_keys[{j}]"
        for i, source in enumerate(ws.sources)
        for j, key in enumerate(source.write_keys)
    }
    for i, source in enumerate(ws.sources):
        keys = list(source.write_keys)
        if not keys:
            stored = current.get(("source", source.id))
            keys = list(_decode(stored, _SourceBody).write_keys) if stored else []
            for key in keys:
                if key in listed:
                    raise WorkspaceError(
                        f"Source {source.id!r} keeps its write keys from the store, and one of"
                        f" them is listed at {listed[key]}: list this source's keys explicitly",
                        path=f"sources[{i}].write_keys",
                    )
                listed[key] = f"sources[{i}].write_keys (kept from the store)"
        if not keys:
            keys = [generate_write_key()]
            generated[source.id] = keys[0]
        webhook = None if source.webhook is None else msgspec.to_builtins(source.webhook)
        bodies.append(_SourceBody(source.id, source.display_name, keys, source.enabled, webhook))
    return bodies


def _decode(obj: ConfigObject, type_: type[T]) -> T:
    try:
        return msgspec.json.decode(obj.body, type=type_)
    except msgspec.DecodeError as exc:
        raise StoreError(
            f"The store holds an invalid {obj.kind} {obj.id!r}: {str(exc).replace('`', '')}"
        ) from None
