"""The requests Mixpanel's six actions build from their payloads.

Ports of the actions' `perform` and `performBatch` (see mixpanel.py, whose `Mixpanel` names
these builders in its actions): Track Event and Track Purchase as JSON arrays to `/import`,
batched or one payload a request; Identify User, Group Identify User, Alias and Increment
Properties as forms to `/track`, `/engage` and `/groups`. Separate from the destination's
settings, presets and reading of answers, which do not depend on how a request is built.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import msgspec

from sluice.destinations.base import InvalidPayload, Mapped, OutRequest
from sluice.destinations.mixpanel_events import defined, truthy
from sluice.destinations.mixpanel_fields import SCHEMAS
from sluice.destinations.mixpanel_schema import GONE, clean, js_to_number
from sluice.mapping.directives import js_string

if TYPE_CHECKING:
    from sluice.destinations.mixpanel import Mixpanel, MixpanelSettings

USER_AGENT = "Segment (Actions)"
FORM_HEADERS = {
    "content-type": "application/x-www-form-urlencoded;charset=UTF-8",
    "user-agent": USER_AGENT,
}
MAX_EVENTS = 2000  # Mixpanel's limit per /import request
MAX_INCREMENTS = 20
_encode = msgspec.json.encode


@dataclass(frozen=True, slots=True)
class ImportRequest(OutRequest):
    """An /import request; `owners[i]` is the index in `message_ids` of the event whose
    payload made Mixpanel event `i` (a Track Purchase payload makes several)."""

    owners: tuple[int, ...] = ()


def _payload(m: Mapped, action: str, *, batch: bool = False) -> dict[str, Any]:
    """The payload Segment's `perform` (or `performBatch`) would get for this mapping output."""
    return clean(m.payload, SCHEMAS[action], batch=batch)


def import_builder(
    action: str, to_events: Callable[[Mapping[str, Any], str | None], list[dict[str, Any]]]
) -> Callable[[Mixpanel, Sequence[Mapped]], list[OutRequest]]:
    def build(dest: Mixpanel, mapped: Sequence[Mapped]) -> list[OutRequest]:
        """Batched payloads (`enable_batching: true`) go `batch_size` to a request, as
        Segment's `performBatch`; the others one per request, as its `perform`."""
        source = dest.settings.source_name
        batches: dict[int, list[tuple[Mapped, list[dict[str, Any]]]]] = {}
        groups: list[list[tuple[Mapped, list[dict[str, Any]]]]] = []
        for m in mapped:
            batch = isinstance(m.payload, dict) and m.payload.get("enable_batching") is True
            p = _payload(m, action, batch=batch)
            item = (m, to_events(p, source))
            if not batch:
                groups.append([item])
                continue
            size = p.get("batch_size")
            limit = max(1, int(size)) if isinstance(size, int | float) else MAX_EVENTS
            batches.setdefault(limit, []).append(item)
        batched = [group for limit, items in batches.items() for group in _split(items, limit)]
        return [_import_request(dest, group) for group in [*batched, *groups]]

    return build


def _split(
    items: list[tuple[Mapped, list[dict[str, Any]]]], limit: int
) -> list[list[tuple[Mapped, list[dict[str, Any]]]]]:
    """At most `limit` payloads and (unless one payload makes more) MAX_EVENTS events each."""
    groups: list[list[tuple[Mapped, list[dict[str, Any]]]]] = [[]]
    count = 0
    for item in items:
        if groups[-1] and (len(groups[-1]) >= limit or count + len(item[1]) > MAX_EVENTS):
            groups.append([])
            count = 0
        groups[-1].append(item)
        count += len(item[1])
    return groups


def _import_request(
    dest: Mixpanel, group: list[tuple[Mapped, list[dict[str, Any]]]]
) -> ImportRequest:
    s = dest.settings
    credential = s.api_secret or s.project_token
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "authorization": "Basic " + base64.b64encode(f"{credential}:".encode()).decode(),
    }
    events = [event for _, made in group for event in made]
    owners = tuple(i for i, (_, made) in enumerate(group) for _ in made)
    url = f"{dest.endpoint}/import?strict={s.strict_mode}"
    ids = [m.message_id for m, _ in group]
    return ImportRequest("POST", url, headers, _encode(events), ids, owners)


def _form(dest: Mixpanel, path: str, data: dict[str, Any], message_id: str) -> OutRequest:
    """`new URLSearchParams({data: JSON.stringify(data)})`: `*` kept, `~` escaped."""
    text = quote_plus(_encode(defined(data)).decode(), safe="*").replace("~", "%7E")
    return OutRequest("POST", dest.endpoint + path, FORM_HEADERS, f"data={text}".encode(),
                      [message_id])  # fmt: skip


def _source(settings: MixpanelSettings) -> Any:
    return GONE if settings.source_name is None else settings.source_name


def _nullish(values: Mapping[str, Any], *keys: str) -> Any:
    """`values[a] ?? values[b] ?? ...` (undefined when the last is missing)."""
    for key in keys[:-1]:
        if values.get(key) is not None:
            return values[key]
    return values.get(keys[-1], GONE)


