"""An event → the external ids and traits it carries, as Segment's identity graph reads them.

Where each default type comes from (Segment's "Default externalIDs" table): `userId` →
user_id, `anonymousId` → anonymous_id, `traits.email` or `context.traits.email` → email,
`context.device.id` / `.advertisingId` (only with `adTrackingEnabled: true`) / `.token` →
`<android|ios>.id|idfa|push_token` by `context.device.type`,
`context.integrations['Google Analytics'].clientId` → ga_client_id, `groupId` → group_id (an
account), `context.externalIds` items (type lower-cased; `collection` users or accounts), and the
workspace's custom trait types. Blocked values are dropped here, so they never reach the graph.

The consumer reads each payload once, into a struct of only the fields named above: the
decoder skips the rest (properties, most of context) without building it, a third of the cost
of a whole decode. A payload those fields do not fit (a `context` that is not an object) is
read as a whole, with the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from sluice.identity.rules import ACCOUNTS, EMAIL, USER_ID, USERS, Rules

IdKey = tuple[str, str, str]  # (collection, id type, value)
PLATFORMS = ("android", "ios")
MAX_ID_LENGTH = 1024  # longer values are not identifiers (and would bloat an index)
MAX_EXTERNAL_IDS = 50  # per event: a runaway array must not turn into a giant merge
_EMPTY: dict[str, Any] = {}


class _Context(msgspec.Struct):
    """The parts of `context` identity reads (fields named as in the payload)."""

    traits: Any = None
    device: Any = None
    integrations: Any = None
    externalIds: Any = None


class _Event(msgspec.Struct):
    type: Any = None
    userId: Any = None
    anonymousId: Any = None
    groupId: Any = None
    timestamp: Any = None
    traits: Any = None
    context: _Context | None = None


_decode_event = msgspec.json.Decoder(_Event).decode
_decode_dict = msgspec.json.Decoder(dict[str, Any]).decode


@dataclass(slots=True)
class Identifying:
    """What the identity graph takes from one event."""

    ids: list[IdKey]
    user_traits: dict[str, Any]
    account_traits: dict[str, Any]
    timestamp: object  # as sent
    accounts: bool = False  # whether an account's identifier may be among `ids`


def identifying(payload: bytes, rules: Rules) -> Identifying | None:
    """The payload's identifiers and traits; None when it is not a JSON object."""
    try:
        event = _decode_event(payload)
    except msgspec.ValidationError:  # valid JSON the struct does not fit: read it whole
        try:
            body = _decode_dict(payload)
        except msgspec.DecodeError:
            return None
        context = _obj(body.get("context"))
        kind = body.get("type")
        traits = body.get("traits")
        user_id, anonymous_id = body.get("userId"), body.get("anonymousId")
        group_id, timestamp = body.get("groupId"), body.get("timestamp")
        context_traits = _obj(context.get("traits"))
        device, integrations = context.get("device"), context.get("integrations")
        items = context.get("externalIds")
    except msgspec.DecodeError:
        return None
    else:
        kind, traits, timestamp = event.type, event.traits, event.timestamp
        user_id, anonymous_id, group_id = event.userId, event.anonymousId, event.groupId
        c = event.context
        if c is None:
            context_traits, device, integrations, items = _EMPTY, None, None, None
        else:
            context_traits = _obj(c.traits)
            device, integrations, items = c.device, c.integrations, c.externalIds
    own = _obj(traits) if kind in ("identify", "group") else _EMPTY
    identify = own if kind == "identify" else _EMPTY
    ids, accounts = _collect(
        kind, user_id, anonymous_id, group_id, identify, context_traits, device, integrations,
        items, rules,
    )  # fmt: skip
    account = own if kind == "group" else _EMPTY
    user_traits = _user_traits(identify, context_traits)
    return Identifying(ids, user_traits, account, timestamp, accounts)


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value if len(value) <= MAX_ID_LENGTH else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # Segment's libraries send numeric user ids as numbers
    return None


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else _EMPTY


def external_ids(event: dict[str, Any], rules: Rules) -> list[IdKey]:
    """The event's identifiers in the order found, without duplicates or blocked values."""
    context = _obj(event.get("context"))
    kind = event.get("type")
    ids, _ = _collect(
        kind,
        event.get("userId"),
        event.get("anonymousId"),
        event.get("groupId"),
        _obj(event.get("traits")) if kind == "identify" else _EMPTY,
        _obj(context.get("traits")),
        context.get("device"),
        context.get("integrations"),
        context.get("externalIds"),
        rules,
    )
    return ids


def _collect(
    kind: object,
    user_id: object,
    anonymous_id: object,
    group_id: object,
    traits: dict[str, Any],  # an identify's (others: empty)
    context_traits: dict[str, Any],
    device_value: object,
    integrations: object,
    items: object,
    rules: Rules,
) -> tuple[list[IdKey], bool]:
    """The identifiers, and whether an account's may be among them (most events have none:
    the consumer then resolves the users' collection alone, without splitting)."""
    # (collection, type, raw value) in Segment's order, then checked in one pass: this runs
    # at every event, so it avoids a function call per candidate.
    raw: list[tuple[str, str, object]] = []
    accounts = False
    if user_id is not None:
        raw.append((USERS, USER_ID, user_id))
    # user_traits_of's email (an identify's traits over context.traits), then context.traits'.
    if traits or context_traits:
        email = traits[EMAIL] if EMAIL in traits else context_traits.get(EMAIL)
        raw.append((USERS, EMAIL, email))
        raw.append((USERS, EMAIL, context_traits.get(EMAIL)))
    if anonymous_id is not None:
        raw.append((USERS, "anonymous_id", anonymous_id))
    if device_value is not None:
        device = _obj(device_value)
        platform = device.get("type")
        if isinstance(platform, str) and platform.lower() in PLATFORMS:
            platform = platform.lower()
            raw.append((USERS, f"{platform}.id", device.get("id")))
            if device.get("adTrackingEnabled") is True:
                raw.append((USERS, f"{platform}.idfa", device.get("advertisingId")))
            raw.append((USERS, f"{platform}.push_token", device.get("token")))
    if isinstance(integrations, dict):
        ga = _obj(integrations.get("Google Analytics"))
        raw.append((USERS, "ga_client_id", ga.get("clientId")))
    if kind == "group":
        raw.append((ACCOUNTS, "group_id", group_id))
        accounts = True
    if isinstance(items, list):
        for item in items[:MAX_EXTERNAL_IDS]:
            item = _obj(item)
            id_type = item.get("type")
            if isinstance(id_type, str) and id_type.strip():
                if item.get("collection") == ACCOUNTS:
                    raw.append((ACCOUNTS, id_type.strip().lower(), item.get("id")))
                    accounts = True
                else:
                    raw.append((USERS, id_type.strip().lower(), item.get("id")))
    if rules.trait_types:
        merged = _user_traits(traits, context_traits)
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
    return list(found), accounts


def _user_traits(traits: dict[str, Any], context_traits: dict[str, Any]) -> dict[str, Any]:
    """An identify's traits over context.traits (`traits`: empty for other calls)."""
    if traits and context_traits:
        return {**context_traits, **traits}
    return traits or context_traits
