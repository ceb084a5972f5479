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

from sluice.protocols.settings import Enforcement
from sluice.workspace.errors import WorkspaceError

DEFAULT_WORKSPACE_NAME = "default"
# `\Z`, not `$`: `$` also matches before a trailing newline.
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}\Z"
WRITE_KEY_PATTERN = r"^[A-Za-z0-9_-]{8,128}\Z"
# An identifier type as Segment names them: lower case, dots for platforms (`ios.idfa`).
ID_TYPE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}\Z"
# What each pattern means, for error messages a person can act on.
PATTERN_HELP = {
    ID_PATTERN: "Expected an id: 1 to 64 characters of a-z, 0-9, '_' and '-', "
    "starting with a letter or digit",
    WRITE_KEY_PATTERN: "Expected a write key: 8 to 128 characters of A-Z, a-z, 0-9, '_' and '-'",
    ID_TYPE_PATTERN: "Expected an identifier type: 1 to 64 characters of a-z, 0-9, '_', '.'"
    " and '-'",
}

Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
WriteKey = Annotated[str, msgspec.Meta(pattern=WRITE_KEY_PATTERN)]
IdType = Annotated[str, msgspec.Meta(pattern=ID_TYPE_PATTERN)]
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
    """The events some sources may send, and what happens to the others (docs/protocols.md):
    `rules` in Segment's shape (checked and compiled by `sluice.protocols`), `enforcement` for
    every source of the plan, `source_settings` replacing it for one source."""

    id: Id
    name: str | None = None
    sources: list[Id] = []
    rules: FreeForm = {}
    enforcement: Enforcement | None = None
    source_settings: dict[Id, Enforcement] = {}


class IdTypeRule(_Object):
    """One identifier type's rule (docs/identity.md): at most `limit` values on a profile,
    counting only values seen in the last `window_days` when set; `priority` 1 is the highest
    (defaults: user_id 1, email 2, then alphabetical). `trait` promotes `traits.<trait>` (and
    `context.traits.<trait>`) to this type, for a custom identifier."""

    type: IdType
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    window_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None
    priority: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    trait: NonEmptyStr | None = None


class BlockedValues(_Object):
    """Values never used as identifiers: Segment's suggested list and well-known junk ids
    (`suggested`, on by default), plus the workspace's own exact values and regexes."""

    suggested: bool = True
    values: list[str] = []
    patterns: list[NonEmptyStr] = []


class IdentitySettings(_Object):
    """The `identity:` section: the identity graph's rules (docs/identity.md). Absent means the
    defaults, on; `enabled: false` turns the graph off."""

    enabled: bool = True
    id_types: list[IdTypeRule] = []
    blocked: BlockedValues = msgspec.field(default_factory=BlockedValues)
    # A merge that would give one profile more identifiers than this is refused.
    max_merge_identities: Annotated[int, msgspec.Meta(ge=2, le=100_000)] = 100


# --- Engage: computed traits and audiences (docs/engage.md; checked by sluice.engage.definitions)
ComputedKind = Literal[
    "count", "sum", "avg", "min", "max", "most_frequent", "first", "last", "unique_list",
    "unique_count",
]  # fmt: skip
CompareOp = Literal["=", "!=", ">", ">=", "<", "<=", "exists", "not_exists"]
# The internal source engage's events are appended under: destinations list it in `sources:`.
ENGAGE_SOURCE_ID = "sluice-engage"


class ComputedTrait(_Object):
    """A value computed per profile from its events: `kind` over the events named `event`
    (all events when absent) matching `where` (FQL), of `property` (`properties.<property>`;
    needed by every kind but count), in the last `within_days` days when set."""

    key: Id
    kind: ComputedKind
    event: NonEmptyStr | None = None
    where: NonEmptyStr | None = None
    property: NonEmptyStr | None = None
    within_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None
    # Sent as an identify with the trait, or as Segment's "Trait Computed" track.
    send_as: Literal["identify", "track"] = "identify"


class TraitCondition(_Object):
    """A profile trait (from identify/context.traits) compared with a value."""

    trait: NonEmptyStr
    op: CompareOp = "="
    value: Any = None


class ComputedCondition(_Object):
    """A computed trait's value compared with a value."""

    computed_trait: Id
    op: CompareOp = "="
    value: Any = None


class EventCondition(_Object):
    """Performed `event` (matching `where`) `op` `count` times, in the last `within_days` days."""

    event: NonEmptyStr | None = None
    where: NonEmptyStr | None = None
    op: Literal["=", "!=", ">", ">=", "<", "<="] = ">="
    count: Annotated[int, msgspec.Meta(ge=0)] = 1
    within_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None


class AudienceCondition(_Object):
    """All (`match: all`) or any of its conditions, groups nesting further conditions."""

    match: Literal["all", "any"] = "all"
    traits: list[TraitCondition] = []
    computed_traits: list[ComputedCondition] = []
    events: list[EventCondition] = []
    groups: list[AudienceCondition] = []


class Audience(_Object):
    """Profiles for which `condition` holds; entering and leaving are sent as events."""

    key: Id
    condition: AudienceCondition
    name: NonEmptyStr | None = None
    enabled: bool = True


# --- end of Engage


class Workspace(_Object):
    """A whole workspace; field order is the order `sluice export` writes."""

    workspace: NonEmptyStr = DEFAULT_WORKSPACE_NAME
    sources: list[Source] = []
    destinations: list[Destination] = []
    warehouses: list[Warehouse] = []
    tracking_plans: list[TrackingPlan] = []
    identity: IdentitySettings | None = None
    computed_traits: list[ComputedTrait] = []
    audiences: list[Audience] = []


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
        _check_json(path, value)
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
    from sluice.engage.definitions import check_engage  # it imports this module

    check_engage(ws)


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
