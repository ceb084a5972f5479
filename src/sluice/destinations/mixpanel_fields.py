"""The fields of Segment's Mixpanel (Actions) actions, in its definition's order.

From `@segment/action-destinations` 3.497.0, `destinations/mixpanel/`: `mixpanel-properties.ts`
(`eventProperties`, `productsProperties`) and each action's `index.ts`. They give the presets'
mappings (`defaultValues` of the fields, so key order matters: Segment's UI and the preset
check compare them) and the schema Segment's runtime cleans and validates a payload with
(mixpanel_schema.py).
"""

from __future__ import annotations

from typing import Any

from sluice.destinations.mixpanel_schema import GONE, Field, schema_of


def _path(path: str) -> dict[str, str]:
    return {"@path": path}


def _either(first: str, then: str) -> dict[str, Any]:
    return {"@if": {"exists": _path(first), "then": _path(first), "else": _path(then)}}


def _text(label: str, path: str | None = None, **extra: Any) -> Field:
    return Field("string", label, _path(path) if path else GONE, **extra)


def _typed(kind: str, label: str, path: str) -> Field:
    return Field(kind, label, _path(path))


_UTM = {"utm_source": ("UTM Source", "source"), "utm_medium": ("UTM Medium", "medium"),
        "utm_campaign": ("UTM Campaign", "name"), "utm_term": ("UTM Term", "term"),
        "utm_content": ("UTM Content", "content")}  # fmt: skip
_UA_DATA = {"mobile": "Mobile", "platform": "Platform", "architecture": "Architecture",
            "bitness": "Bitness", "model": "Model", "platformVersion": "PlatformVersion",
            "uaFullVersion": "UaFullVersion", "wow64": "wow64"}  # fmt: skip
_UA_BOOLEANS = {"mobile", "wow64"}

# fmt: off
EVENT_FIELDS: dict[str, Field] = {
    "distinct_id": Field("string", "Distinct ID", _either("$.userId", "$.anonymousId")),
    "anonymous_id": _text("Anonymous ID", "$.anonymousId"),
    "user_id": _text("User ID", "$.userId"),
    "group_id": _text("Group ID", "$.context.groupId"),
    "insert_id": _text("Insert ID", "$.messageId"),
    "time": _typed("datetime", "Timestamp", "$.timestamp"),
    "app_name": _text("App Name", "$.context.app.name"),
    "app_namespace": _text("App Namespace", "$.context.app.namespace"),
    "app_build": _text("App Build", "$.context.app.build"),
    "app_version": _text("App Version", "$.context.app.version"),
    "os_name": _text("OS Name", "$.context.os.name"),
    "os_version": _text("OS Version", "$.context.os.version"),
    "device_id": _text("Device ID", "$.context.device.id"),
    "device_type": _text("Device Type", "$.context.device.type"),
    "device_name": _text("Device Name", "$.context.device.name"),
    "device_manufacturer": _text("Device Manufacturer", "$.context.device.manufacturer"),
    "device_model": _text("Device Model", "$.context.device.model"),
    "bluetooth": _typed("boolean", "Bluetooth Enabled", "$.context.network.bluetooth"),
    "carrier": _text("Carrier", "$.context.network.carrier"),
    "cellular": _typed("boolean", "Cellular Enabled", "$.context.network.cellular"),
    "wifi": _typed("boolean", "Wifi", "$.context.network.wifi"),
    "country": _text("Country", "$.context.location.country"),
    "region": _text("Region", "$.context.location.region"),
    "language": _text("Language", "$.context.locale"),
    "library_name": _text("Library Name", "$.context.library.name"),
    "library_version": _text("Library Version", "$.context.library.version"),
    "ip": _text("IP Address", "$.context.ip"),
    "idfa": Field("string", "Identifier For Advertiser (IDFA)",
                  _either("$.context.device.advertisingId", "$.context.device.idfa")),
    "url": _text("URL", "$.context.page.url"),
    # Segment's current defaults read width and height (older versions read the density).
    "screen_width": _typed("number", "Screen width", "$.context.screen.width"),
    "screen_height": _typed("number", "Screen height", "$.context.screen.height"),
    "screen_density": _typed("number", "Screen density", "$.context.screen.density"),
    "referrer": _text("Referrer", "$.context.page.referrer"),
    "userAgent": _text("User Agent", "$.context.userAgent"),
    "advertising_id": _text("Advertising ID", "$.context.device.advertisingId"),
    "ad_tracking_enabled": _text("Ad Tracking Enabled", "$.context.device.adTrackingEnabled"),
    "timezone": _text("Timezone", "$.context.timezone"),
    "app_platform": _text("App Platform", "$.context.app.platform"),
    "name": Field("string", "Event Original Name", _either("$.event", "$.name")),
    "event_properties": _typed("object", "Event Properties", "$.properties"),
    "context": _typed("object", "Event context", "$.context"),
    "utm_properties": Field(
        "object", "UTM Properties",
        {key: _path(f"$.context.campaign.{path}") for key, (_, path) in _UTM.items()},
        properties={key: Field("string", label) for key, (label, _) in _UTM.items()},
    ),
    "enable_batching": Field("boolean", "Batch Data to Mixpanel", True),
    "batch_size": Field("number", "Batch Size", 1000, minimum=1, maximum=2000),
    "userAgentData": Field(
        "object", "User Agent Data",
        {key: _path(f"$.context.userAgentData.{key}") for key in _UA_DATA},
        properties={key: Field("boolean" if key in _UA_BOOLEANS else "string", label)
                    for key, label in _UA_DATA.items()},
    ),
}
_PRODUCT = {"product_id": ("string", "Product Id"), "sku": ("string", "SKU"),
            "category": ("string", "Category"), "name": ("string", "Name"),
            "brand": ("string", "Brand"), "variant": ("string", "Variant"),
            "price": ("number", "Price"), "quantity": ("integer", "Quantity"),
            "coupon": ("string", "Coupon"), "position": ("number", "position"),
            "url": ("string", "url"), "image_url": ("string", "Image url")}
