"""Google Analytics 4 Cloud: Segment events as GA4 Measurement Protocol events.

A reimplementation of Segment's `google-analytics-4` Actions destination (action-destinations
`destinations/google-analytics-4/`: `ga4-properties.ts`, `ga4-functions.ts`, one folder per
action) that sends byte for byte what Segment's code sends: `POST /mp/collect?api_secret=…&
measurement_id=…` (web streams) or `…&firebase_app_id=…` (app streams), the settings pasted into
the query as Segment's template literal does, `User-Agent: Segment (Actions)`, and the JSON
`{client_id | app_instance_id, user_id, events: [{name, params}], user_properties,
timestamp_micros, consent}`, one event per request. `params` holds the action's parameters in
the order its `perform` writes them, then `engagement_time_msec`, then the mapped `params`
spread over them. Each action checks the payload in its `perform`'s order with its messages.
What Segment's framework does before `perform` and Node when writing is in `ga4_kit.py`.

Segment's GA4 Cloud ships no automatic preset; Sluice's map the Spec's ecommerce events to the
matching actions, each with the action's field defaults as its mapping
(docs/destinations/google-analytics-4.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from sluice.destinations.base import (
    Action,
    Destination,
    DestinationSettings,
    InvalidPayload,
    Mapped,
    OutRequest,
    Preset,
)
from sluice.destinations.ga4_actions import (
    ACTIONS,
    ANY_ITEM,
    EMPTY_ITEMS,
    FIRST_ITEM,
    MOBILE_APP,
    SET_CURRENCY,
    THE_CURRENCY,
    VALUE_CURRENCY,
    Ga4Action,
    field_defaults,
)
from sluice.destinations.ga4_kit import (
    JS_SPACE,
    UNDEFINED,
    date_parse,
    js_json,
    js_order,
    js_to_number,
    node_fetch_query,
    prepare,
)
from sluice.mapping.directives import js_truthy

USER_AGENT = "Segment (Actions)"
# Segment's CURRENCY_ISO_CODES (constants.ts), as it stands: not today's ISO 4217 list.
CURRENCY_CODES = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP "
    "ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR "
    "ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD "
    "MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR "
    "PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLL SOS SRD SSP STN SVC SYP SZL THB "
    "TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VES VND VUV WST XAF XAG XAU "
    "XBA XBB XBC XBD XCD XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWC"
)
CURRENCIES = frozenset(CURRENCY_CODES.split())


class GA4Settings(DestinationSettings, kw_only=True, forbid_unknown_fields=True):
    """The stream's API secret, and its measurement id (web) or Firebase app id (app)."""

    api_secret: str
    measurement_id: str | None = None
    firebase_app_id: str | None = None

    def __post_init__(self) -> None:
        if not self.measurement_id and not self.firebase_app_id:
            raise ValueError("measurement_id: required (or firebase_app_id for an app stream)")

    def __repr__(self) -> str:
        return (
            f"GA4Settings(measurement_id={self.measurement_id!r}, "
            f"firebase_app_id={self.firebase_app_id!r}, api_secret=<redacted>)"
        )


# -- what perform does -----------------------------------------------------------------------------


def verify_currency(code: str) -> None:
    if code.upper() not in CURRENCIES:
        raise InvalidPayload(f"{code} is not a valid currency code.")


def _check(check: int, payload: Mapping[str, Any]) -> None:
    """One of the currency and product checks of Segment's performs (`checks`)."""
    items: list[dict[str, Any]] | None = payload.get("items")
    currency = payload.get("currency")
    if check == EMPTY_ITEMS and items is not None and not items:
        raise InvalidPayload("Google requires one or more products in add_payment_info events.")
    if (check == SET_CURRENCY and js_truthy(currency)) or check == THE_CURRENCY:
        verify_currency(str(currency))
    if check == VALUE_CURRENCY and js_truthy(payload.get("value")) and currency is None:
        raise InvalidPayload("Currency is required if value is set.")
    if currency is None and (
        (check == FIRST_ITEM and items is not None and "currency" not in items[0])
        or (check == ANY_ITEM and not (items and js_truthy(items[0].get("currency"))))
    ):
        raise InvalidPayload("One of item-level currency or top-level currency is required.")


def _products(items: list[dict[str, Any]], no_id: str) -> list[dict[str, Any]]:
    for product in items:
        if "item_name" not in product and "item_id" not in product:
            raise InvalidPayload(no_id)
        if js_truthy(product.get("currency")):
            verify_currency(str(product["currency"]))
    return items


def _verify_params(params: Mapping[str, Any], user: bool = False) -> None:
    """Segment's verifyParams / verifyUserProps: GA4 takes no lists or objects (nor nulls, for
    event parameters); the first offender in JavaScript's key order is named."""
    refused, what = (
        ("array or object", "user properties")
        if user
        else ("null, array, or object", "event parameters and item parameters")
    )
    for key, value in js_order(params).items():
        kind = None
        if isinstance(value, list) and not (key == "items" and not user):
            kind = "Array"
        elif value is None and not user:
            kind = "NULL"
        elif isinstance(value, dict):
            kind = "object"
        if kind:
            raise InvalidPayload(
                f"Param [{key}] has unsupported value of type [{kind}]. GA4 does not accept "
                f"{refused} values for {what}."
            )


def convert_timestamp(value: Any) -> Any:
    """Segment's convertTimestamp: a number string stays that number, anything else is
    `Date.parse` times 1,000 (NaN, sent as null, when not a date); UNDEFINED when not set."""
    if not js_truthy(value):
        return UNDEFINED
    number = js_to_number(str(value))
    if not math.isnan(number):
        return number
    ms = date_parse(str(value))
    return math.nan if ms is None else ms * 1000


_JS_SPACE_RUN = re.compile(f"[{re.escape(JS_SPACE)}]")


def event_name(name: str, lowercase: bool) -> str:
    """Custom Event names: trimmed, each whitespace character replaced by `_`, optionally
    lower-cased (JavaScript's notion of whitespace)."""
    name = _JS_SPACE_RUN.sub("_", name.strip(JS_SPACE))
    return name.lower() if lowercase else name


def _stream(settings: GA4Settings, spec: Ga4Action, p: Mapping[str, Any]) -> tuple[str, str, Any]:
    """The query and identifier of the stream: Segment's getMobile/WebStreamParams."""
    if p.get("data_stream_type", "Web") == MOBILE_APP:
        if not settings.firebase_app_id:
            raise InvalidPayload("Firebase App ID is required for mobile app streams")
        if not js_truthy(p.get("app_instance_id")):
            raise InvalidPayload("Firebase App Instance ID is required for mobile app streams")
        query = f"api_secret={settings.api_secret}&firebase_app_id={settings.firebase_app_id}"
        return query, "app_instance_id", p["app_instance_id"]
    if not settings.measurement_id:
        raise InvalidPayload("Measurement ID is required for web streams")
    if not js_truthy(p.get(spec.client_key)):
        raise InvalidPayload("Client ID is required for web streams")
    query = f"api_secret={settings.api_secret}&measurement_id={settings.measurement_id}"
    return query, "client_id", p[spec.client_key]


def _request(destination: GoogleAnalytics4, spec: Ga4Action, item: Mapped) -> OutRequest:
    p = prepare(item.payload if isinstance(item.payload, Mapping) else {}, spec.fields)
    query, id_key, identifier = _stream(destination.settings, spec, p)
    for check in spec.checks:
        _check(check, p)
    name = spec.name or event_name(p["name"], js_truthy(p.get("lowercase")))
    params = {key: p.get(key, UNDEFINED) for key in spec.params}
    if "items" in params:
        params["items"] = _products(p.get("items", []), spec.no_id)
    _verify_params(p.get("params", {}))
    _verify_params(p.get("user_properties", {}), user=True)
    params["engagement_time_msec"] = p.get("engagement_time_msec", UNDEFINED)
    params.update(p.get("params", {}))
    body: dict[str, Any] = {
        id_key: identifier,
        "user_id": p.get("user_id", UNDEFINED),
        "events": [{"name": name, "params": params}],
    }
    if "user_properties" in p:
        body["user_properties"] = {k: {"value": v} for k, v in p["user_properties"].items()}
    body["timestamp_micros"] = convert_timestamp(p.get("timestamp_micros"))
    consent = {k: p.get(f"{k}_consent", UNDEFINED) for k in ("ad_user_data", "ad_personalization")}
    if any(js_truthy(v) for v in consent.values() if v is not UNDEFINED):
        body["consent"] = consent
    headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
    url = f"{destination.endpoint}/mp/collect?{node_fetch_query(query)}"
    return OutRequest("POST", url, headers, js_json(body), (item.message_id,))


def _build(spec: Ga4Action) -> Action:
    def build(destination: GoogleAnalytics4, mapped: Sequence[Mapped]) -> list[OutRequest]:
        return [_request(destination, spec, item) for item in mapped]

    return Action(spec.key, spec.title, build, max_batch=1)


# -- presets ---------------------------------------------------------------------------------------


def _presets() -> list[Preset]:
    named = [spec for spec in ACTIONS if spec.on]
    presets = [
        Preset(s.title, s.key, f'type = "track" and event = "{s.on}"', field_defaults(s))
        for s in named
    ]
    page, custom = (next(s for s in ACTIONS if s.key == k) for k in ("pageView", "customEvent"))
    presets.append(Preset(page.title, page.key, 'type = "page"', field_defaults(page)))
    others = " and ".join(f'event != "{s.on}"' for s in named)
    trigger = f'type = "track" and {others}'
    presets.append(Preset(custom.title, custom.key, trigger, field_defaults(custom)))
    return presets


class GoogleAnalytics4(Destination):
    """Google Analytics 4 Cloud (Measurement Protocol), one action per GA4 event."""

    id: ClassVar[str] = "google-analytics-4"
    name: ClassVar[str] = "Google Analytics 4 Cloud"
    urls_as_built: ClassVar[bool] = True  # the query as Segment's template and node-fetch make it
    aliases: ClassVar[Sequence[str]] = (
        "Google Analytics 4",
        "Actions Google Analytics 4",
        "Actions Google Analytic 4",
    )
    segment_types: ClassVar[Sequence[str]] = (
        "actions-google-analytics-4", "60ad61f9ff47a16b8fb7b5d9",
    )  # fmt: skip
    segment_settings: ClassVar[Mapping[str, str]] = {
        "measurementId": "measurement_id", "firebaseAppId": "firebase_app_id",
        "apiSecret": "api_secret",
    }  # fmt: skip
    Settings: ClassVar[type[DestinationSettings]] = GA4Settings
    secret_settings: ClassVar[frozenset[str]] = frozenset({"api_secret"})
    default_endpoint: ClassVar[str] = "https://www.google-analytics.com"
    actions: ClassVar[Mapping[str, Action]] = {spec.key: _build(spec) for spec in ACTIONS}
    presets: ClassVar[Sequence[Preset]] = tuple(_presets())

    settings: GA4Settings
