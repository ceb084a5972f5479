"""The conformance suite's preset cases: Segment-spec events through destinations' presets.

The generator's cases (harness.py) exercise every action's fields with random values; these
exercise what a user gets with zero configuration: every automatic preset of every supported
destination (its trigger, its mapping of a real event) against the events of
spec_events.json, written from the Segment spec (every call type, browser and mobile contexts,
ecommerce, numbers as strings, nested objects, arrays, unicode, nulls, no userId).

On Segment's side the preset's trigger is matched by Segment's own FQL and, when it matches,
`testAction(partnerAction, {mapping: preset.mapping})` runs (segment_side.js); on Sluice's side
the same trigger and mapping form a destination document, so Sluice's FQL decides whether the
event is sent: an event Segment's FQL does not match must be filtered, one it matches must make
byte-identical requests.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from sluice.bridge.catalog import Catalog

SPEC_EVENTS_JSON = Path(__file__).resolve().parent / "spec_events.json"
VARIANT_PREFIX = "spec "


@cache
def _events() -> dict[str, Any]:
    events: dict[str, Any] = json.loads(SPEC_EVENTS_JSON.read_text())["events"]
    return events


def spec_events() -> dict[str, Any]:
    """Event name → a Segment-spec event (messageId and times are added by both sides)."""
    return dict(_events())


def preset_indexes(catalog: Catalog) -> dict[str, list[int]]:
    """Per runnable destination with automatic presets, their indexes in its presets."""
    indexes: dict[str, list[int]] = {}
    runnable = catalog.of_class("supported") + catalog.of_class("needs_oauth")
    for entry in runnable:
        found = [i for i, p in enumerate(entry.presets) if p.automatic_in(entry.actions)]
        if found:
            indexes[entry.slug] = found
    return indexes


def is_spec_variant(variant: str) -> bool:
    return variant.startswith(VARIANT_PREFIX)
