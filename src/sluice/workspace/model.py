"""The workspace document: what a workspace file holds, as msgspec Structs, and its own rules.

The Structs check shape and types (msgspec, with unknown fields refused so that a typo is an
error rather than a setting silently ignored); `check_workspace` adds the rules that span several
objects: unique ids, unique write keys, references to existing sources, JSON-only free-form values,
and the warehouse settings every backend shares (`max_event_tables`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Literal

import msgspec

from sluice.workspace.errors import WorkspaceError

DEFAULT_WORKSPACE_NAME = "default"
# `\Z`, not `$`: `$` also matches before a trailing newline.
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}\Z"
WRITE_KEY_PATTERN = r"^[A-Za-z0-9_-]{8,128}\Z"
# What each pattern means, for error messages a person can act on.
PATTERN_HELP = {
    ID_PATTERN: "Expected an id: 1 to 64 characters of a-z, 0-9, '_' and '-', "
    "starting with a letter or digit",
    WRITE_KEY_PATTERN: "Expected a write key: 8 to 128 characters of A-Z, a-z, 0-9, '_' and '-'",
}

Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
WriteKey = Annotated[str, msgspec.Meta(pattern=WRITE_KEY_PATTERN)]
NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]
FreeForm = dict[str, Any]
# A warehouse setting of every backend (warehouse/factory.py reads it).
MAX_EVENT_TABLES = "max_event_tables"
WarehouseType = Literal["duckdb", "postgres", "lake"]


class _Object(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Base of every document Struct: keyword-only, strict about unknown keys, terse when dumped."""


WebhookProvider = Literal["stripe", "github", "shopify", "twilio", "standard-webhooks", "generic"]


class WebhookSignature(_Object):
    """How a `generic` webhook is signed: an HMAC of the body in a header, or a bearer token."""

    scheme: Literal["hmac", "bearer"] = "hmac"
    header: NonEmptyStr = "X-Signature"
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""


class WebhookSource(_Object):
    """A source fed by a third-party tool's webhooks (docs/sources.md): each delivery is
    verified with `secrets` by the provider's scheme, then mapped to a Spec event."""

    provider: WebhookProvider
    secrets: list[NonEmptyStr] = []  # signing secrets (several during a rotation)
    tolerance_s: Annotated[int, msgspec.Meta(ge=1, le=86_400)] = 300
    signature: WebhookSignature | None = None  # generic only
    # Provider event type -> mapping (mapping kit) to a Spec event, over the built-in ones.
    mappings: dict[NonEmptyStr, FreeForm] = {}
    unmapped: Literal["track", "drop"] = "track"  # an event type no mapping names


class Source(_Object):
    """Where events come from; the collector accepts events sent with one of its write keys
    (a webhook source: the tokens of its hook URL, `POST /v1/hooks/<key>`)."""

    id: Id
    name: str | None = None
    # Empty means: keep the keys the store has for this id, or generate one for a new source.
    write_keys: list[WriteKey] = []
    enabled: bool = True
    webhook: WebhookSource | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.id


class Destination(_Object):
    """Where events go: a destination type from the registry, fed by some sources."""

    id: Id
    type: NonEmptyStr
    name: str | None = None
    # "device": one of Segment's browser destinations, run by the page's analytics.js and
    # loaded from Sluice (docs/device-mode.md); Sluice does not deliver it.
    mode: Literal["cloud", "device"] = "cloud"
    enabled: bool = True
    sources: list[Id] = []
    settings: FreeForm = {}
    filters: list[FreeForm] = []
    mappings: list[FreeForm] = []
    # Consent categories (ids) the user must have consented to for this destination to receive.
    consent_categories: list[NonEmptyStr] = []
    # Delivery knobs: concurrency, batch_size, max_wait_ms, requests_per_s, timeout_s,
    # retry_window_s (see docs/delivery.md).
    delivery: FreeForm = {}


class Warehouse(_Object):
    """A database that receives the events of some sources as Segment-shaped tables."""

    id: Id
    type: WarehouseType
    settings: FreeForm = {}
    sources: list[Id] = []


class TrackingPlan(_Object):
    """The events some sources may send, and what happens to the others."""

    id: Id
    name: str | None = None
    sources: list[Id] = []
    rules: FreeForm = {}


class Workspace(_Object):
    """A whole workspace; field order is the order `sluice export` writes."""

    workspace: NonEmptyStr = DEFAULT_WORKSPACE_NAME
    sources: list[Source] = []
    destinations: list[Destination] = []
    warehouses: list[Warehouse] = []
    tracking_plans: list[TrackingPlan] = []


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
    source_ids = {source.id for source in ws.sources}
    for path, refs in _source_refs(ws):
        _check_source_refs(path, refs, source_ids)
    for path, value in _free_form_values(ws):
        _check_json(path, value)
    for i, warehouse in enumerate(ws.warehouses):
        cap = warehouse.settings.get(MAX_EVENT_TABLES)
        if cap is not None and (type(cap) is not int or cap < 0):
            raise WorkspaceError(
                f"Expected a whole number of event tables per source, 0 or more, got {cap!r}",
                path=f"warehouses[{i}].settings.{MAX_EVENT_TABLES}",
            )


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


def _check_json(path: str, value: object) -> None:
    """Free-form values are stored as JSON: refuse what JSON cannot hold rather than mangle it."""
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise WorkspaceError("Expected a finite number", path=path)
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(f"{path}[{i}]", item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                # YAML reads unquoted `yes`, `on`, `1` as booleans and numbers, keys included.
                raise WorkspaceError(
                    f"Expected a string key, got {type(key).__name__} {key!r} (quote the key)",
                    path=path,
                )
            _check_json(f"{path}.{key}" if _PLAIN_KEY.match(key) else f"{path}[{key!r}]", item)
        return
    raise WorkspaceError(
        f"Expected a string, number, boolean, null, list or mapping, got {type(value).__name__}",
        path=path,
    )
