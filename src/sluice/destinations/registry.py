"""The destination registry: stable ids to classes, imported only when used.

Third-party destinations register through the `sluice.destinations` entry-point group, with the
same `"module:Class"` form as the built-ins below. Segment's own destinations come from the
installed bridge's catalogue: `segment:<slug>`, or any name Segment gives one (`actions-braze`,
"Braze Cloud Mode (Actions)"); a native or plug-in destination of that id wins.
"""

from __future__ import annotations

import importlib
import shutil
from importlib.metadata import entry_points

from sluice.destinations.base import Destination
from sluice.errors import SluiceError

BUILTIN: dict[str, str] = {
    "webhook": "sluice.destinations.webhook:Webhook",
    "webhook-actions": "sluice.destinations.webhook_actions:WebhookActions",
    "amplitude": "sluice.destinations.amplitude:Amplitude",
    "mixpanel": "sluice.destinations.mixpanel:Mixpanel",
    "google-analytics-4": "sluice.destinations.ga4:GoogleAnalytics4",
    "slack": "sluice.destinations.slack:Slack",
    "posthog": "sluice.destinations.posthog:PostHog",
}
ENTRY_POINT_GROUP = "sluice.destinations"


class UnknownDestination(SluiceError):
    """No destination type has this id."""


def known_types() -> dict[str, str]:
    """Every destination id with where its class lives (built-ins, then plug-ins)."""
    types = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        types.setdefault(ep.name, ep.value)
    return types


def load(type_id: str) -> type[Destination]:
    target = known_types().get(type_id) or _native_named(type_id)
    if target is None:
        bridged = _bridged(type_id)
        if bridged is not None:
            return bridged
        known = ", ".join(sorted(known_types()))
        raise UnknownDestination(
            f"unknown destination type {type_id!r} (known: {known}, and Segment's destinations"
            " as segment:<slug> once `sluice bridge install` ran: `sluice bridge catalog`)"
        )
    return _class_of(target)


def _native_named(type_id: str) -> str | None:
    """The native destination Segment (or its `integrations` object) names so: its display
    name, an alias, its definition's slug or metadata id, in any case. Native wins over the
    bridge: `actions-amplitude` is Sluice's Amplitude."""
    wanted = type_id.strip().casefold()
    for target in BUILTIN.values():
        cls = _class_of(target)
        names = (cls.name, *cls.aliases, *cls.segment_types)
        if any(name.casefold() == wanted for name in names):
            return target
    return None


def _class_of(target: str) -> type[Destination]:
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, Destination)):
        raise UnknownDestination(f"{target} is not a Destination")
    return cls


def _bridged(type_id: str) -> type[Destination] | None:
    """Segment's destination of this name from the bridge's catalogue; None when the name is not
    one (and no bridge is installed); raises when it is one that cannot be used."""
    from sluice.bridge import location
    from sluice.bridge.catalog import TYPE_PREFIX
    from sluice.bridge.destination import bridged_class
    from sluice.bridge.errors import BridgeNotInstalled, UnknownSegmentDestination

    try:
        catalog = location.catalog()
    except BridgeNotInstalled as exc:
        if type_id.startswith(TYPE_PREFIX):
            raise UnknownDestination(
                f"{type_id} is one of Segment's destinations, run by the bridge, which is not"
                f" installed: run `sluice bridge install` (needs Node.js 18.17+) [{exc}]"
            ) from None
        return None
    try:
        entry = catalog.resolve(type_id)
    except UnknownSegmentDestination as exc:
        if type_id.startswith(TYPE_PREFIX):
            raise UnknownDestination(str(exc)) from None
        return None
    if entry.support == "unsupported":
        raise UnknownDestination(
            f"{entry.type} ({entry.name}) cannot run in Sluice: {entry.reason}"
        )
    if shutil.which("node") is None:
        raise UnknownDestination(
            f"{entry.type} runs Segment's code on Node.js, which is not on PATH here: install"
            " Node.js 18.17 or newer (e.g. `apt install nodejs`), then `sluice bridge install`"
        )
    return bridged_class(entry)
