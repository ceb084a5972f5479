"""Where transformations and PII rules run, built from the stored workspace once per version.

- At ingest, per source (`IngestStage`, collector/batch.py): the source-scoped transformations,
  then the source's PII rule. What is stored in the log is the changed event, so the archive,
  warehouses, lake, identity graph and every destination see the same thing, and a blocked
  field is never written anywhere (Segment: source-scoped transformations and "block at
  source" are irreversible, and not retroactive).
- In delivery, per destination (`DestinationStage`, delivery/plan.py): after the destination's
  filters, the destination-scoped transformations of the event's source, then the
  destination's PII rule, then its mappings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
from msgspec import Raw

from sluice.pii.classify import Classifier, CustomMatcher
from sluice.pii.control import SCANNED, PiiControl
from sluice.transform.compile import Transformer, build
from sluice.workspace.model_privacy import PiiRule, PiiSettings, Privacy
from sluice.workspace.model_transformations import Transformation

SKIPPED = "transform_skipped"  # a move or set that a value in the way prevented
BLOCKED = "pii_blocked"
HASHED = "pii_hashed"
_decode_raw = msgspec.json.Decoder().decode


class _ConfigReader(Protocol):
    def list_config(self, kind: str | None = None) -> Any: ...


@dataclass(frozen=True, slots=True)
class IngestStage:
    """One source's changes at ingest."""

    transformer: Transformer | None
    pii: PiiControl | None

    def apply(self, item: dict[str, Any]) -> list[tuple[str, int]]:
        """Change a normalised item in place; the counters to add (name, n)."""
        for key in SCANNED:  # the collector may leave fields as the client's raw JSON
            value = item.get(key)
            if type(value) is Raw:
                item[key] = _decode_raw(value)
        counts: list[tuple[str, int]] = []
        if self.transformer is not None:
            skipped = self.transformer.apply(item)
            if skipped:
                counts.append((SKIPPED, skipped))
        if self.pii is not None:
            blocked, hashed = self.pii.apply(item)
            if blocked:
                counts.append((BLOCKED, blocked))
            if hashed:
                counts.append((HASHED, hashed))
        return counts


@dataclass(frozen=True, slots=True)
class DestinationStage:
    """One destination's changes after its filters; `key` changes when they do."""

    by_source: Mapping[str, Transformer]
    pii: PiiControl | None
    key: bytes

    def __call__(self, event: dict[str, Any], source_id: str) -> None:
        transformer = self.by_source.get(source_id)
        if transformer is not None:
            transformer.apply(event)
        if self.pii is not None:
            self.pii.apply(event)


def _decode_all(store: _ConfigReader) -> tuple[list[Transformation], PiiSettings | None]:
    transformations = [
        msgspec.json.decode(obj.body, type=Transformation)
        for obj in store.list_config("transformation")
    ]
    pii = None
    for obj in store.list_config("privacy"):
        pii = msgspec.json.decode(obj.body, type=Privacy).pii
    return transformations, pii


def classifier_for(pii: PiiSettings) -> Classifier:
    custom = [
        CustomMatcher.build(m.name, m.classification, m.target, m.match, m.terms)
        for m in pii.matchers
    ]
    return Classifier(custom, defaults=pii.defaults)


def _control(classifier: Classifier, rule: PiiRule | None) -> PiiControl | None:
    if rule is None or (rule.red is None and rule.yellow is None):
        return None
    return PiiControl(classifier, rule.red, rule.yellow)


def ingest_stages(store: _ConfigReader) -> dict[str, IngestStage]:
    """Source id -> its stage, for sources that have something to do at ingest."""
    transformations, pii = _decode_all(store)
    return build_ingest(transformations, pii)


def build_ingest(
    transformations: Iterable[Transformation], pii: PiiSettings | None
) -> dict[str, IngestStage]:
    by_source: dict[str, list[Transformation]] = {}
    for t in transformations:
        if t.destination is None:
            by_source.setdefault(t.source, []).append(t)
    classifier = classifier_for(pii) if pii is not None else None
    stages: dict[str, IngestStage] = {}
    for source_id in {*by_source, *(pii.sources if pii is not None else ())}:
        transformer = build(by_source.get(source_id, ()))
        control = (
            _control(classifier, pii.sources.get(source_id))
            if classifier is not None and pii is not None
            else None
        )
        if transformer is not None or control is not None:
            stages[source_id] = IngestStage(transformer, control)
    return stages


def destination_stages(store: _ConfigReader) -> dict[str, DestinationStage]:
    """Destination id -> its stage, for destinations that have something to do."""
    transformations, pii = _decode_all(store)
    return build_destinations(transformations, pii)


def build_destinations(
    transformations: Iterable[Transformation], pii: PiiSettings | None
) -> dict[str, DestinationStage]:
    scoped: dict[str, dict[str, list[Transformation]]] = {}
    for t in transformations:
        if t.destination is not None:
            scoped.setdefault(t.destination, {}).setdefault(t.source, []).append(t)
    classifier = classifier_for(pii) if pii is not None else None
    stages: dict[str, DestinationStage] = {}
    for dest_id in {*scoped, *(pii.destinations if pii is not None else ())}:
        per_source = {
            source: transformer
            for source, ts in scoped.get(dest_id, {}).items()
            if (transformer := build(ts)) is not None
        }
        rule = pii.destinations.get(dest_id) if pii is not None else None
        control = _control(classifier, rule) if classifier is not None else None
        if not per_source and control is None:
            continue
        key = msgspec.json.encode(
            [
                sorted((msgspec.to_builtins(t) for ts in scoped.get(dest_id, {}).values()
                        for t in ts), key=lambda b: b["id"]),
                msgspec.to_builtins(rule) if control is not None else None,
                msgspec.to_builtins(pii.matchers) if control is not None and pii else None,
                pii.defaults if pii is not None else None,
            ]
        )  # fmt: skip
        stages[dest_id] = DestinationStage(per_source, control, key)
    return stages
