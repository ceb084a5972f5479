"""The catalogue of Segment's destinations, written once at install so listing never starts Node.

The sidecar describes every definition of the pinned package (names, auth fields and action
fields as JSON Schema from actions-core's own `fieldsToJsonSchema`, presets, and facts read
from each destination's compiled files). Which ones Sluice can run is decided here, from those
facts, by rules that are data (docs/bridge.md, "Support classes"):

- `unsupported`: the destination's own code opens non-HTTP connections (an AWS SDK client,
  kafkajs, ssh2-sftp-client: they would bypass the fetch proxy), needs a Segment-internal
  context (`engageDestinationCache`, `stateContext`, `transactionContext`), or is audience-only
  (its actions need Engage's audience context, `context.personas`).
- `needs_oauth`: HTTP only, but its auth scheme is `oauth2` / `oauth-managed`: usable once the
  user pastes a client id/secret and refresh token (no authorize flow in the package).
- `supported`: HTTP only, `custom`, `basic` or no auth; `zero_config` when it also ships an
  automatic preset, so no mapping has to be written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from sluice.bridge.errors import BridgeNotInstalled, UnknownSegmentDestination

Support = Literal["supported", "needs_oauth", "unsupported"]
SUPPORT_CLASSES: tuple[Support, ...] = ("supported", "needs_oauth", "unsupported")
OAUTH_SCHEMES = frozenset({"oauth2", "oauth-managed"})
TYPE_PREFIX = "segment:"
CATALOG_FILE = "catalog.json"
# Names that say "this is an audience sync", for definitions that declare `audienceConfig`.
AUDIENCE_NAME = re.compile(r"\b(audiences?|cohorts?|lists?)\b", re.IGNORECASE)


class ActionInfo(msgspec.Struct, kw_only=True):
    title: str
    description: str | None = None
    default_subscription: str | None = None
    fields: dict[str, Any] = {}  # JSON Schema of the action's mapping fields
    has_perform_batch: bool = False
    has_sync_mode: bool = False
    personas_required: bool = False  # a required field defaults to $.context.personas...
    dynamic_fields: list[str] = []
    depends_on: dict[str, Any] = {}  # field -> Segment's condition for showing it


class Preset(msgspec.Struct, kw_only=True):
    name: str
    partner_action: str
    subscribe: str | None = None
    mapping: dict[str, Any] = {}
    type: str | None = None

    def automatic_in(self, actions: Mapping[str, ActionInfo]) -> bool:
        """Applies with no mapping written: automatic, has a trigger, and its action is one of
        this (cloud) definition's (Amplitude's session preset points at a browser action)."""
        return self.type == "automatic" and bool(self.subscribe) and self.partner_action in actions


class CatalogEntry(msgspec.Struct, kw_only=True):
    slug: str  # the package's folder name: the type is `segment:<slug>`
    name: str  # Segment's display name, e.g. "Braze Cloud Mode (Actions)"
    definition_slug: str | None = None  # the definition's own slug, e.g. "actions-braze-cloud"
    metadata_id: str | None = None
    description: str | None = None
    mode: str | None = None
    auth_scheme: str | None = None
    auth_fields: dict[str, Any] = {}  # JSON Schema of the settings
    auth_depends_on: dict[str, Any] = {}  # setting -> Segment's condition for showing it
    has_test_authentication: bool = False
    has_refresh_access_token: bool = False
    has_audience_config: bool = False
    # Whether the definition has `onDelete` (privacy/targets/bridged.py); None in a catalogue
    # written before Sluice asked (the sidecar then says, when a deletion runs).
    has_on_delete: bool | None = None
    presets: list[Preset] = []
    actions: dict[str, ActionInfo] = {}
    non_http_clients: list[str] = []
    internal_contexts: list[str] = []
    support: Support = "unsupported"
    reason: str = ""
    zero_config: bool = False

    @property
    def type(self) -> str:
        return TYPE_PREFIX + self.slug

    def automatic_presets(self) -> list[Preset]:
        return [p for p in self.presets if p.automatic_in(self.actions)]


class CatalogDoc(msgspec.Struct, kw_only=True):
    package: str  # the installed @segment/action-destinations version
    node: str
    lock_sha256: str = ""
    sidecar_sha256: str = ""
    destinations: list[CatalogEntry] = []
    errors: list[dict[str, Any]] = []  # definitions that failed to load, with the error


_decoder = msgspec.json.Decoder(CatalogDoc)


def audience_only(entry: CatalogEntry) -> bool:
    """Every action needs Engage's audience context, or the definition declares audience
    creation and is an audience sync by its actions or by its name."""
    actions = list(entry.actions.values())
    if actions and all(a.personas_required for a in actions):
        return True
    if not entry.has_audience_config:
        return False
    return all(a.has_sync_mode or a.personas_required for a in actions) or bool(
        AUDIENCE_NAME.search(entry.name)
    )


def classify(entry: CatalogEntry) -> tuple[Support, str]:
    """The support class of one destination and why (rules in the module docstring)."""
    if entry.non_http_clients:
        clients = ", ".join(entry.non_http_clients)
        return "unsupported", f"opens its own connections ({clients}), outside the HTTP proxy"
    if entry.internal_contexts:
        return "unsupported", f"needs Segment-internal {', '.join(entry.internal_contexts)}"
    if not entry.actions:
        return "unsupported", "defines no actions"
    if audience_only(entry):
        return "unsupported", "audience-only: its actions need Segment Engage audiences"
    scheme = entry.auth_scheme or "none"
    if scheme in OAUTH_SCHEMES:
        return (
            "needs_oauth",
            f"{scheme} authentication: settings.oauth needs a client and a refresh token",
        )
    return "supported", f"HTTP only, {scheme} authentication"


def build_catalog(
    raw: Mapping[str, Any], *, lock_sha256: str = "", sidecar_sha256: str = ""
) -> CatalogDoc:
    """The catalogue from the sidecar's raw description, with support classes."""
    ids: Mapping[str, str] = raw.get("metadata_ids") or {}
    entries = []
    for item in raw.get("destinations") or []:
        entry = msgspec.convert(item, CatalogEntry)
        entry.metadata_id = ids.get(entry.slug)
        entry.support, entry.reason = classify(entry)
        entry.zero_config = entry.support == "supported" and bool(entry.automatic_presets())
        entries.append(entry)
    return CatalogDoc(
        package=str(raw.get("package") or ""),
        node=str(raw.get("node") or ""),
        lock_sha256=lock_sha256,
        sidecar_sha256=sidecar_sha256,
        destinations=sorted(entries, key=lambda e: e.slug),
        errors=list(raw.get("errors") or []),
    )


