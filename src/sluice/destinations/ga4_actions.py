"""The GA4 actions as Segment's definitions declare them: fields, parameters, checks.

Each action's fields in its definition's order (ga4-properties.ts and the action's own: key,
label, type, default mapping, required, choices), the parameters in the order its `perform`
writes them into the event, and the currency and product checks it makes, in order. The
defaults are Segment's: they are what Sluice's presets map (`field_defaults`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sluice.destinations.ga4_kit import (
    BOOLEAN,
    INTEGER,
    ITEMS,
    NO_DEFAULT,
    NUMBER,
    OBJECT,
    STRING,
    Field,
)

MOBILE_APP = "Mobile App"  # data_stream_type of app streams; "Web" (the default) otherwise
NO_ID = "One of product name or product id is required for product or impression data."


# -- the actions' fields, as their definitions declare them -------------------------------------


def _path(path: str) -> dict[str, str]:
    return {"@path": path}


def _prop(name: str) -> dict[str, str]:
    return _path(f"$.properties.{name}")


_ITEM_FIELDS = (
    ("item_id", "Product ID", STRING), ("item_name", "Name", STRING),
    ("affiliation", "Affiliation", STRING), ("coupon", "Coupon", STRING),
    ("currency", "Currency", STRING), ("discount", "Discount", NUMBER),
    ("index", "Index", NUMBER), ("item_brand", "Brand", STRING),
    ("item_category", "Category", STRING), ("item_category2", "Category 2", STRING),
    ("item_category3", "Category 3", STRING), ("item_category4", "Category 4", STRING),
    ("item_category5", "Category 5", STRING), ("item_list_id", "Item List ID", STRING),
    ("item_list_name", "Item List Name", STRING), ("item_variant", "Variant", STRING),
    ("location_id", "Location ID", STRING), ("price", "Price", NUMBER),
    ("quantity", "Quantity", INTEGER),
)  # fmt: skip
_PROMOTION_ITEM_FIELDS = (
    *_ITEM_FIELDS, ("creative_name", "Creative Name", STRING),
    ("creative_slot", "Creative Slot", STRING), ("promotion_name", "Promotion Name", STRING),
    ("promotion_id", "Promotion ID", STRING),
)  # fmt: skip
# Item defaults: one product from the event's properties, or each of `properties.products`.
_ITEM_PATHS = (
    ("item_id", "product_id"), ("item_name", "name"), ("affiliation", "affiliation"),
    ("coupon", "coupon"), ("index", "position"), ("item_brand", "brand"),
    ("item_category", "category"), ("item_variant", "variant"), ("price", "price"),
    ("quantity", "quantity"),
)  # fmt: skip
ONE_PRODUCT = {
    "@arrayPath": ["$.properties", {k: _path(f"$.{v}") for k, v in _ITEM_PATHS if k != "index"}]
}
PRODUCTS = {"@arrayPath": ["$.properties.products", {k: _path(f"$.{v}") for k, v in _ITEM_PATHS}]}
CLIENT_ID = {
    "@if": {"exists": _path("$.userId"), "then": _path("$.userId"), "else": _path("$.anonymousId")}
}

ONE_ITEMS = Field("items", "Products", ITEMS, ONE_PRODUCT, True, item_fields=_ITEM_FIELDS)
ALL_ITEMS = replace(ONE_ITEMS, default=PRODUCTS)
PROMOTION_ITEMS = replace(ONE_ITEMS, item_fields=_PROMOTION_ITEM_FIELDS)
CURRENCY = Field("currency", "Currency", STRING, _prop("currency"))
VALUE = Field("value", "Value", NUMBER, _prop("value"))
TOTAL = replace(VALUE, default=_prop("total"))
COUPON = Field("coupon", "Coupon", STRING)
AFFILIATION = Field("affiliation", "Affiliation", STRING, _prop("affiliation"))
TRANSACTION_ID = Field("transaction_id", "Order Id", STRING, _prop("order_id"), True)
SHIPPING = Field("shipping", "Shipping", NUMBER, _prop("shipping"))
METHOD = Field("method", "Method", STRING)
USER_PROPERTIES = Field("user_properties", "User Properties", OBJECT)
PROMOTION = (
    Field("creative_name", "Creative Name", STRING),
    Field("creative_slot", "Creative Slot", STRING, _prop("creative")),
    Field("location_id", "Location ID", STRING),
    Field("promotion_id", "Promotion ID", STRING, _prop("promotion_id")),
    Field("promotion_name", "Promotion Name", STRING, _prop("name")),
)
CONSENT = ("GRANTED", "DENIED")


def _fields(client_key: str, *own: Field, user_properties: bool = True) -> tuple[Field, ...]:
    """Every action's fields: the stream and identity ones, its own, then the shared tail."""
    return (
        Field("data_stream_type", "Data Stream Type", STRING, "Web", choices=("Web", MOBILE_APP)),
        Field("app_instance_id", "Firebase App Instance ID", STRING),
        Field(client_key, "Client ID", STRING, CLIENT_ID),
        Field("user_id", "User ID", STRING),
        Field("timestamp_micros", "Event Timestamp", STRING, _path("$.timestamp")),
        *own,
        *((USER_PROPERTIES,) if user_properties else ()),
        Field("engagement_time_msec", "Engagement Time in Milliseconds", NUMBER, 1),
        Field("params", "Event Parameters", OBJECT),
        Field("ad_user_data_consent", "Ad User Data Consent State", STRING, choices=CONSENT),
        Field("ad_personalization_consent", "Ad Personalization Consent State", STRING,
              choices=CONSENT),
    )  # fmt: skip