_PROFILE_OMIT = frozenset({"created", "createdAt", "created_at", "email", "firstName",
                           "lastName", "name", "username", "phone"})  # fmt: skip


def profile_set(traits: Mapping[str, Any]) -> dict[str, Any]:
    """Identify's `$set`: the traits but Segment's reserved ones, then those under Mixpanel's
    names (`firstName` -> `$first_name`), `$name` being `name` ?? "first last"."""
    first, last = traits.get("firstName", GONE), traits.get("lastName", GONE)
    name = traits.get("name")
    if name is None:
        name = f"{js_string(first)} {js_string(last)}" if truthy(first) and truthy(last) else GONE
    profile: dict[str, Any] = defined({
        **{k: v for k, v in traits.items() if k not in _PROFILE_OMIT},
        "$created": _nullish(traits, "created", "createdAt", "created_at"),
        "$email": traits.get("email", GONE),
        "$first_name": first,
        "$last_name": last,
        "$name": name,
        "$username": traits.get("username", GONE),
        "$phone": traits.get("phone", GONE),
    })  # fmt: skip
    return profile


def _require_token(dest: Mixpanel) -> str:
    if not dest.settings.project_token:
        raise InvalidPayload("IntegrationError: Missing project token")
    return dest.settings.project_token


def build_identify(dest: Mixpanel, mapped: Sequence[Mapped]) -> list[OutRequest]:
    """`$identify` links the anonymous id to the user id; `/engage` sets the profile."""
    requests = []
    for m in mapped:
        p = _payload(m, "identifyUser")
        token = _require_token(dest)
        if truthy(p.get("anonymous_id")):
            properties = {
                "$identified_id": p.get("user_id", GONE),
                "$anon_id": p["anonymous_id"],
                "token": token,
                "segment_source_name": _source(dest.settings),
            }
            data = {"event": "$identify", "properties": properties}
            requests.append(_form(dest, "/track", data, m.message_id))
        traits = p.get("traits")
        if isinstance(traits, dict) and traits:
            data = {"$token": token, "$distinct_id": _nullish(p, "user_id", "anonymous_id"),
                    "$ip": p.get("ip", GONE), "$set": profile_set(traits)}  # fmt: skip
            requests.append(_form(dest, "/engage", data, m.message_id))
    return requests


def build_group(dest: Mixpanel, mapped: Sequence[Mapped]) -> list[OutRequest]:
    """A trait named like the group key gives the group id; `name` is sent as `$name`."""
    requests = []
    for m in mapped:
        p = _payload(m, "groupIdentifyUser")
        key = p["group_key"] if truthy(p.get("group_key")) else "$group_id"
        traits: Any = p.get("traits")
        if not truthy(traits):
            raise InvalidPayload('IntegrationError: "traits" is a required field')
        group_id = traits[key] if truthy(traits.get(key)) else p.get("group_id", GONE)
        omitted = ("created", "createdAt", "created_at", "name")
        group_set = {
            **{k: v for k, v in traits.items() if k not in omitted},
            "$name": traits.get("name", GONE),
            "$created": _nullish(traits, "created", "createdAt", "created_at"),
        }
        data = {"$token": dest.settings.project_token, "$group_key": key, "$group_id": group_id,
                "$set": group_set}  # fmt: skip
        requests.append(_form(dest, "/groups", data, m.message_id))
    return requests


def build_alias(dest: Mixpanel, mapped: Sequence[Mapped]) -> list[OutRequest]:
    requests = []
    for m in mapped:
        p = _payload(m, "alias")
        properties = {"distinct_id": p.get("distinct_id", GONE), "alias": p.get("alias", GONE),
                      "token": dest.settings.project_token,
                      "segment_source_name": _source(dest.settings)}  # fmt: skip
        data = {"event": "$create_alias", "properties": properties}
        requests.append(_form(dest, "/track", data, m.message_id))
    return requests


def build_increment(dest: Mixpanel, mapped: Sequence[Mapped]) -> list[OutRequest]:
    """`$add` of each numeric value (numbers, or text that is one); other values are skipped,
    text that is not a number refuses the event, as Segment's code does."""
    requests = []
    for m in mapped:
        p = _payload(m, "incrementProperties")
        token = _require_token(dest)
        increment = p.get("increment")
        if not isinstance(increment, dict) or not increment:
            continue
        if len(increment) > MAX_INCREMENTS:
            raise InvalidPayload(
                "PayloadValidationError: Exceeded maximum of 20 properties for increment call"
            )
        add: dict[str, Any] = {}
        for key, value in increment.items():
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                continue
            number = js_to_number(value) if isinstance(value, str) else value
            if math.isnan(number):
                raise InvalidPayload(f'IntegrationError: The key "{key}" was not numeric')
            add[key] = number
        data = {"$token": token, "$distinct_id": _nullish(p, "user_id", "anonymous_id"),
                "$ip": p.get("ip", GONE), "$add": add}  # fmt: skip
        requests.append(_form(dest, "/engage", data, m.message_id))
    return requests