class Catalog:
    """The installed catalogue: lookup by any name a user may give, and counts."""

    def __init__(self, doc: CatalogDoc) -> None:
        self.doc = doc
        self.entries = {e.slug: e for e in doc.destinations}
        self._names: dict[str, str] = {}
        for e in doc.destinations:
            for alias in (e.definition_slug, e.metadata_id, e.name, f"actions-{e.slug}", e.slug):
                if alias:
                    self._names.setdefault(alias.casefold(), e.slug)

    @classmethod
    def load(cls, path: Path) -> Catalog:
        try:
            return cls(_decoder.decode(path.read_bytes()))
        except FileNotFoundError:
            raise BridgeNotInstalled(
                f"no bridge catalogue at {path}: run `sluice bridge install`"
            ) from None

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> Catalog:
        return cls.load(Path(data_dir) / "bridge" / CATALOG_FILE)

    def resolve(self, name: str) -> CatalogEntry:
        """`segment:<slug>`, the slug, the metadata id, Segment's display name (any case) or
        the definition's slug / `actions-<slug>`."""
        key = name.removeprefix(TYPE_PREFIX).strip().casefold()
        slug = self._names.get(key)
        if slug is None:
            near = sorted(s for s in self.entries if key and (key in s or s in key))[:5]
            hint = f" (did you mean {', '.join(TYPE_PREFIX + s for s in near)}?)" if near else ""
            raise UnknownSegmentDestination(
                f"no Segment destination {name!r} in @segment/action-destinations "
                f"{self.doc.package}{hint}"
            )
        return self.entries[slug]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(SUPPORT_CLASSES, 0)
        for entry in self.entries.values():
            counts[entry.support] += 1
        return counts

    def of_class(self, support: str | None = None) -> list[CatalogEntry]:
        return [e for e in self.entries.values() if support is None or e.support == support]


def write_catalog(doc: CatalogDoc, path: Path) -> None:
    """Atomically: a reader never sees half a catalogue."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(doc))
    tmp.replace(path)
