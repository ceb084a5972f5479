"""The requests of Segment's Amplitude actions, built as their `perform` functions build them.

Each builder first makes the payload Segment's action would see (schema.py: only the action's
fields, coerced to their types), then follows the action's code: the same keys in the same
order, the same values, JSON and form bodies spelt as JavaScript spells them (wire.py). A field
Segment's code leaves `undefined` is UNDEFINED here until the body is written, so that a key
keeps the place JavaScript's object spread gives it.

- Log Event, Log Event V2: `POST /2/httpapi` (`/batch` with `use_batch_endpoint`), JSON
  `{api_key, events, options?}`. Log Purchase too, with one more "Product Purchased" event per
  product. Sluice puts several Log Event V2 events in one request (Segment sends one).
- Identify User: `POST /identify`, form `api_key`, `identification` (one user), `options`.
- Group Identify User: `POST /identify` (the user's group) when there is a user or device id,
  then `POST /groupidentify` (the group's properties).
- Map User: `POST /usermap`, form `api_key`, `mapping` (the payload), `options` when set.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

from sluice.destinations.amplitude import fields
from sluice.destinations.amplitude.schema import object_schema, validated
from sluice.destinations.amplitude.user_agent import UA_FIELDS, user_agent_fields
from sluice.destinations.amplitude.wire import dayjs_utc_ms, form, js_json, session_ms
from sluice.destinations.base import BuildRequests, Mapped, OutRequest
from sluice.mapping import UNDEFINED
from sluice.mapping.directives import js_truthy

if TYPE_CHECKING:
    from sluice.destinations.amplitude import Amplitude

USER_AGENT = "Segment (Actions)"  # the header Segment's request client sends
JSON_HEADERS = {"content-type": "application/json", "user-agent": USER_AGENT}
FORM_HEADERS = {
    "content-type": "application/x-www-form-urlencoded;charset=UTF-8",
    "user-agent": USER_AGENT,
}
SCHEMAS = {
    "logEvent": object_schema(fields.LOG_EVENT),
    "logEventV2": object_schema(fields.LOG_EVENT_V2),
    "logPurchase": object_schema(fields.LOG_PURCHASE),
    "identifyUser": object_schema(fields.IDENTIFY_USER),
    "groupIdentifyUser": object_schema(fields.GROUP_IDENTIFY_USER),
    "mapUser": object_schema(fields.MAP_USER),
}
FIELDS = {
    "logEvent": fields.LOG_EVENT,
    "logEventV2": fields.LOG_EVENT_V2,
    "logPurchase": fields.LOG_PURCHASE,
    "identifyUser": fields.IDENTIFY_USER,
    "groupIdentifyUser": fields.GROUP_IDENTIFY_USER,
    "mapUser": fields.MAP_USER,
}
_REVENUE = ("revenue", "price", "productId", "quantity", "revenueType")
_UA = ("userAgent", "userAgentParsing", "includeRawUserAgent", "userAgentData")
# What each action's perform takes out of the payload before the rest becomes the event.
_TAKEN = {
    "logEventV2": {*_REVENUE, *_UA, "time", "session_id", "min_id_length", "library",
                   "library2", "setOnce", "setAlways", "add"},
    "logEvent": {*_REVENUE, *_UA, "time", "session_id", "utm_properties", "referrer",
                 "min_id_length", "library", "library2"},
    "identifyUser": {*_UA, "utm_properties", "referrer", "min_id_length", "library"},
}  # fmt: skip
_TAKEN["logPurchase"] = {*_TAKEN["logEvent"], "products", "trackRevenuePerProduct"}


def payload_of(action: str, m: Mapped) -> dict[str, Any]:
    return validated(m.payload, FIELDS[action], SCHEMAS[action])


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _defined(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v is not UNDEFINED}


def _device(p: Mapping[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    """The parsed user agent, the raw one, then the action's own fields over them."""
    head: dict[str, Any] = {}
    if p.get("userAgentParsing") and (ua := p.get("userAgent")):
        parsed = user_agent_fields(ua, p.get("userAgentData"))
        head = {k: UNDEFINED if parsed[k] is None else parsed[k] for k in UA_FIELDS}
    if p.get("includeRawUserAgent"):
        head["user_agent"] = p.get("userAgent", UNDEFINED)
    return {**head, **props}


def _platform(p: Mapping[str, Any], props: dict[str, Any]) -> None:
    """`ios` and `android` recased; "Web" for analytics.js events that name none."""
    platform = props.get("platform")
    if isinstance(platform, str) and platform:
        platform = re.sub("ios", "iOS", platform, count=1, flags=re.I)
        props["platform"] = re.sub("android", "Android", platform, count=1, flags=re.I)
    if p.get("library") == "analytics.js" and not js_truthy(props.get("platform", UNDEFINED)):
        props["platform"] = "Web"


