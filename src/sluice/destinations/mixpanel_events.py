"""The Mixpanel events Segment's Track Event and Track Purchase actions build from a payload.

Ports of `trackEvent/functions.ts` (`getEventProperties`), `trackPurchase/index.ts`
(`getPurchaseEventsFromPayload`) and `common/utils.ts` (`getBrowser`, `getBrowserVersion`,
`cheapGuid`), `@segment/action-destinations` 3.497.0. Property objects keep JavaScript's
semantics until they are sent: a key whose value is `undefined` (GONE) holds its place, so a
property of the event with the same name lands there, as with `{...literal, ...properties}`;
`defined` then drops what JSON.stringify would leave out.
"""

from __future__ import annotations

import functools
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

from sluice.destinations.mixpanel_schema import GONE, date_ms
from sluice.mapping.directives import js_string

# Event properties Segment does not let the event's own properties override.
RESERVED = frozenset({"time", "id", "$anon_id", "distinct_id", "$group_id", "$insert_id",
                      "$user_id"})  # fmt: skip
# Order properties left out of each "Product Purchased" event.
ORDER_KEYS = frozenset({"affiliation", "subtotal", "total", "revenue", "shipping", "tax",
                        "discount", "coupon", "currency", "order_number", "products"})  # fmt: skip

# fmt: off
# getBrowser: the first rule that matches names the browser (case-sensitive, but BlackBerry).
_BROWSERS = [
    (r"^(?=.* OPR/)(?=.*Mini)", "Opera Mini"), (" OPR/", "Opera"),
    ("(?i)BlackBerry|PlayBook|BB10", "BlackBerry"),
    ("IEMobile|WPDesktop", "Internet Explorer Mobile"),
    ("SamsungBrowser/", "Samsung Internet"), ("Edge|Edg/", "Microsoft Edge"),
    ("FBIOS", "Facebook Mobile"), ("Chrome", "Chrome"), ("CriOS", "Chrome iOS"),
    ("UCWEB|UCBrowser", "UC Browser"), ("FxiOS", "Firefox iOS"),
    ("^(?=.*Safari)(?=.*iPhone)", "Mobile Safari"), ("Safari", "Safari"),
    ("Android", "Android Mobile"), ("Konqueror", "Konqueror"), ("Firefox", "Firefox"),
    ("MSIE|Trident/", "Internet Explorer"), ("Gecko", "Mozilla"),
]
# getBrowserVersion: the dotted version after the browser's prefix.
_BROWSER_VERSIONS = {
    "Internet Explorer Mobile": "rv:", "Microsoft Edge": "Edge?/", "Chrome": "Chrome/",
    "Chrome iOS": "CriOS/", "UC Browser": "(?:UCBrowser|UCWEB)/", "Safari": "Version/",
    "Mobile Safari": "Version/", "Opera": "(?:Opera|OPR)/", "Firefox": "Firefox/",
    "Firefox iOS": "FxiOS/", "Konqueror": "Konqueror:", "BlackBerry": "BlackBerry ",
    "Android Mobile": r"android\s", "Samsung Internet": "SamsungBrowser/",
    "Internet Explorer": "(?:rv:|MSIE )", "Mozilla": "rv:",
}
# fmt: on


_BROWSER_RULES = [(re.compile(pattern, re.S), name) for pattern, name in _BROWSERS]
_VERSION_RULES = {
    name: re.compile(prefix + r"([0-9]+(?:\.[0-9]+)+)")
    for name, prefix in _BROWSER_VERSIONS.items()
}


@functools.lru_cache(maxsize=1024)
def browser(ua: str) -> tuple[str, str | None]:
    """Segment's `getBrowser` and `getBrowserVersion` ("" and None when unknown); cached, as a
    source's events come from few user agents."""
    name = next((name for rule, name in _BROWSER_RULES if rule.search(ua)), "")
    rule = _VERSION_RULES.get(name)
    found = rule.search(ua) if rule else None
    return name, found[1] if found else None


def cheap_guid() -> str:
    """Segment's `cheapGuid`: 16 base-36 characters, the `$insert_id` of an unmapped one."""
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "".join(secrets.choice(alphabet) for _ in range(16))


def event_time(p: Mapping[str, Any]) -> int:
    """The mapped `time` in epoch ms (dayjs's reading), or now when there is none."""
    at = p.get("time", GONE)
    ms = date_ms(at) if truthy(at) else None
    return int(time.time() * 1000) if ms is None else ms


def truthy(value: Any) -> bool:
    """JavaScript truthiness of a payload value (undefined, null, "", 0, NaN, false are not)."""
    return (
        value is not GONE
        and value is not None
        and value != ""
        and value is not False
        and (not isinstance(value, int | float) or (value == value and value != 0))
    )


