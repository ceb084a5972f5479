"""The Protocols page: per source, the tracking plan's violations (counted per event, field and
type, with recent examples) and the schema view (events seen in the log against the plan:
planned and seen, unplanned but seen, planned and never seen; each event's properties with the
types they came with).

Counts come from the counters (exact since the start); examples and the schema view from the
newest `RECENT` events of the log, so the page costs one bounded read, whatever the log's size.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.protocols.counters import BLOCKED, violation_counts
from sluice.protocols.plan import compile_plan
from sluice.protocols.registry import PlanBody
from sluice.ui.site import Site

RECENT = 5_000  # newest events read for examples and the schema view
EXAMPLES = 3  # per (event, field, type)
_JSON = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null",
         list: "array", dict: "object"}  # fmt: skip
_decode_plan = msgspec.json.Decoder(PlanBody).decode


def routes(site: Site) -> list[Route]:
    async def page(request: Request) -> Response:
        source = request.query_params.get("source") or None
        return site.render(request, "protocols.html", tab="protocols",
                           **await site.run(load, site, source))  # fmt: skip

    return [Route("/protocols", page, methods=["GET"])]


def load(site: Site, only: str | None) -> dict[str, Any]:
    store = site.store
    plans: dict[str, tuple[str, set[tuple[str, str]]]] = {}  # source -> (plan id, planned)
    for obj in store.list_config("tracking_plan"):
        body = _decode_plan(obj.body)
        compiled = compile_plan(body.id, body.name or body.id, body.rules)
        planned = set(compiled.events)
        for source_id in body.sources:
            plans[source_id] = (body.id, planned)
    counters = store.counters()
    counts = violation_counts(counters, only)
    blocked = {s: n for (s, name), n in counters.items() if name == BLOCKED}
    examples: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    seen: dict[str, dict[tuple[str, str], dict[str, set[str]]]] = defaultdict(dict)
    start = max(0, store.last_seq() - RECENT)
    for event in reversed(store.read_after(start, RECENT)):  # newest first
        if only and event.source_id != only:
            continue
        try:
            body = msgspec.json.decode(event.payload)
        except msgspec.DecodeError:
            continue
        call = body.get("type")
        name = body.get("event") if call == "track" else body.get("name")
        key = (str(call), name if isinstance(name, str) else "")
        section = body.get("traits" if call in ("identify", "group") else "properties")
        props = seen[event.source_id].setdefault(key, {})
        if isinstance(section, dict):
            for prop, value in section.items():
                props.setdefault(prop, set()).add(_JSON.get(type(value), "unknown"))
        label = key[1] if key[1] else key[0]
        for violation in _violations(body):
            slot = examples[(event.source_id, label, str(violation.get("field")),
                             str(violation.get("type")))]  # fmt: skip
            if len(slot) < EXAMPLES:
                slot.append({"message_id": event.message_id, "seq": event.seq,
                             "description": violation.get("description", "")})  # fmt: skip
    violations = [
        {**row._asdict(), "examples": examples.get((row.source_id, row.event, row.field, row.type))}
        for row in counts
    ]
    sources = sorted(set(seen) | set(plans) | {r.source_id for r in counts} | set(blocked))
    if only:
        sources = [s for s in sources if s == only]
    return {
        "only": only,
        "violations": violations,
        "blocked": blocked,
        "schemas": [_schema(s, plans.get(s), seen.get(s, {})) for s in sources],
        "recent": RECENT,
    }


def _violations(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The violations written on a stored event (`context.protocols.violations`)."""
    context = body.get("context")
    mark = context.get("protocols") if isinstance(context, dict) else None
    found = mark.get("violations") if isinstance(mark, dict) else None
    return [v for v in found if isinstance(v, dict)] if isinstance(found, list) else []


def _schema(
    source_id: str,
    plan: tuple[str, set[tuple[str, str]]] | None,
    seen: dict[tuple[str, str], dict[str, set[str]]],
) -> dict[str, Any]:
    planned = plan[1] if plan else set()
    rows = []
    for key in sorted(set(seen) | planned):
        call, name = key
        if call in ("identify", "group", "alias") and key not in planned:
            status = "seen"  # identify and group are planned by traits, not by name
        elif key in planned:
            status = "planned" if key in seen else "never seen"
        else:
            status = "unplanned" if plan and call == "track" else "seen"
        props = seen.get(key, {})
        rows.append({
            "call": call, "name": name, "status": status,
            "properties": [(p, sorted(t)) for p, t in sorted(props.items())],
        })  # fmt: skip
    return {"source": source_id, "plan": plan[0] if plan else None, "events": rows}