def _times(p: Mapping[str, Any], props: dict[str, Any]) -> None:
    if js_truthy(p.get("time")) and (ms := dayjs_utc_ms(p["time"])) is not None:
        props["time"] = ms
    if js_truthy(p.get("session_id")) and dayjs_utc_ms(p["session_id"]) is not None:
        props["session_id"] = session_ms(p["session_id"])


def merge_user_properties(*parts: Mapping[str, Any]) -> dict[str, Any]:
    """Segment's `mergeUserProperties`: later keys win, `$set` and `$setOnce` merge."""
    merged: dict[str, Any] = {}
    for part in parts:
        before = merged
        merged = {**before, **part}
        for op in ("$set", "$setOnce"):
            if js_truthy(before.get(op)) or js_truthy(part.get(op)):
                merged[op] = {**_as_object(before.get(op)), **_as_object(part.get(op))}
    return merged


def _as_object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _campaign_user_properties(p: Mapping[str, Any], first: bool) -> dict[str, Any] | None:
    """User properties with the UTM fields (`$set`, and `initial_*` in `$setOnce`) and the
    referrer; the user's own come first for Identify (`first`), last for Log Event."""
    utm = p.get("utm_properties")
    referrer = p.get("referrer")
    if not (isinstance(utm, Mapping) and utm) and not js_truthy(referrer):
        return None
    own = {k: v for k, v in _as_object(p.get("user_properties")).items()
           if k not in ("utm_properties", "referrer")}  # fmt: skip
    campaign: dict[str, Any] = {}
    if isinstance(utm, Mapping):  # even an empty one: JavaScript's `{}` is truthy
        campaign = {"$set": dict(utm), "$setOnce": {f"initial_{k}": v for k, v in utm.items()}}
    referred = {"$set": {"referrer": referrer}, "$setOnce": {"initial_referrer": referrer}}
    parts = [campaign, referred if js_truthy(referrer) else {}]
    return merge_user_properties(own, *parts) if first else merge_user_properties(*parts, own)


def _options(p: Mapping[str, Any]) -> dict[str, Any] | None:
    n = p.get("min_id_length")
    return {"min_id_length": n} if js_truthy(n) and _is_number(n) and n > 0 else None


def _library(p: Mapping[str, Any]) -> Any:
    setting = p.get("library2")
    if isinstance(setting, Mapping) and setting.get("behavior") == "use_mapping":
        return setting.get("mapping", UNDEFINED)
    return "segment"


