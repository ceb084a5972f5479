"""Whether an event may go to a destination before filters: consent, device mode, `integrations`.

Pure functions of the event and the destination's configuration, evaluated in Segment's order:
consent first, then the `integrations` object (with `_metadata.bundled` meaning the device already
sent it). Each returns the reason an event is not sent, or None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

CONSENT = "consent"
BUNDLED = "sent_from_device"
INTEGRATIONS_DISABLED = "integrations_disabled"


def consent_block(event: Mapping[str, Any], categories: Sequence[str]) -> str | None:
    """A destination mapped to consent categories gets an event only with consent to all of them.

    No consent object means no enforcement; an empty `categoryPreferences` means no consent for
    any mapped destination; unmapped destinations always receive.
    """
    if not categories:
        return None
    context = event.get("context")
    consent = context.get("consent") if isinstance(context, dict) else None
    if not isinstance(consent, dict) or "categoryPreferences" not in consent:
        return None
    preferences = consent.get("categoryPreferences")
    if not isinstance(preferences, dict):
        return CONSENT
    return None if all(preferences.get(c) is True for c in categories) else CONSENT


def integrations_block(event: Mapping[str, Any], names: Sequence[str]) -> str | None:
    """Segment's `integrations` object for a destination known by these display names.

    `All` (default true) covers destinations not listed; a listed destination's own value wins
    (false disables; true or an options object enables). Names are case-sensitive.
    """
    metadata = event.get("_metadata")
    if isinstance(metadata, dict):
        bundled = metadata.get("bundled")
        unbundled = metadata.get("unbundled")
        if (
            isinstance(bundled, list)
            and any(n in bundled for n in names)
            and not (isinstance(unbundled, list) and any(n in unbundled for n in names))
        ):
            return BUNDLED
    integrations = event.get("integrations")
    if not isinstance(integrations, dict) or not integrations:
        return None
    for name in names:
        if name in integrations:
            return None if _enabled(integrations[name]) else INTEGRATIONS_DISABLED
    return None if _enabled(integrations.get("All", True)) else INTEGRATIONS_DISABLED


def _enabled(value: Any) -> bool:
    return value is not False and value is not None and value != "false"
