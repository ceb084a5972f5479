"""Google Analytics 4 Cloud: Segment events as GA4 Measurement Protocol events.

What it sends, per segmentio/action-destinations
`packages/destination-actions/src/destinations/google-analytics-4/` (`ga4-properties.ts`,
`ga4-functions.ts`, one folder per action, `metadata.json`, and the `__tests__` snapshots):
`POST /mp/collect?api_secret=…&measurement_id=…` (web streams) or `…&firebase_app_id=…` (app
streams, unencoded colons), `User-Agent: Segment (Actions)`, JSON `{client_id | app_instance_id,
user_id?, events: [{name, params}], user_properties?: {k: {value}}, timestamp_micros?}`, one event
per request. `params` holds the action's fields in Segment's order (unset ones left out), then
`engagement_time_msec`, then the mapped `params` object. `timestamp_micros` is the event
timestamp in milliseconds times 1,000; currencies are checked against ISO 4217 and sent as given.

The presets are the actions' default subscriptions and field defaults, with two differences
(docs/destinations/google-analytics-4.md): Custom Event takes the tracks no other preset takes,
and Generate Lead, whose default subscription is every track, has no preset.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import msgspec

from sluice.destinations.base import (
    Action,
    Destination,
    DestinationSettings,
    Mapped,
    OutRequest,
    Preset,
)

USER_AGENT = "Segment (Actions)"
MOBILE_APP = "Mobile App"  # data_stream_type for app streams; "Web" (default) otherwise
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ISO_4217 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP "
    "ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR "
    "ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD "
    "MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR "
    "PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL "
    "THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF "
    "XAG XAU XBA XBB XBC XBD XCD XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWL"
)
CURRENCIES = frozenset(ISO_4217.split())


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


def _path(path: str) -> dict[str, str]:
    return {"@path": path}


_ITEM = {
    "item_id": "product_id", "item_name": "name", "affiliation": "affiliation", "coupon": "coupon",
    "index": "position", "item_brand": "brand", "item_category": "category",
    "item_variant": "variant", "price": "price", "quantity": "quantity",
}  # fmt: skip
# One product from the event's properties, or every product of `properties.products`.
ONE = {
    "@arrayPath": ["$.properties", {k: _path(f"$.{v}") for k, v in _ITEM.items() if k != "index"}]
}
ALL = {"@arrayPath": ["$.properties.products", {k: _path(f"$.{v}") for k, v in _ITEM.items()}]}
P = "$.properties."


@dataclass(frozen=True, slots=True)
class Ga4Event:
    """One action: its GA4 event, Segment's default trigger event and its parameters' defaults."""

    action: str  # Segment's action key
    title: str
    name: str  # the GA4 event name; "" for Custom Event (the mapped `name`)
    on: str | None  # the Segment event name of the preset; None: no preset
    params: Mapping[str, Any]  # parameter -> default ("$.x" a path, None none), in order
    required: tuple[str, ...] = ()
    currency_rule: str = ""  # "value": currency when value; "items": ... or on the first item
    client_key: str = "client_id"
    extra: Mapping[str, Any] = field(default_factory=dict)  # non-parameter fields' defaults


MONEY = {"currency": P + "currency", "value": P + "value"}
PROMOTION = {
    "creative_name": None,
    "creative_slot": P + "creative",
    "location_id": None,
    "promotion_id": P + "promotion_id",
    "promotion_name": P + "name",
    "items": ONE,
}
EVENTS = (
    Ga4Event("addToCart", "Add to Cart", "add_to_cart", "Product Added",
             {"currency": P + "currency", "items": ONE, "value": P + "value"}, ("items",)),
    Ga4Event("addPaymentInfo", "Add Payment Info", "add_payment_info", "Payment Info Entered",
             {**MONEY, "coupon": None, "payment_type": P + "payment_method", "items": ALL},
             ("items",), "items"),
    Ga4Event("addToWishlist", "Add to Wishlist", "add_to_wishlist", "Product Added to Wishlist",
             {**MONEY, "items": ONE}, ("items",), "items"),
    Ga4Event("beginCheckout", "Begin Checkout", "begin_checkout", "Checkout Started",
             {"coupon": P + "coupon", "currency": P + "currency", "items": ALL,
              "value": P + "value"}, ("items",)),
    Ga4Event("generateLead", "Generate Lead", "generate_lead", None, MONEY, (), "value"),
    Ga4Event("login", "Login", "login", "Signed In", {"method": None}),
    Ga4Event("purchase", "Purchase", "purchase", "Order Completed",
             {"affiliation": P + "affiliation", "coupon": P + "coupon", "currency": P + "currency",
              "items": ALL, "transaction_id": P + "order_id", "shipping": P + "shipping",
              "value": P + "total", "tax": P + "tax"}, ("currency", "items", "transaction_id")),
    Ga4Event("refund", "Refund", "refund", "Order Refunded",
             {"currency": P + "currency", "transaction_id": P + "order_id", "value": P + "total",
              "affiliation": P + "affiliation", "coupon": None, "shipping": P + "shipping",
              "tax": None, "items": ALL}, ("transaction_id",), "items"),
    Ga4Event("removeFromCart", "Remove from Cart", "remove_from_cart", "Product Removed",
             {**MONEY, "items": ONE}, ("items",), "items"),
    Ga4Event("search", "Search", "search", "Products Searched", {"search_term": P + "query"},
             ("search_term",)),
    Ga4Event("selectItem", "Select Item", "select_item", "Product Clicked",
             {"items": ONE, "item_list_name": None, "item_list_id": None}, ("items",)),
    Ga4Event("selectPromotion", "Select Promotion", "select_promotion", "Promotion Clicked",
             PROMOTION),
    Ga4Event("signUp", "Sign Up", "sign_up", "Signed Up", {"method": P + "type"}),
    Ga4Event("viewCart", "View Cart", "view_cart", "Cart Viewed", {**MONEY, "items": ALL},
             ("items",), "items"),
    Ga4Event("viewItem", "View Item", "view_item", "Product Viewed",
             {"currency": P + "currency", "items": ONE, "value": P + "value"}, ("items",)),
    Ga4Event("viewItemList", "View Item List", "view_item_list", "Product List Viewed",
             {"item_list_id": P + "list_id", "item_list_name": P + "category", "items": ALL},
             ("items",)),
    Ga4Event("viewPromotion", "View Promotion", "view_promotion", "Promotion Viewed",
             {**PROMOTION, "location_id": P + "position"}, ("items",)),
    Ga4Event("pageView", "Page View", "page_view", None,
             {"page_location": "$.context.page.url", "page_referrer": "$.context.page.referrer",
              "page_title": "$.context.page.title"}, client_key="clientId"),
    Ga4Event("customEvent", "Custom Event", "", None, {}, ("name",), client_key="clientId",
             extra={"name": "$.event", "lowercase": False}),
)  # fmt: skip


def timestamp_micros(value: Any) -> int | None:
    """Segment's conversion: a number stays; a date becomes its milliseconds times 1,000."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if math.isfinite(value) else None
    text = str(value).strip()
    try:
        return int(text) if text.lstrip("-").isdigit() else int(float(text))
    except (ValueError, OverflowError):
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(milliseconds=1) * 1000


