"""The workspace document: what a workspace file holds, as msgspec Structs, and its own rules.

The Structs check shape and types (msgspec, with unknown fields refused so that a typo is an
error rather than a setting silently ignored); `check_workspace` adds the rules that span several
objects: unique ids, unique write keys, references to existing sources, JSON-only free-form values,
and the warehouse settings every backend shares (`max_event_tables`).

Here: the sources, destinations, warehouses, tracking plans, identity settings and `Workspace`.
Elsewhere: the base Struct and the field types (`model_types`), the Engage, transformations and
privacy sections (`model_engage`, `model_transformations`, `model_privacy`), and the rules
(`model_checks`).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from sluice.protocols.settings import Enforcement
from sluice.workspace.model_engage import Audience, ComputedTrait
from sluice.workspace.model_privacy import Privacy
from sluice.workspace.model_transformations import Transformation
from sluice.workspace.model_types import DocumentStruct, FreeForm, Id, IdType, NonEmptyStr, WriteKey

DEFAULT_WORKSPACE_NAME = "default"
# A warehouse setting of every backend (warehouse/factory.py reads it).
MAX_EVENT_TABLES = "max_event_tables"
WarehouseType = Literal["duckdb", "postgres", "lake"]
WebhookProvider = Literal["stripe", "github", "shopify", "twilio", "standard-webhooks", "generic"]


class WebhookSignature(DocumentStruct):
    """How a `generic` webhook is signed: an HMAC of the body in a header, or a bearer token."""

    scheme: Literal["hmac", "bearer"] = "hmac"
    header: NonEmptyStr = "X-Signature"
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""


class WebhookSource(DocumentStruct):
    """A source fed by a third-party tool's webhooks (docs/sources.md): each delivery is
    verified with `secrets` by the provider's scheme, then mapped to a Spec event."""

    provider: WebhookProvider
    secrets: list[NonEmptyStr] = []  # signing secrets (several during a rotation)
    tolerance_s: Annotated[int, msgspec.Meta(ge=1, le=86_400)] = 300
    signature: WebhookSignature | None = None  # generic only
    # Provider event type -> mapping (mapping kit) to a Spec event, over the built-in ones.
    mappings: dict[NonEmptyStr, FreeForm] = {}
    unmapped: Literal["track", "drop"] = "track"  # an event type no mapping names


class Source(DocumentStruct):
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


class Destination(DocumentStruct):
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


class Warehouse(DocumentStruct):
    """A database that receives the events of some sources as Segment-shaped tables."""

    id: Id
    type: WarehouseType
    settings: FreeForm = {}
    sources: list[Id] = []


class TrackingPlan(DocumentStruct):
    """The events some sources may send, and what happens to the others (docs/protocols.md):
    `rules` in Segment's shape (checked and compiled by `sluice.protocols`), `enforcement` for
    every source of the plan, `source_settings` replacing it for one source."""

    id: Id
    name: str | None = None
    sources: list[Id] = []
    rules: FreeForm = {}
    enforcement: Enforcement | None = None
    source_settings: dict[Id, Enforcement] = {}


class IdTypeRule(DocumentStruct):
    """One identifier type's rule (docs/identity.md): at most `limit` values on a profile,
    counting only values seen in the last `window_days` when set; `priority` 1 is the highest
    (defaults: user_id 1, email 2, then alphabetical). `trait` promotes `traits.<trait>` (and
    `context.traits.<trait>`) to this type, for a custom identifier."""

    type: IdType
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    window_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None
    priority: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    trait: NonEmptyStr | None = None


class BlockedValues(DocumentStruct):
    """Values never used as identifiers: Segment's suggested list and well-known junk ids
    (`suggested`, on by default), plus the workspace's own exact values and regexes."""

    suggested: bool = True
    values: list[str] = []
    patterns: list[NonEmptyStr] = []


class IdentitySettings(DocumentStruct):
    """The `identity:` section: the identity graph's rules (docs/identity.md). Absent means the
    defaults, on; `enabled: false` turns the graph off."""

    enabled: bool = True
    id_types: list[IdTypeRule] = []
    blocked: BlockedValues = msgspec.field(default_factory=BlockedValues)
    # A merge that would give one profile more identifiers than this is refused.
    max_merge_identities: Annotated[int, msgspec.Meta(ge=2, le=100_000)] = 100


class Workspace(DocumentStruct):
    """A whole workspace; field order is the order `sluice export` writes."""

    workspace: NonEmptyStr = DEFAULT_WORKSPACE_NAME
    sources: list[Source] = []
    destinations: list[Destination] = []
    warehouses: list[Warehouse] = []
    tracking_plans: list[TrackingPlan] = []
    identity: IdentitySettings | None = None
    computed_traits: list[ComputedTrait] = []
    audiences: list[Audience] = []
    transformations: list[Transformation] = []
    privacy: Privacy | None = None
