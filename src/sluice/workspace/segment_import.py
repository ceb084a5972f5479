"""A Segment workspace, as its Public API describes it, turned into a Sluice workspace document.

The export is one JSON file holding the Public API's answers (docs/import.md shows the `curl`
calls): `sources` (GET /sources), `destinations` (GET /destinations), and per destination its
`filters` (GET /destination/{id}/filters) and `subscriptions` (GET
/destinations/{id}/subscriptions). Each may be the whole response body (`{"data": {...}}`), its
`data`, or the bare list; filters and subscriptions may be keyed by destination id or listed with
their `destinationId`.

What maps, and how:
- a source keeps its slug as id, its name, write keys and enabled flag;
- a destination instance (one per Segment source it is connected to) becomes one destination of
  the type Segment names (`metadata.slug`, e.g. `actions-amplitude`): Sluice's native one when it
  has it, else Segment's own code through the bridge (`segment:<slug>`, needs `sluice bridge
  install`); its settings keep Segment's names (native destinations read them);
- its subscriptions become its mappings (action, trigger, mapping, name, enabled); none: the
  type's presets apply, as in Segment;
- its filters are kept as they are (Sluice reads Segment's filter document).

Whatever cannot be used is not written but reported, with the reason: a type Sluice cannot run,
settings or mappings its type refuses (each destination is compiled as `sluice apply` would),
and the parts of a workspace this import does not cover.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from sluice.errors import SluiceError
from sluice.workspace.model_types import ID_PATTERN, WRITE_KEY_PATTERN

SEGMENT_PARTS = ("sources", "destinations", "filters", "subscriptions")
NOT_COVERED = ("warehouses", "tracking_plans", "trackingPlans", "functions", "spaces", "audiences")
_ID = re.compile(ID_PATTERN)
_WRITE_KEY = re.compile(WRITE_KEY_PATTERN)


class SegmentExportError(SluiceError):
    """The export file cannot be read as a Segment workspace export."""


@dataclass
class Skipped:
    """Something of the export not written, and why."""

    what: str  # e.g. "destination Braze (abc123)"
    why: str


@dataclass
class Imported:
    """The workspace document, and what was left out."""

    document: dict[str, Any]
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _items(value: Any, key: str) -> list[dict[str, Any]]:
    """The list under `key` whatever the wrapping: the response body, its `data`, or bare."""
    if isinstance(value, Mapping) and "data" in value and isinstance(value["data"], Mapping):
        value = value["data"]
    if isinstance(value, Mapping) and key in value:
        value = value[key]
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise SegmentExportError(f"`{key}`: expected a list of objects (or a Public API response)")
    return [dict(v) for v in value]


def _per_destination(value: Any, key: str) -> dict[str, list[dict[str, Any]]]:
    """Filters or subscriptions by destination id: `{destId: response}` or a list of objects
    naming their `destinationId`."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    if isinstance(value, Mapping) and not ({"data", key} & set(value)):
        for dest_id, answer in value.items():
            by_id.setdefault(str(dest_id), []).extend(_items(answer, key))
        return by_id
    for item in _items(value, key):
        dest_id = item.get("destinationId")
        if not isinstance(dest_id, str):
            raise SegmentExportError(f"`{key}`: an item has no destinationId: {item.get('id')!r}")
        by_id.setdefault(dest_id, []).append(item)
    return by_id


def slug_id(text: str, taken: set[str]) -> str:
    """A Sluice id from a Segment slug or name, unique among `taken` (which it joins)."""
    base = re.sub(r"[^a-z0-9_-]+", "-", text.strip().lower()).strip("-_")[:60] or "imported"
    if not _ID.match(base):
        base = f"x{base}"[:60]
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate


def convert(export: Mapping[str, Any]) -> Imported:
    """The Sluice workspace document an export describes (not yet compiled: `check`)."""
    if not isinstance(export, Mapping):
        raise SegmentExportError("expected a JSON object with sources, destinations, ...")
    unknown = sorted(set(export) - {*SEGMENT_PARTS, *NOT_COVERED, "workspace"})
    if unknown:
        raise SegmentExportError(f"unknown parts {unknown}: expected {', '.join(SEGMENT_PARTS)}")
    result = Imported({})
    workspace = export.get("workspace")
    if isinstance(workspace, Mapping):
        inner = workspace.get("data", workspace)
        inner = inner.get("workspace", inner) if isinstance(inner, Mapping) else {}
        name = inner.get("slug") or inner.get("name")
        if isinstance(name, str) and name.strip():
            result.document["workspace"] = name.strip()
    for part in NOT_COVERED:
        if export.get(part):
            result.skipped.append(Skipped(part, "not covered by this import: add it by hand"))
    source_ids = _sources(_items(export.get("sources"), "sources"), result)
    filters = _per_destination(export.get("filters") or {}, "filters")
    subscriptions = _per_destination(export.get("subscriptions") or {}, "subscriptions")
    destinations = _items(export.get("destinations"), "destinations")
    result.document["destinations"] = _destinations(
        destinations, source_ids, filters, subscriptions, result
    )
    return result