def event_name(name: str, lowercase: bool) -> str:
    """Custom Event names: trimmed, whitespace replaced by `_`, optionally lower-cased."""
    name = re.sub(r"\s", "_", name.strip())
    return name.lower() if lowercase else name


def _currency(code: Any, where: str) -> None:
    if not isinstance(code, str) or code.upper() not in CURRENCIES:
        raise ValueError(f"{code} is not a valid currency code.{where}")


def _items(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise ValueError("items: expected a list of products")
    items = []
    for product in raw:
        item = (
            {k: v for k, v in product.items() if v is not None} if isinstance(product, dict) else {}
        )
        if "item_id" not in item and "item_name" not in item:
            raise ValueError(
                "One of product name or product id is required for product or impression data."
            )
        if "currency" in item:
            _currency(item["currency"], " (item)")
        items.append(item)
    return items


def _body(spec: Ga4Event, payload: Mapping[str, Any], identity: dict[str, Any]) -> bytes:
    fields = {k: v for k, v in payload.items() if v is not None}
    missing = [name for name in spec.required if name not in fields]
    if missing:
        raise ValueError(f"{spec.title}: missing required field(s) {', '.join(missing)}")
    params: dict[str, Any] = {}
    for name in spec.params:
        if name in fields:
            params[name] = _items(fields[name]) if name == "items" else fields[name]
    if "currency" in params:
        _currency(params["currency"], "")
    items, currency = params.get("items"), params.get("currency")
    if spec.action == "addPaymentInfo" and items == []:
        raise ValueError("Google requires one or more products in add_payment_info events.")
    if spec.currency_rule and params.get("value") and currency is None:
        raise ValueError("Currency is required if value is set.")
    if (
        spec.currency_rule == "items"
        and currency is None
        and not (items and "currency" in items[0])
    ):
        raise ValueError("One of item-level currency or top-level currency is required.")
    if "engagement_time_msec" in fields:
        params["engagement_time_msec"] = fields["engagement_time_msec"]
    if isinstance(fields.get("params"), dict):
        params.update(fields["params"])
    name = spec.name or event_name(str(fields["name"]), fields.get("lowercase") is True)
    body: dict[str, Any] = dict(identity)
    if "user_id" in fields:
        body["user_id"] = fields["user_id"]
    body["events"] = [{"name": name, "params": params}]
    if isinstance(fields.get("user_properties"), dict):
        body["user_properties"] = {k: {"value": v} for k, v in fields["user_properties"].items()}
    micros = timestamp_micros(fields.get("timestamp_micros"))
    if micros is not None:
        body["timestamp_micros"] = micros
    consent = {
        key: fields[f"{key}_consent"]
        for key in ("ad_user_data", "ad_personalization")
        if f"{key}_consent" in fields
    }
    if consent:
        body["consent"] = consent
    return msgspec.json.encode(body)


def _request(destination: GoogleAnalytics4, spec: Ga4Event, item: Mapped) -> OutRequest:
    settings = destination.settings
    payload = item.payload if isinstance(item.payload, dict) else {}
    secret = quote(settings.api_secret, safe="")
    if payload.get("data_stream_type") == MOBILE_APP:
        if not settings.firebase_app_id:
            raise ValueError("Firebase App ID is required for mobile app streams")
        if not payload.get("app_instance_id"):
            raise ValueError("Firebase App Instance ID is required for mobile app streams")
        query = f"api_secret={secret}&firebase_app_id={quote(settings.firebase_app_id, safe=':')}"
        identity = {"app_instance_id": payload["app_instance_id"]}
    else:
        if not settings.measurement_id:
            raise ValueError("Measurement ID is required for web streams")
        client_id = payload.get("client_id") or payload.get("clientId")
        if not client_id:
            raise ValueError("Client ID is required for web streams")
        query = f"api_secret={secret}&measurement_id={quote(settings.measurement_id, safe='')}"
        identity = {"client_id": client_id}
    headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
    url = f"{destination.endpoint}/mp/collect?{query}"
    return OutRequest("POST", url, headers, _body(spec, payload, identity), (item.message_id,))


def _action(spec: Ga4Event) -> Action:
    def build(destination: GoogleAnalytics4, mapped: Sequence[Mapped]) -> list[OutRequest]:
        return [_request(destination, spec, item) for item in mapped]

    return Action(spec.action, spec.title, build, max_batch=1)


def _mapping(spec: Ga4Event) -> dict[str, Any]:
    """The preset's field mappings: Segment's defaults for every field of the action."""
    then, otherwise = _path("$.userId"), _path("$.anonymousId")
    defaults = {**spec.extra, **spec.params}
    return {
        "data_stream_type": "Web",
        spec.client_key: {"@if": {"exists": then, "then": then, "else": otherwise}},
        "timestamp_micros": _path("$.timestamp"),
        **{
            name: _path(default) if isinstance(default, str) and default[:2] == "$." else default
            for name, default in defaults.items()
            if default is not None
        },
        "engagement_time_msec": 1,
    }


def _presets() -> list[Preset]:
    named = [spec for spec in EVENTS if spec.on]
    presets = [
        Preset(s.title, s.action, f'type = "track" and event = "{s.on}"', _mapping(s))
        for s in named
    ]
    page, custom = (next(s for s in EVENTS if s.action == a) for a in ("pageView", "customEvent"))
    presets.append(Preset(page.title, page.action, 'type = "page"', _mapping(page)))
    others = " and ".join(f'event != "{s.on}"' for s in named)
    presets.append(
        Preset(custom.title, custom.action, f'type = "track" and {others}', _mapping(custom))
    )
    return presets


class GoogleAnalytics4(Destination):
    """Google Analytics 4 Cloud (Measurement Protocol), one action per GA4 event."""

    id: ClassVar[str] = "google-analytics-4"
    name: ClassVar[str] = "Google Analytics 4 Cloud"
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
    actions: ClassVar[Mapping[str, Action]] = {spec.action: _action(spec) for spec in EVENTS}
    presets: ClassVar[Sequence[Preset]] = tuple(_presets())

    settings: GA4Settings
