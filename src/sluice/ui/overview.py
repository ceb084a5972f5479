"""The overview: what came in per source and what happened to it per destination, at a glance.

Only counters and delivery stats: no read of the log beyond its end position. A notice when
reads of the log are degraded, and when the archive's uploads to its bucket fail (`sluice
status` says the same).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.archive.upload import archive_status
from sluice.delivery.stats import destination_stats
from sluice.store.sqlite_read import recorded_trouble
from sluice.ui.charts import bars
from sluice.ui.site import Site
from sluice.ui.sources import source_counters
from sluice.workspace.sync import export_workspace


def routes(site: Site) -> list[Route]:
    def load() -> dict[str, Any]:
        store = site.store
        ws = export_workspace(store)
        counts = source_counters(store.counters())
        stats = destination_stats(store)
        sources = [(s, counts.get(s.id, {})) for s in ws.sources]
        destinations = [(d, stats.get(d.id, {})) for d in ws.destinations]
        chart = bars(
            [(d.name or d.id, st.get("delivered", 0), "ok") for d, st in destinations],
            "Events delivered per destination",
        )
        return {
            "log_end": store.last_seq(),
            "sources": sources,
            "destinations": destinations,
            "chart": chart if destinations else "",
            "total_stored": sum(c.get("stored", 0) for _, c in sources),
            "total_rejected": sum(c.get("rejected", 0) for _, c in sources),
            "log_reads": recorded_trouble(store),
            "archive": archive_status(site.settings, store),
        }

    async def page(request: Request) -> Response:
        return site.render(request, "overview.html", tab="overview", **await site.run(load))

    return [Route("/", page, methods=["GET"])]
