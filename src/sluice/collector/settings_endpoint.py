"""`GET /v1/projects/<writeKey>/settings`: what analytics.js and the mobile SDKs load first.

Its `apiHost` tells the SDK where to post events, so pointing the SDK's CDN setting at Sluice is
enough to make it post here too. Destinations run in the cloud (Sluice), except those of the
workspace with `mode: device`: each adds a `remotePlugins` entry whose bundle URL is on this
server, and its `integrations` entry (devicemode/plugins.py). `addBundledMetadata` stays on, so
events list in `_metadata.bundled` any classic integration the page loaded itself, and delivery
skips those destinations (docs/delivery.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from sluice.collector.peer import Network, forwarded_origin
from sluice.collector.responses import Headers, Scope, Send, send_error, send_json
from sluice.collector.workspace_view import WorkspaceView
from sluice.devicemode.plugins import DevicePlugin


async def send_source_settings(
    send: Send,
    scope: Scope,
    headers: dict[bytes, bytes],
    cors: Headers,
    key: str,
    workspace: WorkspaceView,
    public_url: str | None,
    trusted: tuple[Network, ...],
) -> None:
    """Answer `GET /v1/projects/<write key>/settings` (404 for an unknown or disabled key)."""
    source = workspace.sources_by_key.get(key)
    if source is None or not source.enabled:
        await send_error(send, 404, "invalid_write_key", "no source has this write key", cors)
        return
    peer = scope.get("client")
    host, protocol = api_host(
        public_url, headers, scope.get("scheme", "http"), peer[0] if peer else None, trusted
    )
    plugins = workspace.device_plugins.for_source(source.id)
    await send_json(send, 200, source_settings(key, host, protocol, plugins), cors)


def api_host(
    public_url: str | None,
    headers: Mapping[bytes, bytes],
    scheme: str,
    peer: str | None = None,
    trusted: tuple[Network, ...] = (),
) -> tuple[str, str]:
    """(`host[:port]/v1`, protocol) as the SDKs want them.

    `SLUICE_PUBLIC_URL` when set; else what a trusted proxy says the client used
    (`X-Forwarded-Proto` / `X-Forwarded-Host`, or `Forwarded`), so that analytics.js behind a
    TLS-terminating proxy posts over https; else the request's own `Host` and scheme.
    """
    if public_url:
        parts = urlsplit(public_url)
        path = parts.path.rstrip("/")
        return f"{parts.netloc}{path}/v1", parts.scheme or "https"
    forwarded_scheme, forwarded_host = forwarded_origin(peer, headers, trusted)
    host_header = headers.get(b"host")
    host = forwarded_host or (host_header.decode("latin-1") if host_header else "localhost")
    return f"{host}/v1", forwarded_scheme or scheme


def source_settings(
    write_key: str, host: str, protocol: str, plugins: Sequence[DevicePlugin] = ()
) -> dict[str, Any]:
    """The settings of one source; `plugins`: its device-mode destinations."""
    origin = f"{protocol}://{host.removesuffix('/v1')}"
    settings = _base(write_key, host, protocol)
    for plugin in plugins:
        settings["integrations"][plugin.creation_name] = plugin.integration()
        settings["remotePlugins"].append(plugin.remote_plugin(origin))
    return settings


def _base(write_key: str, host: str, protocol: str) -> dict[str, Any]:
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": host,
                "protocol": protocol,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
                "versionSettings": {"componentTypes": []},
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }
