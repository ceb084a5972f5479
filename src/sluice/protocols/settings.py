"""What a source does with events its tracking plan does not expect: Segment's Protocols
schema settings, one set per source (docs/protocols.md).

The defaults are Segment's when a plan is connected: everything allowed, only flagged.
"""

from __future__ import annotations

from typing import Literal

import msgspec

AllowBlock = Literal["allow", "block"]
AllowOmit = Literal["allow", "omit"]
AllowOmitBlock = Literal["allow", "omit", "block"]


class Enforcement(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Per source: Track (unplanned events, unplanned properties, JSON Schema violations, also
    used for Page and Screen), Identify/Group (unplanned traits, violations), the common schema,
    and where blocked events and violations are forwarded (a source id)."""

    unplanned_events: AllowBlock = "allow"
    unplanned_properties: AllowOmit = "allow"
    violations: AllowOmitBlock = "allow"
    unplanned_traits: AllowOmit = "allow"
    traits_violations: AllowOmitBlock = "allow"
    common_violations: AllowOmitBlock = "allow"
    forward_blocked_to: str | None = None
    forward_violations_to: str | None = None