def _revenue(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Log Purchase's `getRevenueProperties`: price x quantity, else the revenue given."""
    revenue = obj.get("revenue", UNDEFINED)
    quantity, price = obj.get("quantity"), obj.get("price")
    if _is_number(quantity) and _is_number(price):
        revenue = float(quantity) * float(price)
    if not js_truthy(revenue):
        return {}
    if _is_number(quantity) and math.isfinite(quantity):
        quantity = math.floor(quantity + 0.5)  # Math.round
    return {
        "revenue": revenue,
        "revenueType": obj.get("revenueType") if obj.get("revenueType") is not None else "Purchase",
        "quantity": quantity if _is_number(quantity) else UNDEFINED,
        "price": obj.get("price", UNDEFINED),
        "productId": obj.get("productId", UNDEFINED),
    }


def events_of(action: str, p: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Amplitude events one Log Event, Log Event V2 or Log Purchase payload makes."""
    props = {k: v for k, v in p.items() if k not in _TAKEN[action]}
    _platform(p, props)
    _times(p, props)
    if action == "logEventV2":
        for op, key in (("$setOnce", "setOnce"), ("$set", "setAlways"), ("$add", "add")):
            value = p.get(key)
            if isinstance(value, Mapping) and any(v != "" for v in value.values()):
                props["user_properties"] = {**_as_object(props.get("user_properties")), op: value}
    elif (user := _campaign_user_properties(p, first=False)) is not None:
        props["user_properties"] = user
    library = _library(p)
    if action != "logPurchase":
        return [_defined({**_device(p, props), "library": library})]
    products = p.get("products") or []
    per_product = js_truthy(p.get("trackRevenuePerProduct"))
    main = {**_device(p, props), **({} if products and per_product else _revenue(p))}
    events = [_defined({**main, "library": library})]
    for product in products:
        event = {**props, **(_revenue(product) if per_product else {})}
        event["event_properties"] = product
        event["event_type"] = "Product Purchased"
        insert_id = props.get("insert_id")
        event["insert_id"] = f"{insert_id}-{len(events) + 1}" if insert_id else UNDEFINED
        event["library"] = library
        events.append(_defined(event))
    return events


def _events_request(
    dest: Amplitude, kind: str, options: Any, events: list[Any], ids: list[str]
) -> OutRequest:
    body = {"api_key": dest.settings.api_key, "events": events, "options": options}
    return OutRequest("POST", dest.url(kind), JSON_HEADERS, js_json(_defined(body)), ids)


def build_events(action: str) -> BuildRequests:
    """Log Event V2 shares a request among events of the same endpoint and `options`; Log
    Event and Log Purchase send one event (Log Purchase: its events) per request."""

    def build(dest: Amplitude, mapped: Sequence[Mapped]) -> list[OutRequest]:
        requests = []
        groups: dict[tuple[str, bytes], tuple[Any, list[str], list[Any]]] = {}
        for m in mapped:
            p = payload_of(action, m)
            kind = "batch" if p.get("use_batch_endpoint") else "httpapi"
            options = _options(p) or UNDEFINED
            events = events_of(action, p)
            if action != "logEventV2":
                requests.append(_events_request(dest, kind, options, events, [m.message_id]))
                continue
            _, ids, shared = groups.setdefault((kind, js_json(options)), (options, [], []))
            ids.append(m.message_id)
            shared.extend(events)
        for (kind, _), (options, ids, events) in groups.items():
            requests.append(_events_request(dest, kind, options, events, ids))
        return requests

    return build


def _form_request(dest: Amplitude, kind: str, body: list[tuple[str, str]], m: Mapped) -> OutRequest:
    return OutRequest("POST", dest.url(kind), FORM_HEADERS, form(body), [m.message_id])


def _options_text(p: Mapping[str, Any]) -> str:
    """The `options` form field: JavaScript writes an undefined one as "undefined"."""
    options = _options(p)
    return "undefined" if options is None else js_json(options).decode()


def build_identify(dest: Amplitude, mapped: Sequence[Mapped]) -> list[OutRequest]:
    requests = []
    for m in mapped:
        p = payload_of("identifyUser", m)
        props = {k: v for k, v in p.items() if k not in _TAKEN["identifyUser"]}
        _platform(p, props)
        if (user := _campaign_user_properties(p, first=True)) is not None:
            props["user_properties"] = user
        identification = js_json(_defined({**_device(p, props), "library": "segment"})).decode()
        form_fields = [("api_key", dest.settings.api_key), ("identification", identification),
                  ("options", _options_text(p))]  # fmt: skip
        requests.append(_form_request(dest, "identify", form_fields, m))
    return requests


def build_group_identify(dest: Amplitude, mapped: Sequence[Mapped]) -> list[OutRequest]:
    requests = []
    for m in mapped:
        p = payload_of("groupIdentifyUser", m)
        association = {p["group_type"]: p["group_value"]}
        options = _options_text(p)
        key = ("api_key", dest.settings.api_key)
        if js_truthy(p.get("user_id")) or js_truthy(p.get("device_id")):
            at = dayjs_utc_ms(p["time"]) if "time" in p else int(time.time() * 1000)
            user = {
                "device_id": p.get("device_id", UNDEFINED),
                "groups": association,
                "insert_id": p.get("insert_id", UNDEFINED),
                "library": "segment",
                "time": at,  # None (null) when dayjs cannot read it, as its NaN
                "user_id": p.get("user_id", UNDEFINED),
                "user_properties": association,
            }
            identification = js_json([user]).decode()
            form_fields = [key, ("identification", identification), ("options", options)]
            requests.append(_form_request(dest, "identify", form_fields, m))
        group = {
            "group_properties": p.get("group_properties", UNDEFINED),
            "group_value": p["group_value"],
            "group_type": p["group_type"],
            "library": "segment",
        }
        form_fields = [key, ("identification", js_json([group]).decode()), ("options", options)]
        requests.append(_form_request(dest, "groupidentify", form_fields, m))
    return requests


def build_map_user(dest: Amplitude, mapped: Sequence[Mapped]) -> list[OutRequest]:
    requests = []
    for m in mapped:
        p = payload_of("mapUser", m)
        form_fields = [("api_key", dest.settings.api_key), ("mapping", js_json([p]).decode())]
        if (options := _options(p)) is not None:
            form_fields.append(("options", js_json(options).decode()))
        requests.append(_form_request(dest, "usermap", form_fields, m))
    return requests
