"""The routes analytics.js is loaded from, as Segment's CDN lays them out:

- `GET /analytics.js/v1/<writeKey>/analytics.min.js`: the standalone build (the snippet's
  script; analytics.js takes this origin as its CDN, so its settings come from
  `/v1/projects/<writeKey>/settings` here too);
- `GET /analytics-next/bundles/<file>`: the chunks it loads on demand.

Served from the installed package (`sluice analytics-js install`), gzip-encoded when the client
accepts it (the package ships `.gz` twins), with CORS `*` (any site's pages load them) and caching:
five minutes for the script (an upgrade reaches pages soon), a year for the content-hashed
chunks. Not installed: 404 with JSON `code` `analytics_js_not_installed` naming the command.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
from starlette.types import Receive, Scope, Send

from sluice.analyticsjs.install import STANDALONE, AnalyticsJsNotInstalled, served_file

SCRIPT_PREFIX = "/analytics.js/v1/"
SCRIPT_SUFFIX = "/analytics.min.js"
BUNDLES_PREFIX = "/analytics-next/bundles/"
SCRIPT_CACHE = b"public, max-age=300"
BUNDLE_CACHE = b"public, max-age=31536000, immutable"


def is_script_path(path: str) -> bool:
    return path.startswith((SCRIPT_PREFIX, BUNDLES_PREFIX))


class ScriptFiles:
    """The ASGI handler of those two routes, for one data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope.get("method") not in ("GET", "HEAD"):
            await send_json_error(send, 405, "method_not_allowed", f"{path} takes GET")
            return
        if path.startswith(SCRIPT_PREFIX) and path.endswith(SCRIPT_SUFFIX):
            key = path[len(SCRIPT_PREFIX) : -len(SCRIPT_SUFFIX)]
            name, cache = (STANDALONE if key and "/" not in key else ""), SCRIPT_CACHE
        elif path.startswith(BUNDLES_PREFIX):
            name, cache = path[len(BUNDLES_PREFIX) :], BUNDLE_CACHE
        else:
            name, cache = "", SCRIPT_CACHE
        try:
            file = served_file(self.data_dir, name)
        except AnalyticsJsNotInstalled as exc:
            await send_json_error(send, 404, "analytics_js_not_installed", str(exc))
            return
        except FileNotFoundError:
            await send_json_error(send, 404, "not_found", f"no such file: {path}")
            return
        await send_script(scope, send, file, cache)


async def send_script(scope: Scope, send: Send, file: Path, cache: bytes) -> None:
    """A JavaScript file (or its `.gz` twin when the client takes gzip), CORS `*`, with `cache`
    (also for device mode's bundles, devicemode/serve.py)."""
    headers = [
        (b"content-type", b"application/javascript; charset=utf-8"),
        (b"access-control-allow-origin", b"*"),
        (b"cache-control", cache),
        (b"vary", b"Accept-Encoding"),
    ]
    accepted = dict(scope.get("headers", [])).get(b"accept-encoding", b"")
    zipped = file.with_name(file.name + ".gz")
    if b"gzip" in accepted and zipped.is_file():
        file = zipped
        headers.append((b"content-encoding", b"gzip"))
    body = file.read_bytes()
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body",
                "body": b"" if scope.get("method") == "HEAD" else body})  # fmt: skip


async def send_json_error(send: Send, status: int, code: str, message: str) -> None:
    body = msgspec.json.encode({"code": code, "message": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
