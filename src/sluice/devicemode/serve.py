"""`GET /next-integrations/actions/<path>`: the built browser destinations, as Segment's CDN
lays them out (`<folder>/<contenthash>.js`, shared chunks such as `688/<hash>.js`, and the
base64-named twins analytics.js asks for with `obfuscate: true`).

The bundles find their chunks relative to their own URL (webpack's `publicPath: 'auto'`), so
serving the package's `dist/web` tree unchanged is all it takes. Content-hashed names: cached
for a year, immutable; CORS `*`; gzip when accepted (the package ships `.gz` twins). Only
plain path segments ending in `.js`/`.js.map` are served (no traversal, no dotfiles); not
installed: 404 `device_mode_not_installed` naming the command.
"""

from __future__ import annotations

import re
from pathlib import Path

from starlette.types import Receive, Scope, Send

from sluice.analyticsjs.serve import send_json_error, send_script
from sluice.devicemode.catalog import INSTALL_HINT
from sluice.devicemode.install import web_dir
from sluice.devicemode.plugins import BUNDLE_ROOT

BUNDLE_CACHE = b"public, max-age=31536000, immutable"
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.js(\.map)?\Z")


def is_bundle_path(path: str) -> bool:
    return path.startswith(BUNDLE_ROOT)


def bundle_file(data_dir: Path, relative: str) -> Path | None:
    """The installed file for a served path, or None when it is not one."""
    *folders, name = relative.split("/")
    if not folders or not _FILE.match(name) or not all(_SEGMENT.match(f) for f in folders):
        return None
    path = web_dir(data_dir).joinpath(*folders, name)
    return path if path.is_file() else None


class BundleFiles:
    """The ASGI handler of `/next-integrations/actions/`, for one data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope.get("method") not in ("GET", "HEAD"):
            await send_json_error(send, 405, "method_not_allowed", f"{path} takes GET")
            return
        if not web_dir(self.data_dir).is_dir():
            message = f"device mode's bundles are not installed here: {INSTALL_HINT}"
            await send_json_error(send, 404, "device_mode_not_installed", message)
            return
        file = bundle_file(self.data_dir, path[len(BUNDLE_ROOT) :])
        if file is None:
            await send_json_error(send, 404, "not_found", f"no such file: {path}")
            return
        await send_script(scope, send, file, BUNDLE_CACHE)
