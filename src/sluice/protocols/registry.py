"""The plans of a workspace as the collector uses them: source id -> `Enforcer`.

Built when the workspace's config version changes (collector/workspace_view.py `reload`), never
per event; a source without a plan has no entry, so the item path pays one failed dict lookup.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from sluice.protocols.enforce import Enforcer
from sluice.protocols.plan import compile_plan, forget_except
from sluice.protocols.settings import Enforcement


class PlanBody(msgspec.Struct, kw_only=True):
    """A stored `tracking_plan` object's body (the workspace file's entry)."""

    id: str
    name: str | None = None
    sources: list[str] = []
    rules: dict[str, Any] = {}
    enforcement: Enforcement | None = None
    source_settings: dict[str, Enforcement] = {}


_decode = msgspec.json.Decoder(PlanBody).decode


def load_enforcers(bodies: Iterable[bytes]) -> dict[str, Enforcer]:
    """One `Enforcer` per source that has a plan (`bodies`: stored objects' JSON)."""
    enforcers: dict[str, Enforcer] = {}
    in_use: set[int] = set()
    for raw in bodies:
        body = _decode(raw)
        if not body.sources:
            continue
        plan = compile_plan(body.id, body.name or body.id, body.rules)
        in_use.add(id(plan))
        default = body.enforcement or Enforcement()
        for source_id in body.sources:
            settings = body.source_settings.get(source_id, default)
            enforcers[source_id] = Enforcer(source_id, plan, settings)
    forget_except(in_use)
    return enforcers
