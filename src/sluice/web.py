"""Everything `sluice serve` answers besides the Tracking API: the admin API and the web UI.

The collector hands every request that is not an ingest path to this app, so one port serves
SDKs, operators and browsers. The admin API owns every path under `/api/v1` (dispatched on the
prefix, not a routing pattern, so that even a path no route can match gets the API's JSON 404);
the UI owns the rest.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from sluice.admin.app import build_admin_api
from sluice.config import Settings
from sluice.store.base import Store
from sluice.ui.app import build_ui

API_PREFIX = "/api/v1"


class Web:
    def __init__(self, api: ASGIApp, ui: ASGIApp) -> None:
        self.api = api
        self.ui = ui

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] in ("http", "websocket") and (
            path == API_PREFIX or path.startswith(API_PREFIX + "/")
        ):
            root = scope.get("root_path", "") + API_PREFIX
            await self.api({**scope, "root_path": root}, receive, send)
        else:
            await self.ui(scope, receive, send)


def build_web(store: Store, settings: Settings) -> Web:
    return Web(build_admin_api(store, settings), build_ui(store, settings))
