"""Event lookup: a messageId in, every hop of the event out.

Received (source, log position), deduplication, then per destination what `delivery/trace.py`
says (`event_hops`, shared with `sluice trace`: delivered, filtered and by which rule, retrying,
parked with the exchange), then the archive and each warehouse, judged by their positions in
the log. Finding the event is a scan
of the log (the log has no index on messageId, see docs/architecture.md), done on the UI's own
store connection so that it never holds up the collector of this process.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.archive.writer import CURSOR as ARCHIVE_CURSOR
from sluice.delivery.trace import event_hops
from sluice.ui.preview import explain
from sluice.ui.site import Site
from sluice.ui.warehouses import warehouse_positions
from sluice.warehouse.factory import parse_warehouse_config, warehouse_bodies
from sluice.warehouse.naming import Namer
from sluice.warehouse.planner import wants_warehouse

MAX_MESSAGE_ID = 200
STANDARD_TABLES = {
    "identify": ("identifies", "users"),
    "group": ("groups", "accounts"),
    "alias": ("aliases",),
    "page": ("pages",),
    "screen": ("screens",),
    "track": ("tracks",),
}
IDENTIFIER_LIMITS = {"duckdb": 120, "postgres": 63}


def tables_of(namer: Namer, source_id: str, call_type: str, event: str | None) -> list[str]:
    """The warehouse tables an event's rows go to, as `schema.table`."""
    schema = namer.schema(source_id)
    tables = list(STANDARD_TABLES.get(call_type, ()))
    if call_type == "track" and event and (table := namer.event_table(event)):
        tables.append(table)
    return [f"{schema}.{t}" for t in tables]


def routes(site: Site) -> list[Route]:
    def warehouse_hops(item: dict[str, Any], payload: dict[str, Any]) -> list[dict[str, Any]]:
        positions = warehouse_positions(site.settings, site.store)
        hops = []
        for body in warehouse_bodies(site.store):
            config = parse_warehouse_config(body)
            position = positions.get(config.id, 0)
            hop: dict[str, Any] = {"warehouse": config.id, "type": config.type}
            namer = Namer(IDENTIFIER_LIMITS.get(config.type, 63))
            if config.sources and item["source"] not in config.sources:
                hop.update(status="not_connected")
            elif not wants_warehouse(payload, config.id):
                hop.update(status="skipped", detail="integrations.Warehouses leaves it out")
            elif isinstance(position, str):
                hop.update(status="unknown", detail=position)
            elif position >= item["seq"]:
                tables = tables_of(namer, item["source"], item["type"], item["event"])
                hop.update(status="loaded", tables=tables)
            else:
                hop.update(status="pending", detail=f"loaded up to log position {position}")
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

    async def page(request: Request) -> Response:
        message_id = request.query_params.get("message_id", "").strip()[:MAX_MESSAGE_ID]
        found = await site.run(lookup, message_id) if message_id else []
        return site.render(request, "lookup.html", message_id=message_id, found=found)

    return [Route("/lookup", page, methods=["GET"])]
