"""The destination registry: stable ids to classes, imported only when used.

Third-party destinations register through the `sluice.destinations` entry-point group, with the
same `"module:Class"` form as the built-ins below.
"""

from __future__ import annotations

import importlib
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
    target = known_types().get(type_id)
    if target is None:
        known = ", ".join(sorted(known_types()))
        raise UnknownDestination(f"unknown destination type {type_id!r} (known: {known})")
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, Destination)):
        raise UnknownDestination(f"{target} is not a Destination")
    return cls
