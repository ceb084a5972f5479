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


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def external_ids(event: dict[str, Any], rules: Rules) -> list[IdKey]:
    """The event's identifiers in the order found, without duplicates or blocked values."""
    found: list[IdKey] = []

    def add(collection: str, id_type: str, raw: object) -> None:
        value = _text(raw)
        if value is not None and not rules.is_blocked(value):
            key = (collection, id_type, value)
            if key not in found:
                found.append(key)

    kind = event.get("type")
    context = _obj(event.get("context"))
    add(USERS, USER_ID, event.get("userId"))
    add(USERS, EMAIL, user_traits_of(event, context).get(EMAIL))
    add(USERS, EMAIL, _obj(context.get("traits")).get(EMAIL))
    add(USERS, "anonymous_id", event.get("anonymousId"))
    device = _obj(context.get("device"))
    platform = device.get("type")
    if isinstance(platform, str) and platform.lower() in PLATFORMS:
        platform = platform.lower()
        add(USERS, f"{platform}.id", device.get("id"))
        if device.get("adTrackingEnabled") is True:
            add(USERS, f"{platform}.idfa", device.get("advertisingId"))
        add(USERS, f"{platform}.push_token", device.get("token"))
    ga = _obj(_obj(context.get("integrations")).get("Google Analytics"))
    add(USERS, "ga_client_id", ga.get("clientId"))
    if kind == "group":
        add(ACCOUNTS, "group_id", event.get("groupId"))
    items = context.get("externalIds")
    if isinstance(items, list):
        for item in items[:MAX_EXTERNAL_IDS]:
            item = _obj(item)
            id_type = item.get("type")
            if isinstance(id_type, str) and id_type.strip():
                collection = ACCOUNTS if item.get("collection") == ACCOUNTS else USERS
                add(collection, id_type.strip().lower(), item.get("id"))
    if rules.trait_types:
        traits = user_traits_of(event, context)
        context_traits = _obj(context.get("traits"))
        for trait, id_type in rules.trait_types:
            add(USERS, id_type, traits.get(trait))
            add(USERS, id_type, context_traits.get(trait))
    return found


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