def event_properties(p: Mapping[str, Any], source_name: str | None) -> dict[str, Any]:
    """`getEventProperties`: Mixpanel's reserved names from the payload, then the event's own
    properties (but for `RESERVED`) over them; undefined values are kept as GONE."""
    get = p.get
    utm = get("utm_properties") or {}
    name: Any = GONE
    version: Any = GONE
    if truthy(ua := get("userAgent", GONE)):
        name, found = browser(js_string(ua))
        version = GONE if found is None else found
    context = get("context")
    integration = context.get("integration") if isinstance(context, dict) else None
    iterable = isinstance(integration, dict) and integration.get("name") == "Iterable"
    library = get("library_name", GONE)
    agent = get("userAgentData")
    agent = agent if isinstance(agent, dict) else {}
    distinct_id = get("distinct_id")
    # fmt: off
    properties = {
        "time": event_time(p), "ip": get("ip", GONE), "id": get("distinct_id", GONE),
        "$anon_id": get("anonymous_id", GONE),
        "distinct_id": "" if distinct_id is None else distinct_id,
        "$app_build_number": get("app_build", GONE),
        "$app_version_string": get("app_version", GONE),
        "$app_namespace": get("app_namespace", GONE), "$app_name": get("app_name", GONE),
        "$browser": name, "$browser_version": version,
        "$bluetooth_enabled": get("bluetooth", GONE), "$cellular_enabled": get("cellular", GONE),
        "$carrier": get("carrier", GONE), "$current_url": get("url", GONE),
        "$device": get("device_name", GONE), "$device_id": get("anonymous_id", GONE),
        "$device_type": get("device_type", GONE), "$device_name": get("device_name", GONE),
        "$group_id": get("group_id", GONE), "$identified_id": get("user_id", GONE),
        "$insert_id": _coalesce(get("insert_id"), cheap_guid),
        "$ios_ifa": get("idfa", GONE), "$lib_version": get("library_version", GONE),
        "$locale": get("language", GONE), "$manufacturer": get("device_manufacturer", GONE),
        "$model": get("device_model", GONE), "$os": get("os_name", GONE),
        "$os_version": get("os_version", GONE), "$referrer": get("referrer", GONE),
        "$screen_height": get("screen_height", GONE), "$screen_width": get("screen_width", GONE),
        "$screen_density": get("screen_density", GONE),
        "$source": "Iterable" if iterable else "segment", "$user_id": get("user_id", GONE),
        "$wifi_enabled": get("wifi", GONE), "mp_country_code": get("country", GONE),
        # `library_name && ...`: an empty name is sent as it is.
        "mp_lib": f"Segment Actions: {js_string(library)}" if truthy(library) else library,
        "segment_source_name": GONE if source_name is None else source_name,
        "utm_campaign": utm.get("utm_campaign", GONE), "utm_content": utm.get("utm_content", GONE),
        "utm_medium": utm.get("utm_medium", GONE), "utm_source": utm.get("utm_source", GONE),
        "utm_term": utm.get("utm_term", GONE),
        "advertising_id": get("advertising_id", GONE),
        "ad_tracking_enabled": get("ad_tracking_enabled", GONE),
        "timezone": get("timezone", GONE), "app_platform": get("app_platform", GONE),
        "event_original_name": get("name", GONE),
        "$mobile": agent.get("mobile", GONE), "$platform": agent.get("platform", GONE),
        "$bitness": agent.get("bitness", GONE),
        "$platformVersion": agent.get("platformVersion", GONE),
        "$uaFullVersion": agent.get("uaFullVersion", GONE), "$wow64": agent.get("wow64", GONE),
    }
    # fmt: on
    own = get("event_properties")
    if isinstance(own, dict):
        properties.update((k, v) for k, v in own.items() if k not in RESERVED)
    return properties


def _coalesce(value: Any, otherwise: Any) -> Any:
    """`value ?? otherwise()`."""
    return otherwise() if value is None or value is GONE else value


def defined(value: Any) -> Any:
    """`value` as JSON.stringify writes it: object keys holding undefined are left out, keys
    that are array indexes come first, and whole floats are written as integers."""
    kind = type(value)
    if kind is dict:
        out = {}
        indexed = False
        for key, item in value.items():
            if item is GONE:
                continue
            if type(item) in _NESTED:
                item = defined(item)
            out[key] = item
            indexed = indexed or key[:1].isdigit()
        if indexed and any(_is_index(k) for k in out):
            # A JavaScript object lists its array-index keys first, in number order.
            first = sorted((k for k in out if _is_index(k)), key=int)
            out = {k: out[k] for k in [*first, *(k for k in out if not _is_index(k))]}
        return out
    if kind is list:
        return [None if v is GONE else defined(v) if type(v) in _NESTED else v for v in value]
    if kind is float and value.is_integer() and abs(value) < 1e21:
        return int(value)  # JavaScript has one number type: 2.0 is written 2
    return value


_NESTED = frozenset({dict, list, float})


def _is_index(key: str) -> bool:
    """An array index as JavaScript's property order knows it: "0", "7", "42" (not "07")."""
    return (
        key.isdigit() and key.isascii() and (key == "0" or key[0] != "0") and int(key) < 2**32 - 1
    )


def track_events(p: Mapping[str, Any], source_name: str | None) -> list[dict[str, Any]]:
    """Track Event: one Mixpanel event."""
    return [
        defined({"event": p.get("event", GONE), "properties": event_properties(p, source_name)})
    ]


def purchase_events(p: Mapping[str, Any], source_name: str | None) -> list[dict[str, Any]]:
    """Track Purchase: the order's event, then (when `generatePurchaseEventPerProduct`) a
    "Product Purchased" per product, each a millisecond earlier than the one before, with the
    order's properties but its totals and `$insert_id` `<index><insert id>`."""
    order = event_properties(p, source_name)
    events = [{"event": p.get("event", GONE), "properties": order}]
    products = p.get("products")
    if isinstance(products, list) and truthy(p.get("generatePurchaseEventPerProduct", GONE)):
        at = event_time(p)
        insert_id = _coalesce(p.get("insert_id"), cheap_guid)
        shared = {k: v for k, v in order.items() if k not in ORDER_KEYS}
        for index, product in enumerate(products):
            at -= 1
            properties = {**shared, "$insert_id": f"{index}{js_string(insert_id)}", "time": at}
            if isinstance(product, dict):
                properties.update(product)
            events.append({"event": "Product Purchased", "properties": properties})
    return [defined(event) for event in events]
