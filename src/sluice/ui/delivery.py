"""Event delivery of one destination: what happened to its events, what is retrying (with the
buttons to retry it now or park it) and its latest failures (with the button that sends parked
events again).

Everything comes from the delivery state's counters and side tables (`delivery/stats.py`),
never from the log: the page costs the same with a thousand events or a billion. The last hour
is drawn from the per-minute timeline (at most 60 rows read).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.delivery.stats import DEFAULT_TIMELINE_MINUTES, destination_stats, recent_timeline
from sluice.store.base_delivery import LATENCY_BUCKETS_MS, ParkedEvent
from sluice.ui.changes import NotFound, find_destination
from sluice.ui.charts import bars, columns, latency_label, timeline
from sluice.ui.preview import explain
from sluice.ui.site import Site, redirect
from sluice.workspace.sync import export_workspace

SHOWN = 20


def _exchange(raw: bytes) -> Any:
    """A stored request or response for display: a JSON body is shown as JSON, not as a string
    of escaped JSON."""
    try:
        exchange = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw.decode("utf-8", "replace")
    body = exchange.get("body") if isinstance(exchange, dict) else None
    if isinstance(body, str) and body[:1] in ("{", "["):
        with contextlib.suppress(msgspec.DecodeError):
            exchange["body"] = msgspec.json.decode(body)
    return exchange


def parked_view(p: ParkedEvent) -> dict[str, Any]:
    return {
        "id": p.id,
        "message_id": p.message_id,
        "seq": p.seq,
        "parked_at_ms": p.parked_at_ms,
        "reason": p.reason,
        "attempts": p.attempts,
        "state": p.state,
        "request": _exchange(p.request),
        "response": _exchange(p.response),
    }


def routes(site: Site) -> list[Route]:
    def load(destination_id: str) -> dict[str, Any]:
        store = site.store
        _, destination = find_destination(export_workspace(store), destination_id)
        stats = destination_stats(store).get(destination_id, {})
        histogram = store.latency_histogram(destination_id)
        retrying = [r for _, r in store.retrying(destination_id)]
        parked = store.parked(
            destination_id, ("parked", "retry_requested"), SHOWN, newest_first=True
        )
        outcome = bars(
            [
                ("delivered", stats.get("delivered", 0), "ok"),
                ("filtered", stats.get("filtered", 0), "muted"),
                ("retrying now", stats.get("retrying", 0), "warn"),
                ("parked now", stats.get("parked", 0), "bad"),
            ],
            "What happened to this destination's events",
        )
        slowest = max([b for b in LATENCY_BUCKETS_MS if histogram.get(b)], default=0)
        # A steady axis: every bucket from 5 ms up to the slowest seen (at least 1 s).
        axis = [b for b in LATENCY_BUCKETS_MS if b <= max(slowest, 1000)] if slowest else []
        latency = columns(
            [(latency_label(b), histogram.get(b, 0)) for b in axis],
            "Delivery latency (receipt to 2xx), events per bucket",
            "ok",
        )
        last_hour = timeline(
            recent_timeline(store, destination_id, DEFAULT_TIMELINE_MINUTES),
            "Events per minute over the last hour: delivered, filtered and parked, "
            "and the most events retrying at once",
        )
        filtered = sorted((stats.get("filtered_by_reason") or {}).items(), key=lambda kv: -kv[1])
        return {
            "destination": destination,
            "stats": stats,
            "outcome": outcome,
            "timeline": last_hour,
            "latency": latency if histogram else "",
            "filtered": [(reason, n, explain(reason)) for reason, n in filtered],
            "retrying": retrying[:SHOWN],
            "parked": [parked_view(p) for p in parked],
        }

    async def page(request: Request) -> Response:
        destination_id = request.path_params["destination_id"]
        try:
            data = await site.run(load, destination_id)
        except NotFound:
            return site.render(
                request, "not_found.html", status=404, what=f"destination {destination_id}"
            )
        return site.render(request, "delivery.html", tab="delivery", **data)

    async def retry(request: Request) -> Response:
        destination_id = request.path_params["destination_id"]
        form = await request.form()
        ids = [int(str(v)) for v in form.getlist("id") if str(v).isdigit()]
        count = await site.run(site.store.request_parked_retry, destination_id, ids)
        plural = "event" if count == 1 else "events"
        return redirect(
            f"/destinations/{destination_id}/delivery",
            f"{count} parked {plural} will be sent again within seconds.",
        )

    async def retrying(request: Request) -> Response:
        """Retry now or park (skip) one retrying event, or all of the destination's."""
        destination_id = request.path_params["destination_id"]
        form = await request.form()
        ids = [str(v) for v in form.getlist("message_id") if str(v)]
        now_ms = int(time.time() * 1000)
        if form.get("do") == "park":
            count = await site.run(
                lambda: site.store.park_retrying(destination_id, ids, now_ms=now_ms)
            )
            done = "parked; send them again from the parked list below"
        else:
            count = await site.run(lambda: site.store.retry_now(destination_id, ids, now_ms=now_ms))
            done = "will be sent again within a second"
        plural = "event" if count == 1 else "events"
        return redirect(f"/destinations/{destination_id}/delivery", f"{count} {plural} {done}.")

    return [
        Route("/destinations/{destination_id}/delivery", page, methods=["GET"]),
        Route("/destinations/{destination_id}/retrying", retrying, methods=["POST"]),
        Route("/destinations/{destination_id}/parked/retry", retry, methods=["POST"]),
    ]
