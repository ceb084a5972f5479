"""Event lookup: a messageId in, every hop of the event out; or an event name in, its tables.

Received (source, log position), deduplication, then per destination what `delivery/trace.py`
says (`event_hops`, shared with `sluice trace`: delivered, filtered and by which rule, retrying,
parked with the exchange), then the archive and each warehouse, judged by their positions in
the log. Finding the event is a scan
of the log (the log has no index on messageId, see docs/architecture.md), done on the UI's own
store connection so that it never holds up the collector of this process.

An event name's lookup says, per warehouse and source schema, which table its rows are in: its
own, or `tracks` only when the name came after its source had all the event tables it may
have (`max_event_tables`), which is where someone missing a table needs to be told why.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.archive.writer import CURSOR as ARCHIVE_CURSOR
from sluice.delivery.trace import event_hops
from sluice.ui.preview import explain
from sluice.ui.site import Site
from sluice.ui.warehouses import WarehouseView, warehouse_views
from sluice.warehouse.factory import parse_warehouse_config, warehouse_bodies
from sluice.warehouse.naming import Namer
from sluice.warehouse.planner import wants_warehouse

MAX_MESSAGE_ID = 200
MAX_EVENT_NAME = 1000  # longer names than tables hold: their table ends in a hash of it all
STANDARD_TABLES = {
    "identify": ("identifies", "users"),
    "group": ("groups", "accounts"),
    "alias": ("aliases",),
    "page": ("pages",),
    "screen": ("screens",),
    "track": ("tracks",),
}
IDENTIFIER_LIMITS = {"duckdb": 120, "postgres": 63}


def tables_of(
    namer: Namer,
    source_id: str,
    call_type: str,
    event: str | None,
    capped: Collection[str] = (),
) -> list[str]:
    """The warehouse tables an event's rows go to, as `schema.table`; an event table in
    `capped` (its name got no table: `max_event_tables`) is not one of them."""
    schema = namer.schema(source_id)
    tables = list(STANDARD_TABLES.get(call_type, ()))
    table = namer.event_table(event) if call_type == "track" and event else ""
    if table and table not in capped:
        tables.append(table)
    return [f"{schema}.{t}" for t in tables]


def capped_note(view: WarehouseView, schema: str) -> str:
    return (
        f"no table of its own: capped at {view.max_event_tables:,} event tables"
        f" (max_event_tables), its rows are in {schema}.tracks"
    )


def event_places(view: WarehouseView, sources: list[str], event: str) -> list[dict[str, Any]]:
    """Per source schema of the warehouse, where the rows of events named `event` go."""
    namer = Namer(IDENTIFIER_LIMITS.get(view.type, 63))
    table = namer.event_table(event)
    places = []
    for source in sources:
        schema = namer.schema(source)
        place: dict[str, Any] = {"warehouse": view.id, "type": view.type, "schema": schema}
        capped = view.capped_table(schema, table) if table else None
        if not table:
            place.update(
                status="no_table",
                detail=f"the name has no ASCII letter or digit: its rows are in {schema}.tracks",
            )
        elif (schema, table) in view.table_names:
            place.update(status="loaded", tables=[f"{schema}.{table}", f"{schema}.tracks"])
            if capped is not None:
                place["detail"] = (
                    f"{capped.events:,} of its events went to {schema}.tracks only while the"
                    " name was capped (max_event_tables was raised since)"
                )
        elif capped is not None:
            place.update(
                status="capped",
                detail=f"{capped_note(view, schema)} ({capped.events:,} events so far)",
            )
        elif view.event_tables(schema) >= view.max_event_tables:
            place.update(
                status="not_loaded",
                detail=f"none loaded; the schema has all its {view.max_event_tables:,} event"
                f" tables, so they would load into {schema}.tracks only",
            )
        else:
            place.update(
                status="not_loaded", detail=f"none loaded yet; they will get {schema}.{table}"
            )
        places.append(place)
    return places


def routes(site: Site) -> list[Route]:
    def warehouse_hops(item: dict[str, Any], payload: dict[str, Any]) -> list[dict[str, Any]]:
        found = {v.id: v for v in warehouse_views(site.settings, site.store, details=False)}
        hops = []
        for body in warehouse_bodies(site.store):
            config = parse_warehouse_config(body)
            view = found.get(config.id)
            hop: dict[str, Any] = {"warehouse": config.id, "type": config.type}
            namer = Namer(IDENTIFIER_LIMITS.get(config.type, 63))
            if config.sources and item["source"] not in config.sources:
                hop.update(status="not_connected")
            elif not wants_warehouse(payload, config.id):
                hop.update(status="skipped", detail="integrations.Warehouses leaves it out")
            elif view is None or (view.error and not view.position):
                hop.update(status="unknown", detail=view.error if view else "not readable")
            elif view.position >= item["seq"]:
                schema = namer.schema(item["source"])
                table = namer.event_table(item["event"]) if item["event"] else ""
                capped = view.capped_table(schema, table) if item["type"] == "track" else None
                if capped is not None and (schema, table) not in view.table_names:
                    hop["note"] = capped_note(view, schema)
                tables = tables_of(
                    namer,
                    item["source"],
                    item["type"],
                    item["event"],
                    [table] if "note" in hop else (),
                )
                hop.update(status="loaded", tables=tables)
            else:
                hop.update(status="pending", detail=f"loaded up to log position {view.position}")
            hops.append(hop)
        return hops

    def lookup(message_id: str) -> list[dict[str, Any]]:
        log = site.log
        archive = log.find_cursor(ARCHIVE_CURSOR)
        counters = log.counters()
        found = []
        for stored in log.find_events(message_id):  # the one scan of the log
            payload = msgspec.json.decode(stored.payload)
            item: dict[str, Any] = {
                "source": stored.source_id,
                "seq": stored.seq,
                "type": stored.type,
                "event": stored.event,
                "received_at_ms": stored.received_at_ms,
                "payload": payload,
                "duplicates_of_source": counters.get((stored.source_id, "duplicates"), 0),
                "archived": archive is not None and archive >= stored.seq,
                "destinations": event_hops(log, stored),
            }
            item["warehouses"] = warehouse_hops(item, payload)
            found.append(item)
            for hop in item["destinations"]:
                if hop.get("status") == "filtered" and hop.get("reason"):
                    hop["explanation"] = explain(hop["reason"])
        return found

    def lookup_event(event: str) -> list[dict[str, Any]]:
        sources = [source.id for source in site.store.sources()]
        places = []
        for view in warehouse_views(site.settings, site.store, details=False):
            if view.error and not view.position:
                places.append(
                    {"warehouse": view.id, "type": view.type, "status": "unknown"}
                    | {"detail": view.error}
                )
                continue
            found = event_places(view, list(view.sources) or sources, event)
            places.extend(sorted(found, key=lambda p: p["status"] == "not_loaded"))
        return places

    async def page(request: Request) -> Response:
        message_id = request.query_params.get("message_id", "").strip()[:MAX_MESSAGE_ID]
        event = request.query_params.get("event", "")[:MAX_EVENT_NAME]
        found = await site.run(lookup, message_id) if message_id else []
        places = await site.run(lookup_event, event) if event.strip() else []
        return site.render(
            request,
            "lookup.html",
            message_id=message_id,
            found=found,
            event=event,
            places=places,
        )

    return [Route("/lookup", page, methods=["GET"])]
