"""Device mode: destinations that run in the page's analytics.js, loaded from Sluice.

A destination document with `mode: device` names one of Segment's browser (Actions)
destinations. Sluice does not deliver it: the settings endpoint hands analytics.js its
`remotePlugins` entry (bundle URL on this server, settings, subscriptions) and the server serves
the bundle (docs/device-mode.md). Everything that delivers, replays or trims the log for
destinations asks `is_device_mode` first.
"""

from __future__ import annotations

from typing import Any

import msgspec

DEVICE = "device"
CLOUD = "cloud"


class _Mode(msgspec.Struct):
    mode: str = CLOUD


_mode = msgspec.json.Decoder(_Mode)


def is_device_mode(body: bytes | dict[str, Any]) -> bool:
    """Whether a stored destination document (JSON bytes or decoded) runs in the browser."""
    if isinstance(body, dict):
        return body.get("mode") == DEVICE
    try:
        return _mode.decode(body).mode == DEVICE
    except msgspec.DecodeError:
        return False