# The checks an action's perform makes, in its order (ga4.py `_check`).
EMPTY_ITEMS, SET_CURRENCY, THE_CURRENCY, VALUE_CURRENCY, FIRST_ITEM, ANY_ITEM = range(6)


@dataclass(frozen=True, slots=True)
class Ga4Action:
    """One action: its GA4 event, fields, parameters (in the order perform writes them) and
    checks; `on` is the Spec event of Sluice's preset (None: no preset)."""

    key: str
    title: str
    name: str  # the GA4 event name; "" for Custom Event (the mapped `name`)
    on: str | None
    fields: tuple[Field, ...]
    params: tuple[str, ...]
    checks: tuple[int, ...] = ()
    no_id: str = NO_ID  # the message for a product without id or name
    client_key: str = "client_id"


def _action(
    key: str, title: str, name: str, on: str | None, own: tuple[Field, ...], params: str,
    checks: tuple[int, ...] = (), *, no_id: str = NO_ID, client_key: str = "client_id",
    user_properties: bool = True,
) -> Ga4Action:  # fmt: skip
    fields = _fields(client_key, *own, user_properties=user_properties)
    return Ga4Action(key, title, name, on, fields, tuple(params.split()), checks, no_id, client_key)


MONEY_CHECKS = (SET_CURRENCY, VALUE_CURRENCY, ANY_ITEM)
ACTIONS = (
    _action("purchase", "Purchase", "purchase", "Order Completed",
            (AFFILIATION, replace(COUPON, default=_prop("coupon")),
             replace(CURRENCY, required=True), ALL_ITEMS, TRANSACTION_ID, SHIPPING,
             Field("tax", "Tax", NUMBER, _prop("tax")), TOTAL),
            "affiliation coupon currency items transaction_id shipping value tax", (THE_CURRENCY,)),
    _action("addToCart", "Add to Cart", "add_to_cart", "Product Added",
            (CURRENCY, ONE_ITEMS, VALUE), "currency items value", (SET_CURRENCY,)),
    _action("pageView", "Page View", "page_view", None,
            (Field("page_location", "Page Location", STRING, _path("$.context.page.url")),
             Field("page_referrer", "Page Referrer", STRING, _path("$.context.page.referrer")),
             USER_PROPERTIES,
             Field("page_title", "Page Title", STRING, _path("$.context.page.title"))),
            "page_location page_referrer page_title", client_key="clientId",
            user_properties=False),
    _action("customEvent", "Custom Event", "", None,
            (Field("name", "Event Name", STRING, _path("$.event"), True),
             Field("lowercase", "Lowercase Event Name", BOOLEAN, False)),
            "", client_key="clientId"),
    _action("selectItem", "Select Item", "select_item", "Product Clicked",
            (Field("item_list_name", "Item List Name", STRING),
             Field("item_list_id", "Item List Id", STRING), ONE_ITEMS),
            "items item_list_name item_list_id"),
    _action("beginCheckout", "Begin Checkout", "begin_checkout", "Checkout Started",
            (replace(COUPON, default=_prop("coupon")), CURRENCY, ALL_ITEMS, VALUE),
            "coupon currency items value", (SET_CURRENCY,)),
    _action("selectPromotion", "Select Promotion", "select_promotion", "Promotion Clicked",
            (*PROMOTION, replace(PROMOTION_ITEMS, required=False)),
            "creative_name creative_slot location_id promotion_id promotion_name items"),
    _action("viewItem", "View Item", "view_item", "Product Viewed",
            (CURRENCY, VALUE, ONE_ITEMS), "currency items value", (SET_CURRENCY,)),
    _action("removeFromCart", "Remove from Cart", "remove_from_cart", "Product Removed",
            (CURRENCY, VALUE, ONE_ITEMS), "currency value items", MONEY_CHECKS),
    _action("viewCart", "View Cart", "view_cart", "Cart Viewed",
            (CURRENCY, VALUE, ALL_ITEMS), "currency value items", MONEY_CHECKS),
    _action("search", "Search", "search", "Products Searched",
            (Field("search_term", "Search Term", STRING, _prop("query"), True),), "search_term"),
    _action("viewItemList", "View Item List", "view_item_list", "Product List Viewed",
            (Field("item_list_id", "Item List ID", STRING, _prop("list_id")),
             Field("item_list_name", "Item List Name", STRING, _prop("category")), ALL_ITEMS),
            "item_list_id item_list_name items"),
    _action("signUp", "Sign Up", "sign_up", "Signed Up",
            (replace(METHOD, default=_prop("type")),), "method"),
    _action("viewPromotion", "View Promotion", "view_promotion", "Promotion Viewed",
            (*PROMOTION[:2], replace(PROMOTION[2], default=_prop("position")), *PROMOTION[3:],
             PROMOTION_ITEMS),
            "creative_name creative_slot location_id promotion_id promotion_name items",
            no_id="One of item id or item name is required."),
    _action("addPaymentInfo", "Add Payment Info", "add_payment_info", "Payment Info Entered",
            (CURRENCY, VALUE, COUPON,
             Field("payment_type", "Payment Type", STRING, _prop("payment_method")), ALL_ITEMS),
            "currency value coupon payment_type items",
            (EMPTY_ITEMS, SET_CURRENCY, VALUE_CURRENCY, FIRST_ITEM)),
    _action("refund", "Refund", "refund", "Order Refunded",
            (CURRENCY, TRANSACTION_ID, TOTAL, AFFILIATION, COUPON, SHIPPING,
             Field("tax", "Tax", NUMBER), replace(ALL_ITEMS, required=False)),
            "currency transaction_id value affiliation coupon shipping tax items", MONEY_CHECKS),
    _action("login", "Login", "login", "Signed In", (METHOD,), "method"),
    _action("generateLead", "Generate Lead", "generate_lead", None, (CURRENCY, VALUE),
            "currency value", (SET_CURRENCY, VALUE_CURRENCY)),
    _action("addToWishlist", "Add to Wishlist", "add_to_wishlist", "Product Added to Wishlist",
            (CURRENCY, VALUE, ONE_ITEMS), "currency value items", MONEY_CHECKS),
)  # fmt: skip


def field_defaults(spec: Ga4Action) -> dict[str, Any]:
    """The action's fields' default mappings, in its definition's order (what Segment's editor
    fills in for a new mapping)."""
    return {f.key: f.default for f in spec.fields if f.default is not NO_DEFAULT}
