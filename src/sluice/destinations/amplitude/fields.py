"""The fields of Segment's Amplitude actions, as data: what a payload may hold and its defaults.

From the actions' definitions (`event-schema.ts`, `properties.ts` and each action's `fields`):
name, label, type and default of every field, in the definitions' order. The order matters
twice: Segment's presets are `defaultValues(fields)` (the defaults, in field order), and its
payload validation reports errors field by field in that order (schema.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final


class _Missing:
    """No default: the field is left out of the presets."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


@dataclass(frozen=True, slots=True)
class Field:
    """One field of an action, as Segment's `fieldsToJsonSchema` reads it."""

    label: str
    type: str  # string, number, integer, boolean, object or datetime (a string or a number)
    default: Any = MISSING
    nullable: bool = False  # `allowNull`
    required: bool = False
    multiple: bool = False  # an array of values of `type`
    properties: Mapping[str, Field] = field(default_factory=dict)
    additional: bool = False  # `additionalProperties`: keys beyond `properties` are kept
    choices: tuple[str, ...] = ()


Fields = Mapping[str, Field]


def _path(path: str) -> dict[str, Any]:
    return {"@path": path}


def _either(first: str, then: str) -> dict[str, Any]:
    return {"@if": {"exists": _path(first), "then": _path(first), "else": _path(then)}}


def _text(label: str, path: str | None = None, **options: Any) -> Field:
    return Field(label, "string", MISSING if path is None else _path(path), **options)


def _object(label: str, path: str | None = None, **options: Any) -> Field:
    return Field(label, "object", MISSING if path is None else _path(path), **options)


def _strings(default_paths: Mapping[str, tuple[str, str]], **options: Any) -> dict[str, Any]:
    """`properties` and `default` of an object field whose properties are strings."""
    return {
        "properties": {key: _text(label) for key, (label, _) in default_paths.items()},
        "default": {key: _path(path) for key, (_, path) in default_paths.items()},
        **options,
    }


_CAMPAIGN = {"source": "source", "medium": "medium", "campaign": "name", "term": "term",
             "content": "content"}  # fmt: skip
_UTM = {f"utm_{k}": (f"UTM {k.title()}", f"$.context.campaign.{v}") for k, v in _CAMPAIGN.items()}
_DEVICE_ID = _either("$.context.device.id", "$.anonymousId")
_AD_ID = _either("$.context.device.advertisingId", "$.context.device.idfa")
USER_ID = _text("User ID", "$.userId", nullable=True)
DEVICE_ID = Field("Device ID", "string", _DEVICE_ID)
MIN_ID_LENGTH = Field("Minimum ID Length", "integer", nullable=True)
_REVENUE_FIELDS = {
    "price": Field("Price", "number"),
    "quantity": Field("Quantity", "integer"),
    "revenue": Field("Revenue", "number"),
    "productId": _text("Product ID"),
    "revenueType": _text("Revenue Type"),
}
_PRODUCTS = Field(
    "Products", "object", multiple=True, additional=True, properties=_REVENUE_FIELDS,
    default={"@arrayPath": ["$.properties.products", {
        k: _path(k) for k in ("price", "revenue", "quantity", "productId", "revenueType")}]},
)  # fmt: skip
_USER_AGENT: Fields = {
    "userAgent": _text("User Agent", "$.context.userAgent"),
    "userAgentParsing": Field("User Agent Parsing", "boolean", True),
    "includeRawUserAgent": Field("Include Raw User Agent", "boolean", False),
}
_USER_AGENT_DATA = Field(
    "User Agent Data", "object",
    **_strings({"model": ("Model", "$.context.userAgentData.model"),
                "platformVersion": ("PlatformVersion", "$.context.userAgentData.platformVersion")}),
)  # fmt: skip
_UTM_PROPERTIES = Field("UTM Properties", "object", **_strings(_UTM))
_REFERRER = _text("Referrer", "$.context.page.referrer")

# The device and location fields Log Event and Identify User share, in their order.
_CONTEXT: Fields = {
    "app_version": _text("App Version", "$.context.app.version"),
    "platform": _text("Platform", "$.context.device.type"),
    "os_name": _text("OS Name", "$.context.os.name"),
    "os_version": _text("OS Version", "$.context.os.version"),
    "device_brand": _text("Device Brand", "$.context.device.brand"),
    "device_manufacturer": _text("Device Manufacturer", "$.context.device.manufacturer"),
    "device_model": _text("Device Model", "$.context.device.model"),
    "carrier": _text("Carrier", "$.context.network.carrier"),
    "country": _text("Country", "$.context.location.country"),
    "region": _text("Region", "$.context.location.region"),
    "city": _text("City", "$.context.location.city"),
    "dma": _text("Designated Market Area"),
    "language": _text("Language", "$.context.locale"),
}

