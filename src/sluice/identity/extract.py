"""An event → the external ids and traits it carries, as Segment's identity graph reads them.

Where each default type comes from (Segment's "Default externalIDs" table): `userId` →
user_id, `anonymousId` → anonymous_id, `traits.email` or `context.traits.email` → email,
`context.device.id` / `.advertisingId` (only with `adTrackingEnabled: true`) / `.token` →
`<android|ios>.id|idfa|push_token` by `context.device.type`,
`context.integrations['Google Analytics'].clientId` → ga_client_id, `groupId` → group_id (an
account), `context.externalIds` items (type lower-cased; `collection` users or accounts), and the
workspace's custom trait types. Blocked values are dropped here, so they never reach the graph.
"""

from __future__ import annotations

from typing import Any

from sluice.identity.rules import ACCOUNTS, EMAIL, USER_ID, USERS, Rules

IdKey = tuple[str, str, str]  # (collection, id type, value)
PLATFORMS = ("android", "ios")
MAX_ID_LENGTH = 1024  # longer values are not identifiers (and would bloat an index)
MAX_EXTERNAL_IDS = 50  # per event: a runaway array must not turn into a giant merge


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value if len(value) <= MAX_ID_LENGTH else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # Segment's libraries send numeric user ids as numbers
    return None


_EMPTY: dict[str, Any] = {}


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def external_ids(event: dict[str, Any], rules: Rules) -> list[IdKey]:
    """The event's identifiers in the order found, without duplicates or blocked values."""
    # (collection, type, raw value) in Segment's order, then checked in one pass: this runs
    # at every event, so it avoids a function call per candidate.
    raw: list[tuple[str, str, object]] = []
    kind = event.get("type")
    context = _obj(event.get("context"))
    context_traits = _obj(context.get("traits"))
    traits = _obj(event.get("traits")) if kind == "identify" else _EMPTY
    raw.append((USERS, USER_ID, event.get("userId")))
    # user_traits_of's email (an identify's traits over context.traits), then context.traits'.
    raw.append((USERS, EMAIL, traits[EMAIL] if EMAIL in traits else context_traits.get(EMAIL)))
    raw.append((USERS, EMAIL, context_traits.get(EMAIL)))
    raw.append((USERS, "anonymous_id", event.get("anonymousId")))
    device = _obj(context.get("device"))
    platform = device.get("type")
    if isinstance(platform, str) and platform.lower() in PLATFORMS:
        platform = platform.lower()
        raw.append((USERS, f"{platform}.id", device.get("id")))
        if device.get("adTrackingEnabled") is True:
            raw.append((USERS, f"{platform}.idfa", device.get("advertisingId")))
        raw.append((USERS, f"{platform}.push_token", device.get("token")))
    integrations = context.get("integrations")
    if isinstance(integrations, dict):
        ga = _obj(integrations.get("Google Analytics"))
        raw.append((USERS, "ga_client_id", ga.get("clientId")))
    if kind == "group":
        raw.append((ACCOUNTS, "group_id", event.get("groupId")))
    items = context.get("externalIds")
    if isinstance(items, list):
        for item in items[:MAX_EXTERNAL_IDS]:
            item = _obj(item)
            id_type = item.get("type")
            if isinstance(id_type, str) and id_type.strip():
                collection = ACCOUNTS if item.get("collection") == ACCOUNTS else USERS
                raw.append((collection, id_type.strip().lower(), item.get("id")))
    if rules.trait_types:
        merged = user_traits_of(event, context)
        for trait, id_type in rules.trait_types:
            raw.append((USERS, id_type, merged.get(trait)))
            raw.append((USERS, id_type, context_traits.get(trait)))
    found: dict[IdKey, None] = {}  # insertion-ordered, without duplicates
    is_blocked = rules.is_blocked
    for collection, id_type, value in raw:
        if value is None:
            continue
        text = _text(value)
        if text is not None:
            key = (collection, id_type, text)
            if key not in found and not is_blocked(text):
                found[key] = None
    return list(found)


def user_traits_of(event: dict[str, Any], context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The traits an event sets on its user: `traits` of an identify (a group's are the
    account's), over `context.traits` of any call."""
    if context is None:
        context = _obj(event.get("context"))
    context_traits = _obj(context.get("traits"))
    if event.get("type") == "identify":
        traits = _obj(event.get("traits"))
        if context_traits:
            return {**context_traits, **traits}
        return traits
    return context_traits


def account_traits_of(event: dict[str, Any]) -> dict[str, Any]:
    """The traits a group call sets on its account."""
    return _obj(event.get("traits")) if event.get("type") == "group" else {}
