"""Everything `sluice serve` answers besides the Tracking API: the admin API and the web UI.

The collector hands every request that is not an ingest path to this app, so one port serves
SDKs, operators and browsers. The admin API lives under `/api/v1`; the UI owns the rest.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount

from sluice.admin.app import build_admin_api
from sluice.config import Settings
from sluice.store.base import Store
from sluice.ui.app import build_ui


def build_web(store: Store, settings: Settings) -> Starlette:
    return Starlette(
        routes=[
            Mount("/api/v1", app=build_admin_api(store, settings)),
            Mount("/", app=build_ui(store, settings)),
        ]
    )