def _sources(items: Iterable[Mapping[str, Any]], result: Imported) -> dict[str, str]:
    """Sources into the document; returns Segment's source id -> Sluice's."""
    taken: set[str] = set()
    ids: dict[str, str] = {}
    sources = []
    for item in items:
        segment_id = str(item.get("id") or "")
        sluice_id = slug_id(str(item.get("slug") or item.get("name") or segment_id), taken)
        ids[segment_id] = sluice_id
        source: dict[str, Any] = {"id": sluice_id}
        if item.get("name"):
            source["name"] = str(item["name"])
        keys = [k for k in item.get("writeKeys") or [] if isinstance(k, str)]
        bad = [k for k in keys if not _WRITE_KEY.match(k)]
        if bad:
            result.notes.append(f"source {sluice_id}: {len(bad)} write key(s) not usable, left out")
        if good := [k for k in keys if _WRITE_KEY.match(k)]:
            source["write_keys"] = good
        if item.get("enabled") is False:
            source["enabled"] = False
        sources.append(source)
    result.document["sources"] = sources
    return ids


def _destinations(
    items: Iterable[Mapping[str, Any]],
    source_ids: Mapping[str, str],
    filters: Mapping[str, list[dict[str, Any]]],
    subscriptions: Mapping[str, list[dict[str, Any]]],
    result: Imported,
) -> list[dict[str, Any]]:
    taken: set[str] = set()
    documents = []
    for item in items:
        segment_id = str(item.get("id") or "")
        raw_metadata = item.get("metadata")
        metadata: Mapping[str, Any] = raw_metadata if isinstance(raw_metadata, Mapping) else {}
        label = f"destination {item.get('name') or metadata.get('name') or '?'} ({segment_id})"
        kind = metadata.get("slug") or metadata.get("name")
        if not isinstance(kind, str) or not kind:
            result.skipped.append(Skipped(label, "its metadata names no destination type"))
            continue
        doc: dict[str, Any] = {
            "id": slug_id(str(item.get("name") or kind), taken),
            "type": kind,
        }
        if item.get("name"):
            doc["name"] = str(item["name"])
        if item.get("enabled") is False:
            doc["enabled"] = False
        source = item.get("sourceId")
        if isinstance(source, str) and source:
            if source not in source_ids:
                result.skipped.append(Skipped(label, f"its source {source} is not in the export"))
                continue
            doc["sources"] = [source_ids[source]]
        doc["settings"] = _object(item.get("settings"), f"{label}: settings")
        if own_filters := filters.get(segment_id):
            doc["filters"] = [  # Segment's ids name nothing in Sluice
                {k: v for k, v in f.items() if k not in ("id", "sourceId", "destinationId")}
                for f in own_filters
            ]
        if own := subscriptions.get(segment_id):
            doc["mappings"] = [_mapping(s) for s in own]
        documents.append((label, doc))
    return [doc for label, doc in documents if _usable(label, doc, result)]


def _object(value: Any, where: str) -> dict[str, Any]:
    """A JSON object of the export (absent: empty), or a refusal naming where it is not one."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SegmentExportError(f"{where}: expected an object, got {type(value).__name__}")
    return dict(value)


def _mapping(subscription: Mapping[str, Any]) -> dict[str, Any]:
    mapping: dict[str, Any] = {"action": subscription.get("actionSlug")}
    if subscription.get("name"):
        mapping["name"] = subscription["name"]
    mapping["trigger"] = subscription.get("trigger")
    where = f"subscription {subscription.get('id')!r}: settings"
    mapping["mapping"] = _object(subscription.get("settings"), where)
    if subscription.get("enabled") is False:
        mapping["enabled"] = False
    return mapping


def _why_unknown(kind: str, error: Exception) -> str:
    """Why a type does not resolve, with what to do about it."""
    from sluice.bridge import location
    from sluice.bridge.errors import BridgeNotInstalled

    try:
        location.catalog()
    except BridgeNotInstalled:
        if kind.startswith("actions-"):
            return (
                f"{kind} is one of Segment's Actions destinations and Sluice has no native one:"
                " run `sluice bridge install` (Node.js 18.17+) to run Segment's own code for it,"
                " then import again"
            )
    if not kind.startswith(("actions-", "segment:")):
        return (
            f"{kind} is a classic (non-Actions) destination, whose code Segment does not"
            " publish: add its Actions version by hand (`sluice bridge catalog` lists them)"
        )
    return str(error)


def _usable(label: str, doc: dict[str, Any], result: Imported) -> bool:
    """Resolve the type and compile the destination as `sluice apply` would: a destination
    that would not apply is reported instead of written."""
    from sluice.delivery.config import DestinationConfigError, compile_destination
    from sluice.delivery.filters import FilterError, parse_filters
    from sluice.destinations.registry import UnknownDestination, load

    try:
        cls = load(doc["type"])
    except UnknownDestination as exc:
        result.skipped.append(Skipped(label, _why_unknown(doc["type"], exc)))
        return False
    doc["type"] = cls.id  # the canonical type: `amplitude`, `segment:braze-cloud-mode-actions`
    try:
        parse_filters(doc.get("filters", []), strict=True)
        compile_destination(msgspec.json.decode(msgspec.json.encode(doc)))
    except FilterError as exc:
        result.skipped.append(Skipped(label, f"filters: {exc.message}"))
        return False
    except DestinationConfigError as exc:
        result.skipped.append(Skipped(label, f"{exc.path}: {exc.message}"))
        return False
    if not doc.get("mappings"):
        result.notes.append(f"{doc['id']}: no subscriptions in the export: its presets apply")
    return True
