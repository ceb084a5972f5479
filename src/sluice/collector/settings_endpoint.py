"""`GET /v1/projects/<writeKey>/settings`: what analytics.js and the mobile SDKs load first.

Its `apiHost` tells the SDK where to post events, so pointing the SDK's CDN setting at Sluice is
enough to make it post here too. No device-mode destinations are offered: every destination runs
in the cloud (Sluice), so `unbundledIntegrations` is empty and nothing else is loaded in the page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def api_host(public_url: str | None, host_header: str | None, scheme: str) -> tuple[str, str]:
    """(`host[:port]/v1`, protocol) as the SDKs want them."""
    if public_url:
        parts = urlsplit(public_url)
        path = parts.path.rstrip("/")
        return f"{parts.netloc}{path}/v1", parts.scheme or "https"
    return f"{host_header or 'localhost'}/v1", scheme


def source_settings(write_key: str, host: str, protocol: str) -> dict[str, Any]:
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
