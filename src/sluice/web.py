"""Everything `sluice serve` answers besides the Tracking API: the admin API and the web UI.

The collector hands every request that is not an ingest path to this app, so one port serves
SDKs, operators and browsers. The Profile API owns `/v1/spaces/` (the collector hands those
paths here too). The admin API owns every path under `/api/v1` (dispatched on the
prefix, not a routing pattern, so that even a path no route can match gets the API's JSON 404);
analytics.js's script and chunks (`/analytics.js/v1/...`, `/analytics-next/bundles/...`) are
served from the installed package, and device mode's bundles (`/next-integrations/actions/...`)
from theirs; the UI owns the rest.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from sluice.admin.app import build_admin_api
from sluice.analyticsjs.serve import ScriptFiles, is_script_path
from sluice.config import Settings
from sluice.devicemode.serve import BundleFiles, is_bundle_path
from sluice.metrics.process import ProcessMetrics
from sluice.profileapi.app import PREFIX as PROFILE_API_PREFIX
from sluice.profileapi.app import ProfileApi
from sluice.store.base import Store
from sluice.ui.app import build_ui

API_PREFIX = "/api/v1"


class Web:
    def __init__(
        self,
        api: ASGIApp,
        ui: ASGIApp,
        scripts: ASGIApp | None = None,
        bundles: ASGIApp | None = None,
        profiles: ASGIApp | None = None,
    ) -> None:
        self.api = api
        self.ui = ui
        self.scripts = scripts  # analytics.js and its chunks (analyticsjs/serve.py)
        self.bundles = bundles  # device mode's destinations (devicemode/serve.py)
        self.profiles = profiles  # Segment's Profile API (profileapi/app.py)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            self.profiles is not None
            and scope["type"] == "http"
            and path.startswith(PROFILE_API_PREFIX)
        ):
            await self.profiles(scope, receive, send)
        elif self.scripts is not None and scope["type"] == "http" and is_script_path(path):
            await self.scripts(scope, receive, send)
        elif self.bundles is not None and scope["type"] == "http" and is_bundle_path(path):
            await self.bundles(scope, receive, send)
        elif scope["type"] in ("http", "websocket") and (
            path == API_PREFIX or path.startswith(API_PREFIX + "/")
        ):
            root = scope.get("root_path", "") + API_PREFIX
            await self.api({**scope, "root_path": root}, receive, send)
        else:
            await self.ui(scope, receive, send)


def build_web(store: Store, settings: Settings, metrics: ProcessMetrics | None = None) -> Web:
    """`metrics`: the HTTP process's instruments (the collector's), that the Profile API counts
    its refusals in."""
    scripts = ScriptFiles(settings.data_dir)
    bundles = BundleFiles(settings.data_dir)
    profiles = ProfileApi(store, settings, metrics)
    api = build_admin_api(store, settings)
    return Web(api, build_ui(store, settings), scripts, bundles, profiles)
