"""The live debugger of a source: its newest events, and new ones as they arrive (server-sent
events), with the items the collector rejected and why.

Reads never scan the log: the page asks the store for the newest events by sequence number
within the last `SCAN_WINDOW` positions, and the stream asks only for positions after the last
one it sent. The stream polls the store (any HTTP worker process may serve it; nothing is
pushed between processes) and ends after `STREAM_MAX_S`; the browser's EventSource reconnects
by itself, resuming from the `Last-Event-ID` the stream gave it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from sluice.spec.calls import CALL_TYPES
from sluice.store.base import Store, StoredEvent
from sluice.store.base_event_store import EventQuery, StoredRejection
from sluice.ui.changes import NotFound, find_source
from sluice.ui.site import Site, json_script
from sluice.workspace.sync import export_workspace

RECENT = 100
SCAN_WINDOW = 50_000  # newest log positions a page looks through for a source's events
STREAM_BATCH = 200
POLL_S = 0.5
KEEPALIVE_S = 15.0
STREAM_MAX_S = 300.0
REJECTED = 50


def event_json(events: Sequence[StoredEvent]) -> list[dict[str, Any]]:
    """Events for the browser, oldest first; payloads go through as they are stored."""
    return [
        {
            "seq": e.seq,
            "messageId": e.message_id,
            "type": e.type,
            "event": e.event,
            "receivedAt": e.received_at_ms,
            "payload": msgspec.Raw(e.payload),
        }
        for e in reversed(events)
    ]


def rejection_json(rejections: Sequence[StoredRejection]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "reason": r.reason,
            "detail": r.detail,
            "receivedAt": r.received_at_ms,
            "payload": r.payload.decode("utf-8", "replace"),
        }
        for r in reversed(rejections)
    ]


def encode(value: Any) -> str:
    # Literal line breaks in valid JSON are whitespace (inside strings they are escaped), and
    # an SSE `data:` line must not contain one.
    return msgspec.json.encode(value).replace(b"\r", b" ").replace(b"\n", b" ").decode()


def _filters(request: Request) -> tuple[str | None, str | None]:
    call_type = request.query_params.get("type") or None
    name = request.query_params.get("event") or None
    return (call_type if call_type in CALL_TYPES else None), name


def recent_events(
    log: Store, source_id: str, call_type: str | None, name: str | None, limit: int = RECENT
) -> tuple[list[StoredEvent], int]:
    """The newest matching events (newest first) and the log's end."""
    end = log.last_seq()
    query = EventQuery(limit, source_id, call_type, name, after_seq=max(end - SCAN_WINDOW, 0))
    return log.newest(query), end


def routes(site: Site) -> list[Route]:
    def load(source_id: str, call_type: str | None, name: str | None) -> dict[str, Any]:
        source = find_source(export_workspace(site.store), source_id)
        events, end = recent_events(site.log, source_id, call_type, name)
        rejections = site.log.rejections(REJECTED, source_id)
        return {
            "source": source,
            "initial": {
                "events": event_json(events),
                "rejections": rejection_json(rejections),
                "after": max([end, *(e.seq for e in events)]),
                "rejectedAfter": max([r.id for r in rejections], default=0),
            },
        }

    async def page(request: Request) -> Response:
        source_id = request.path_params["source_id"]
        call_type, name = _filters(request)
        try:
            data = await site.run(load, source_id, call_type, name)
        except NotFound:
            return site.render(request, "not_found.html", status=404, what=f"source {source_id}")
        initial = json_script(data["initial"])
        return site.render(
            request,
            "debugger.html",
            source=data["source"],
            initial=initial,
            call_types=CALL_TYPES,
            call_type=call_type or "",
            event_name=name or "",
            scan_window=SCAN_WINDOW,
        )

    async def stream(request: Request) -> Response:
        source_id = request.path_params["source_id"]
        call_type, name = _filters(request)
        after, rejected_after = _resume(request)
        log = await site.run(lambda: site.log)  # opened on first use: not in the event loop
        end = await site.run(log.last_seq)
        after = max(after, end - SCAN_WINDOW)

        async def events() -> AsyncIterator[str]:
            nonlocal after, rejected_after
            yield "retry: 2000\n\n"
            started = last_sent = time.monotonic()
            while time.monotonic() - started < STREAM_MAX_S:
                query = EventQuery(STREAM_BATCH, source_id, call_type, name, after_seq=after)
                found = await asyncio.to_thread(log.newest, query)
                rejected = await asyncio.to_thread(log.rejections, REJECTED, source_id)
                rejected = [r for r in rejected if r.id > rejected_after]
                if found:
                    after = found[0].seq
                if rejected:
                    rejected_after = rejected[0].id
                if found or rejected:
                    data = {
                        "events": event_json(found),
                        "rejections": rejection_json(rejected),
                        "more": len(found) == STREAM_BATCH,
                    }
                    yield f"id: {after}:{rejected_after}\ndata: {encode(data)}\n\n"
                    last_sent = time.monotonic()
                elif time.monotonic() - last_sent > KEEPALIVE_S:
                    yield ": keep-alive\n\n"
                    last_sent = time.monotonic()
                await asyncio.sleep(POLL_S)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    return [
        Route("/sources/{source_id}/debugger", page, methods=["GET"]),
        Route("/sources/{source_id}/debugger/stream", stream, methods=["GET"]),
    ]


def _resume(request: Request) -> tuple[int, int]:
    """Where the stream starts: the browser's `Last-Event-ID` (`seq:rejection id`) when it
    reconnects, else the `after` and `rejected_after` the page was rendered with."""
    last = request.headers.get("last-event-id", "")
    seq, _, rejected = last.partition(":")
    if not (seq.isdigit() and rejected.isdigit()):
        seq = request.query_params.get("after", "0")
        rejected = request.query_params.get("rejected_after", "0")
    try:
        return max(int(seq), 0), max(int(rejected), 0)
    except ValueError:
        return 0, 0