PRODUCT_FIELDS: dict[str, Field] = {
    "products": Field(
        "object", "Products",
        {"@arrayPath": ["$.properties.products", {key: _path(key) for key in _PRODUCT}]},
        multiple=True, additional=True,
        properties={key: Field(kind, label) for key, (kind, label) in _PRODUCT.items()},
    ),
}
EVENT_NAME = Field("string", "Event Name", _path("$.event"), required=True)

TRACK_FIELDS = {"event": EVENT_NAME, **EVENT_FIELDS}
PURCHASE_FIELDS = {
    "generatePurchaseEventPerProduct": Field(
        "boolean", "Generate Purchase Event Per Product", True
    ),
    **EVENT_FIELDS, **PRODUCT_FIELDS, "event": EVENT_NAME,
}
_IDS = {
    "ip": _text("IP Address", "$.context.ip"),
    "user_id": _text("User ID", "$.userId", allow_null=True),
    "anonymous_id": _text("Anonymous ID", "$.anonymousId", allow_null=True),
}
IDENTIFY_FIELDS = {**_IDS, "traits": _typed("object", "User Properties", "$.traits")}
INCREMENT_FIELDS = {
    **_IDS,
    "increment": Field("object", "Increment Numerical Properties",
                       _path("$.properties.increment"), required=True),
}
GROUP_FIELDS = {
    "group_key": _text("Group Key"),
    "group_id": Field("string", "Group ID", _path("$.groupId"), required=True),
    "traits": _typed("object", "Group Properties", "$.traits"),
}
ALIAS_FIELDS = {
    "alias": Field("string", "Alias", _either("$.userId", "$.anonymousId"), allow_null=True),
    "distinct_id": _text("Distinct ID", "$.previousId"),
}
# fmt: on

SCHEMAS = {
    "trackEvent": schema_of(TRACK_FIELDS),
    "trackPurchase": schema_of(PURCHASE_FIELDS),
    "identifyUser": schema_of(IDENTIFY_FIELDS),
    "groupIdentifyUser": schema_of(GROUP_FIELDS),
    "alias": schema_of(ALIAS_FIELDS),
    "incrementProperties": schema_of(INCREMENT_FIELDS),
}