# event-schema.ts: the fields every Log Event action starts with.
EVENT: Fields = {
    "user_id": USER_ID,
    "device_id": DEVICE_ID,
    "event_type": _text("Event Type", "$.event", required=True),
    "session_id": Field("Session ID", "datetime",
                        _path("$.integrations.Actions Amplitude.session_id")),
    "time": Field("Timestamp", "datetime", _path("$.timestamp")),
    "event_properties": _object("Event Properties", "$.properties"),
    "user_properties": _object("User Properties", "$.traits"),
    "groups": _object("Groups"),
    **_CONTEXT,
    **{k: Field(f.label, f.type, _path(f"$.properties.{k}")) for k, f in _REVENUE_FIELDS.items()},
    "location_lat": Field("Latitude", "number", _path("$.context.location.latitude")),
    "location_lng": Field("Longtitude", "number", _path("$.context.location.longitude")),
    "ip": _text("IP Address", "$.context.ip"),
    "idfa": Field("Identifier For Advertiser (IDFA)", "string", _AD_ID),
    "idfv": _text("Identifier For Vendor (IDFV)", "$.context.device.id"),
    "adid": Field("Google Play Services Advertising ID", "string", _AD_ID),
    "android_id": _text("Android ID"),
    "event_id": Field("Event ID", "integer"),
    "insert_id": _text("Insert ID"),
    "library": _text("HIDDEN: Library", "$.context.library.name"),
    "library2": Field(
        "Library Settings", "object",
        properties={"behavior": Field("Behavior", "string", choices=("auto", "use_mapping")),
                    "mapping": _text("Library Mapping")},
        default={"behavior": "use_mapping", "mapping": _path("$.context.library.name")},
    ),
}  # fmt: skip
_BATCH_ENDPOINT = Field("Use Batch Endpoint", "boolean", False)

LOG_EVENT_V2: Fields = {
    **EVENT,
    "products": _PRODUCTS,
    "setOnce": Field("Set Once", "object", **_strings(
        {"initial_referrer": ("Initial Referrer", "$.context.page.referrer"),
         **{f"initial_{k}": (f"Initial {label}", path) for k, (label, path) in _UTM.items()}},
        additional=True)),
    "setAlways": Field("Set Always", "object", **_strings(
        {"referrer": ("Referrer", "$.context.page.referrer"), **_UTM}, additional=True)),
    "add": Field("Add", "object", additional=True),
    "use_batch_endpoint": _BATCH_ENDPOINT,
    **_USER_AGENT,
    "min_id_length": MIN_ID_LENGTH,
    "userAgentData": _USER_AGENT_DATA,
}  # fmt: skip
LOG_EVENT: Fields = {
    **EVENT,
    "products": _PRODUCTS,
    "use_batch_endpoint": _BATCH_ENDPOINT,
    **_USER_AGENT,
    "utm_properties": _UTM_PROPERTIES,
    "referrer": _REFERRER,
    "min_id_length": MIN_ID_LENGTH,
    "userAgentData": _USER_AGENT_DATA,
}
LOG_PURCHASE: Fields = {
    "trackRevenuePerProduct": Field("Track Revenue Per Product", "boolean", False),
    **LOG_EVENT,
}
IDENTIFY_USER: Fields = {
    "user_id": USER_ID,
    "device_id": DEVICE_ID,
    "user_properties": _object("User Properties", "$.traits"),
    "groups": _object("Groups"),
    **_CONTEXT,
    "paying": Field("Is Paying", "boolean"),
    "start_version": _text("Initial Version"),
    "insert_id": _text("Insert ID"),
    **_USER_AGENT,
    "utm_properties": _UTM_PROPERTIES,
    "referrer": _REFERRER,
    "min_id_length": MIN_ID_LENGTH,
    "library": _text("Library", "$.context.library.name"),
    "userAgentData": _USER_AGENT_DATA,
}
GROUP_IDENTIFY_USER: Fields = {
    "user_id": USER_ID,
    "device_id": DEVICE_ID,
    "insert_id": _text("Insert ID"),
    "time": _text("Timestamp", "$.timestamp"),  # a string here, not a datetime
    "group_properties": _object("Group Properties", "$.traits"),
    "group_type": _text("Group Type", required=True),
    "group_value": _text("Group Value", required=True),
    "min_id_length": MIN_ID_LENGTH,
}
MAP_USER: Fields = {
    "user_id": _text("User ID", "$.previousId"),
    "global_user_id": _text("Global User ID", "$.userId"),
    "min_id_length": MIN_ID_LENGTH,
}


def defaults(fields: Fields) -> dict[str, Any]:
    """actions-core's `defaultValues`: every field's default, in field order."""
    return {name: f.default for name, f in fields.items() if f.default is not MISSING}
