"""The web UI's Starlette app, served by `sluice serve` at `/` (see docs/ui.md).

Server-rendered pages (Jinja2), one small CSS file and one small script, no build step. Every
HTTP worker process builds its own app; nothing a page needs is kept between requests except
the signing key cache (`SessionKeys`), which is re-read from the store when it changes.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from sluice.config import Settings
from sluice.store.base import Store
from sluice.ui import (
    debugger,
    delivery,
    destinations,
    lookup,
    overview,
    privacy,
    profiles,
    protocols,
    rules,
    signin,
    sources,
    transformations,
    warehouses,
)
from sluice.ui.guard import Guard
from sluice.ui.site import STATIC, Site


def build_ui(store: Store, settings: Settings) -> Starlette:
    site = Site(store, settings)
    routes = [
        *signin.routes(site),
        *overview.routes(site),
        *sources.routes(site),
        *debugger.routes(site),
        *destinations.routes(site),
        *rules.routes(site),
        *delivery.routes(site),
        *lookup.routes(site),
        *profiles.routes(site),
        *protocols.routes(site),
        *warehouses.routes(site),
        *transformations.routes(site),
        *privacy.routes(site),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    guard = Middleware(Guard, store=store, keys=site.keys, settings=settings)
    return Starlette(routes=routes, middleware=[guard])
