"""Profiles: find a person by one of their ids, see what the identity graph knows and why.

`/profiles?q=email:jane@example.com` (or any `type:value`, or a profile id) leads to
`/profiles/<profile id>`: its external ids, traits, events (paged, each linking to the event's
lookup, with what became of every id it carried) and its merges, each explained by the event
that caused it (`identity/explain.py`). The identity tables are read through a connection of the
UI's own, opened on first use and used by one page at a time (an sqlite3 connection must not
run two statements at once); nothing here writes to them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import psycopg
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sluice.identity.explain import events_page, find, graph_state, merge_stories
from sluice.identity.lookup import view
from sluice.identity.runner import workspace_rules
from sluice.identity.tables import IdentityDb, open_identity_db
from sluice.ui.site import Site

EVENTS_PAGE = 20
MAX_QUERY = 1100  # type + ':' + the longest identifier the graph keeps (1,024)
T = TypeVar("T")


class IdentityReads:
    """The identity tables for the UI of one process."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._db: IdentityDb | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[[IdentityDb], T]) -> T:
        with self._lock:
            if self._db is None:
                settings = self.site.settings
                self._db = open_identity_db(settings.data_dir, settings.database_url)
            try:
                return fn(self._db)
            except psycopg.OperationalError:
                # PostgreSQL restarted or the connection dropped: this page fails (500), the
                # next one opens a new connection instead of failing forever.
                with contextlib.suppress(Exception):
                    self._db.close()
                self._db = None
                raise


def routes(site: Site) -> list[Route]:
    reads = IdentityReads(site)

    def search(query: str) -> dict[str, Any]:
        space, rules = workspace_rules(site.store)

        def load(db: IdentityDb) -> dict[str, Any]:
            found, error = None, ""
            if query:
                try:
                    found = find(db, space, query)
                except ValueError as exc:
                    error = str(exc)
            if found:  # a redirect: no counters to show
                return {"found": found}
            state = graph_state(db, site.log, space, rules.enabled)
            return {"state": state, "found": None, "error": error}

        return reads.run(load)

    def profile(profile_id: str, before: int | None) -> dict[str, Any] | None:
        space, rules = workspace_rules(site.store)

        def load(db: IdentityDb) -> dict[str, Any] | None:
            shown = view(db, space, profile_id, events=0, log=site.log, rules=rules)
            if shown is None:
                return None
            events, older = events_page(
                db, site.log, rules, space, shown.members, before, EVENTS_PAGE
            )
            return {
                "state": graph_state(db, site.log, space, rules.enabled, count=False),
                "profile": shown,
                "events": events,
                "older": older,
                "merges": merge_stories(db, site.log, rules, space, shown.merges),
            }

        return reads.run(load)

    async def index(request: Request) -> Response:
        query = request.query_params.get("q", "").strip()[:MAX_QUERY]
        data = await site.run(search, query)
        if data["found"]:
            return RedirectResponse(f"/profiles/{quote(data['found'], safe='')}", 303)
        status = 400 if data["error"] else 404 if query else 200
        return site.render(request, "profiles.html", status=status, query=query, **data)

    async def page(request: Request) -> Response:
        profile_id = request.path_params["profile_id"][:MAX_QUERY]
        raw = request.query_params.get("before", "")
        before = int(raw) if raw.isdigit() else None
        data = await site.run(profile, profile_id, before)
        if data is None:
            return site.render(request, "not_found.html", status=404, what=f"profile {profile_id}")
        merged_from = profile_id if profile_id != data["profile"].profile_id else ""
        return site.render(request, "profile.html", merged_from=merged_from, before=before, **data)

    return [
        Route("/profiles", index, methods=["GET"]),
        Route("/profiles/{profile_id}", page, methods=["GET"]),
    ]
