"""Google Analytics 4 Cloud: Segment's ecommerce spec through the presets to Measurement Protocol.

Expected bodies follow Segment's action code and test snapshots
(segmentio/action-destinations, destinations/google-analytics-4/__tests__).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import msgspec
import pytest

from destination_kit import deliver, presets_matching
from recorder import Recorder, Reply
from sluice.destinations.base import InvalidPayload, Mapped, Verdict
from sluice.destinations.ga4 import GA4Settings, GoogleAnalytics4, convert_timestamp, event_name
from sluice.destinations.ga4_actions import ACTIONS, field_defaults
from sluice.destinations.ga4_kit import UNDEFINED, node_fetch_query
from sluice.destinations.registry import load
from sluice.mapping import resolve

API_SECRET = "b287432uhkjHIUEL"
MEASUREMENT_ID = "G-TESTTOKEN"
FIREBASE_APP_ID = "2:925731738562:android:a9c393108115c5581abc5b"
MICROS = 1709633730123000  # 2024-03-05T10:15:30.123Z
TRANSPORT = {"host", "content-length", "accept", "accept-encoding", "connection"}
PAGE = {
    "path": "/deals",
    "referrer": "https://www.google.com/",
    "title": "Deals of the week",
    "url": "https://shop.example.com/deals?utm_campaign=spring",
}
MONOPOLY = {
    "product_id": "507f1f77bcf86cd799439011", "sku": "G-32", "category": "Games",
    "name": "Monopoly: 3rd Edition", "brand": "Hasbro", "variant": "200 pieces", "price": 18.99,
    "quantity": 1, "coupon": "MAYDEALS", "position": 3,
    "url": "https://shop.example.com/monopoly", "image_url": "https://shop.example.com/m.jpg",
}  # fmt: skip
UNO = {"product_id": "505bd76785ebb509fc183733", "sku": "46493-32", "name": "Uno Card Game",
       "price": 3, "quantity": 2, "category": "Games", "position": 2}  # fmt: skip
# The GA4 items Segment's default item mappings make of them (sku, url, image_url are dropped).
MONOPOLY_ITEM = {
    "item_id": "507f1f77bcf86cd799439011", "item_name": "Monopoly: 3rd Edition",
    "coupon": "MAYDEALS", "item_brand": "Hasbro", "item_category": "Games",
    "item_variant": "200 pieces", "price": 18.99, "quantity": 1,
}  # fmt: skip
UNO_ITEM = {"item_id": "505bd76785ebb509fc183733", "item_name": "Uno Card Game",
            "item_category": "Games", "price": 3, "quantity": 2}  # fmt: skip


def listed(item: dict[str, Any], position: int) -> dict[str, Any]:
    """An item from `properties.products`: `position` becomes `index` (after `coupon`)."""
    head = {k: v for k, v in item.items() if k in ("item_id", "item_name", "coupon")}
    return {**head, "index": position, **{k: v for k, v in item.items() if k not in head}}


def stored(type_: str, event: str | None = None, **properties: Any) -> dict[str, Any]:
    """A call as Sluice stores it: camelCase, receivedAt, skew-corrected `…Z` timestamp."""
    message: dict[str, Any] = {
        "type": type_,
        "messageId": "ajs-next-1709633730123-5c4d3f9e",
        "anonymousId": "6b0e4a37-9d5c-4a64-8f43-1a4f0f2f5a11",
        "userId": "user-42",
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.64.0"},
            "ip": "203.0.113.7",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/123.0",
            "page": PAGE,
        },
        "integrations": {},
        "originalTimestamp": "2024-03-05T10:15:29.871Z",
        "sentAt": "2024-03-05T10:15:29.902Z",
        "receivedAt": "2024-03-05T10:15:30.154Z",
        "timestamp": "2024-03-05T10:15:30.123Z",
        "properties": copy.deepcopy(properties),
    }
    if event is not None:
        message["event"] = event
    return message


CASES: list[tuple[str, dict[str, Any], str, str, dict[str, Any]]] = [
    ("Product Viewed", stored("track", "Product Viewed", **MONOPOLY, currency="usd", value=18.99),
     "viewItem", "view_item", {"currency": "usd", "items": [MONOPOLY_ITEM], "value": 18.99}),
    ("Product Added", stored("track", "Product Added", cart_id="skdjsidjsdkdj29j", **MONOPOLY),
     "addToCart", "add_to_cart", {"items": [MONOPOLY_ITEM]}),
    ("Product Removed", stored("track", "Product Removed", **MONOPOLY, currency="USD"),
     "removeFromCart", "remove_from_cart", {"currency": "USD", "items": [MONOPOLY_ITEM]}),
    ("Product Added to Wishlist",
     stored("track", "Product Added to Wishlist", wishlist_id="skdjsidjsdkdj29j",
            wishlist_name="Loved Games", **MONOPOLY, currency="EUR"),
     "addToWishlist", "add_to_wishlist", {"currency": "EUR", "items": [MONOPOLY_ITEM]}),
    ("Product Clicked", stored("track", "Product Clicked", **MONOPOLY),
     "selectItem", "select_item", {"items": [MONOPOLY_ITEM]}),
    ("Product List Viewed",
     stored("track", "Product List Viewed", list_id="hot_deals_1", category="Deals",
            products=[MONOPOLY, UNO]),
     "viewItemList", "view_item_list",
     {"item_list_id": "hot_deals_1", "item_list_name": "Deals",
      "items": [listed(MONOPOLY_ITEM, 3), listed(UNO_ITEM, 2)]}),
    ("Cart Viewed", stored("track", "Cart Viewed", cart_id="d92jd29jd92jd29j92d92jd",
                           currency="USD", products=[UNO]),
     "viewCart", "view_cart", {"currency": "USD", "items": [listed(UNO_ITEM, 2)]}),
    ("Checkout Started",
     stored("track", "Checkout Started", order_id="50314b8e9bcf000000000000",
            affiliation="Google Store", value=30, revenue=25.00, shipping=3, tax=2, discount=2.5,
            coupon="hasbros", currency="USD", products=[MONOPOLY, UNO]),
     "beginCheckout", "begin_checkout",
     {"coupon": "hasbros", "currency": "USD",
      "items": [listed(MONOPOLY_ITEM, 3), listed(UNO_ITEM, 2)], "value": 30}),
    ("Payment Info Entered",
     stored("track", "Payment Info Entered", checkout_id="39f39fj39f3jf93fj9fj39fj3f",
            order_id="dkfsjidfjsdifsdfksdjfkdsfjsdfkdsf", step=4, shipping_method="Fedex",
            payment_method="Visa", currency="USD", products=[UNO]),
     "addPaymentInfo", "add_payment_info",
     {"currency": "USD", "payment_type": "Visa", "items": [listed(UNO_ITEM, 2)]}),
    ("Order Completed",
     stored("track", "Order Completed", checkout_id="fksdjfsdjfisjf9sdfjsd9f",
            order_id="50314b8e9bcf000000000000", affiliation="Google Store", total=27.50,
            subtotal=22.50, revenue=25.00, shipping=3, tax=2, discount=2.5, coupon="hasbros",
            currency="USD", products=[MONOPOLY, UNO]),
     "purchase", "purchase",
     {"affiliation": "Google Store", "coupon": "hasbros", "currency": "USD",
      "items": [listed(MONOPOLY_ITEM, 3), listed(UNO_ITEM, 2)],
      "transaction_id": "50314b8e9bcf000000000000", "shipping": 3, "value": 27.5, "tax": 2}),
    ("Order Refunded",
     stored("track", "Order Refunded", order_id="50314b8e9bcf000000000000", total=27.5,
            currency="USD", products=[UNO]),
     "refund", "refund",
     {"currency": "USD", "transaction_id": "50314b8e9bcf000000000000", "value": 27.5,
      "items": [listed(UNO_ITEM, 2)]}),
    ("Promotion Viewed",
     stored("track", "Promotion Viewed", promotion_id="promo_1", creative="top_banner_2",
            name="75% store-wide shoe sale", position="home_banner_top"),
     "viewPromotion", "view_promotion",
     {"creative_slot": "top_banner_2", "location_id": "home_banner_top",
      "promotion_id": "promo_1", "promotion_name": "75% store-wide shoe sale",
      "items": [{"item_name": "75% store-wide shoe sale"}]}),
    ("Promotion Clicked",
     stored("track", "Promotion Clicked", promotion_id="promo_1", creative="top_banner_2",
            name="75% store-wide shoe sale", position="home_banner_top"),
     "selectPromotion", "select_promotion",
     {"creative_slot": "top_banner_2", "promotion_id": "promo_1",
      "promotion_name": "75% store-wide shoe sale",
      "items": [{"item_name": "75% store-wide shoe sale"}]}),
    ("Products Searched", stored("track", "Products Searched", query="blue hotpants"),
     "search", "search", {"search_term": "blue hotpants"}),
    ("Signed Up", stored("track", "Signed Up", type="organic", plan="pro"),
     "signUp", "sign_up", {"method": "organic"}),
    ("Signed In", stored("track", "Signed In", username="ada"), "login", "login", {}),
    ("page", stored("page", name="Deals", **{k: v for k, v in PAGE.items()}),
     "pageView", "page_view",
     {"page_location": PAGE["url"], "page_referrer": PAGE["referrer"],
      "page_title": PAGE["title"]}),
    ("other track", stored("track", " Video Playback Started ", content_asset_id="0129370"),
     "customEvent", "Video_Playback_Started", {}),
]  # fmt: skip


def preset_work(event: dict[str, Any]) -> list[tuple[str, Mapped]]:
    return [(p.action, m) for p, m in presets_matching(GoogleAnalytics4, event)]


def ga4(**settings: Any) -> GoogleAnalytics4:
    base = {"api_secret": API_SECRET, "measurement_id": MEASUREMENT_ID}
    return GoogleAnalytics4(GoogleAnalytics4.parse_settings({**base, **settings}))


@pytest.mark.parametrize(
    ("event", "action", "name", "params"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_presets_send_what_segment_sends(
    recorder: Recorder, event: dict[str, Any], action: str, name: str, params: dict[str, Any]
) -> None:
    work = preset_work(event)
    assert [a for a, _ in work] == [action]  # one preset per event: no custom-event duplicate
    destination = ga4(endpoint=recorder.base_url)
    requests = destination.build(action, [mapped for _, mapped in work])
    assert [r.message_ids for r in requests] == [(event["messageId"],)]
    assert requests[0].url == (
        f"{recorder.base_url}/mp/collect?api_secret={API_SECRET}&measurement_id={MEASUREMENT_ID}"
    )

    (response,) = deliver(requests)

    assert response.status == 200
    (got,) = recorder.wait_for(1)
    assert (got.method, got.path) == ("POST", "/mp/collect")
    assert got.query == {"api_secret": [API_SECRET], "measurement_id": [MEASUREMENT_ID]}
    assert {k: v for k, v in got.headers.items() if k not in TRANSPORT} == {
        "user-agent": "Segment (Actions)",
        "content-type": "application/json",
    }
    expected_params = {**params, "engagement_time_msec": 1}
    body = got.json()
    assert body == {
        "client_id": "user-42",
        "events": [{"name": name, "params": expected_params}],
        "timestamp_micros": MICROS,
    }
    assert list(body) == ["client_id", "events", "timestamp_micros"]
    assert list(body["events"][0]["params"]) == list(expected_params)  # Segment's order


def test_identify_and_anonymous_calls() -> None:
    assert preset_work({**stored("identify"), "traits": {"email": "a@example.com"}}) == []
    anonymous = stored("track", "Signed Up", type="invite")
    del anonymous["userId"]
    ((action, mapped),) = preset_work(anonymous)
    (request,) = ga4().build(action, [mapped])
    body = msgspec.json.decode(request.body)
    assert body["client_id"] == "6b0e4a37-9d5c-4a64-8f43-1a4f0f2f5a11"
    assert request.url.startswith("https://www.google-analytics.com/mp/collect?")


def test_segment_snapshot_purchase_default_mappings() -> None:
    """purchase.test.ts "should handle default mappings" (with engagement time and timestamp)."""
    event = stored(
        "track",
        "Order Completed",
        affiliation="TI Online Store",
        order_id="5678dd9087-78",
        coupon="SUMMER_FEST",
        currency="EUR",
        revenue=5.99,
        shipping=1.5,
        tax=3.0,
        total=24.48,
        products=[
            {
                "product_id": "pid-123456",
                "sku": "SKU-123456",
                "name": "Tour t-shirt",
                "quantity": 2,
                "coupon": "MOUNTAIN",
                "brand": "Canvas",
                "category": "T-Shirt",
                "variant": "Black",
                "price": 19.98,
            }
        ],
    )
    event["userId"] = "3456fff"
    ((action, mapped),) = preset_work(event)
    (request,) = ga4().build(action, [mapped])
    assert msgspec.json.decode(request.body) == {
        "client_id": "3456fff",
        "events": [
            {
                "name": "purchase",
                "params": {
                    "affiliation": "TI Online Store",
                    "coupon": "SUMMER_FEST",
                    "currency": "EUR",
                    "items": [
                        {
                            "item_id": "pid-123456",
                            "item_name": "Tour t-shirt",
                            "coupon": "MOUNTAIN",
                            "item_brand": "Canvas",
                            "item_category": "T-Shirt",
                            "item_variant": "Black",
                            "price": 19.98,
                            "quantity": 2,
                        }
                    ],
                    "transaction_id": "5678dd9087-78",
                    "shipping": 1.5,
                    "value": 24.48,
                    "tax": 3,
                    "engagement_time_msec": 1,
                },
            }
        ],
        "timestamp_micros": MICROS,
    }


def test_segment_snapshot_mobile_stream(recorder: Recorder) -> None:
    """selectPromotion.test.ts "should use mobile stream params when datastream is mobile app"."""
    oreos = "Quadruple Stack Oreos, 52 ct"
    event = stored(
        "track",
        "Select Promotion",
        id="12345abcde",
        name=oreos,
        currency="USD",
        price=12.99,
        quantity=1,
    )
    event.update(userId="abc123", anonymousId="anon-2134", timestamp="2022-06-22T22:20:58.905Z")
    preset = next(p for p in GoogleAnalytics4.presets if p.action == "selectPromotion")
    mapping = {
        **preset.mapping,
        "data_stream_type": "Mobile App",
        "app_instance_id": {"@path": "$.anonymousId"},
    }
    app = ga4(measurement_id=None, firebase_app_id=FIREBASE_APP_ID, endpoint=recorder.base_url)
    (request,) = app.build("selectPromotion", [Mapped("m1", resolve(mapping, event), event)])
    # Firebase app ids keep their colons: Segment writes the query string itself.
    query = f"api_secret={API_SECRET}&firebase_app_id={FIREBASE_APP_ID}"
    assert request.url == f"{recorder.base_url}/mp/collect?{query}"
    deliver([request])
    (got,) = recorder.wait_for(1)
    assert got.query == {"api_secret": [API_SECRET], "firebase_app_id": [FIREBASE_APP_ID]}
    assert got.json() == {
        "app_instance_id": "anon-2134",
        "events": [
            {
                "name": "select_promotion",
                "params": {
                    "promotion_name": oreos,
                    "items": [{"item_name": oreos, "price": 12.99, "quantity": 1}],
                    "engagement_time_msec": 1,
                },
            }
        ],
        "timestamp_micros": 1655936458905000,
    }


def test_custom_mapping_user_properties_params_and_consent() -> None:
    preset = next(p for p in GoogleAnalytics4.presets if p.action == "customEvent")
    mapping = {
        **preset.mapping,
        "lowercase": True,
        "user_id": {"@path": "$.userId"},
        "user_properties": {"plan": {"@path": "$.properties.plan"}, "beta": None},
        "params": {
            "content_id": {"@path": "$.properties.content_asset_id"},
            "engagement_time_msec": 2500,
        },
        "ad_user_data_consent": "GRANTED",
    }
    event = stored("track", "Video Played", content_asset_id="0129370", plan="pro")
    (request,) = ga4().build("customEvent", [Mapped("m1", resolve(mapping, event), event)])
    assert msgspec.json.decode(request.body) == {
        "client_id": "user-42",
        "user_id": "user-42",
        "events": [
            {
                "name": "video_played",
                "params": {"engagement_time_msec": 2500, "content_id": "0129370"},
            }
        ],
        "user_properties": {"plan": {"value": "pro"}, "beta": {"value": None}},
        "timestamp_micros": MICROS,
        "consent": {"ad_user_data": "GRANTED"},
    }


@pytest.mark.parametrize(
    ("action", "properties", "message"),
    [
        ("purchase", {"order_id": "o1", "currency": "US4D", "products": [UNO]},
         "US4D is not a valid currency code."),
        ("purchase", {"order_id": "o1", "products": [UNO]},
         "The root value is missing the required field 'currency'."),
        ("viewItemList", {"products": [{"price": 3}]}, "One of product name or product id"),
        ("refund", {"order_id": "o1", "total": 5, "products": [UNO]},
         "Currency is required if value is set."),
        ("viewCart", {"products": [UNO]}, "One of item-level currency or top-level currency"),
        ("addPaymentInfo", {"currency": "USD", "products": []}, "one or more products"),
        ("search", {}, "The root value is missing the required field 'search_term'."),
    ],
    ids=["bad-currency", "no-currency", "no-item-id", "value-no-currency", "no-currency-at-all",
         "no-products", "no-query"],
)  # fmt: skip
def test_payloads_google_would_reject_are_refused(
    action: str, properties: dict[str, Any], message: str
) -> None:
    preset = next(p for p in GoogleAnalytics4.presets if p.action == action)
    event = stored("track", "Anything", **properties)
    with pytest.raises(ValueError, match=message):
        ga4().build(action, [Mapped("m1", resolve(preset.mapping, event), event)])


def test_stream_identifiers_are_required() -> None:
    preset = next(p for p in GoogleAnalytics4.presets if p.action == "signUp")
    event = stored("track", "Signed Up")
    del event["userId"], event["anonymousId"]
    with pytest.raises(ValueError, match="Client ID is required"):
        ga4().build("signUp", [Mapped("m1", resolve(preset.mapping, event), event)])
    app_only = ga4(measurement_id=None, firebase_app_id=FIREBASE_APP_ID)
    with pytest.raises(ValueError, match="Measurement ID is required"):
        app_only.build("signUp", [Mapped("m1", {"client_id": "c1"}, event)])
    mobile = {"client_id": "c1", "data_stream_type": "Mobile App"}
    with pytest.raises(ValueError, match="Firebase App ID is required"):
        ga4().build("signUp", [Mapped("m1", mobile, event)])


@pytest.mark.parametrize(
    ("value", "micros"),
    [
        ("2024-03-05T10:15:30.123Z", MICROS),
        ("2024-03-05T10:15:30.123456Z", MICROS),  # Date.parse keeps milliseconds
        ("2024-03-05T12:15:30.123+02:00", MICROS),
        ("2024-03-05 10:15:30.123", MICROS),  # no offset: UTC, as on Segment's servers
        ("2022-06-22T22:20:58.905Z", 1655936458905000),
        ("2024-02-30", 1709251200000000),  # V8 rolls the day over into March
        ("1709633730123000", MICROS),  # a number string is sent as that number
        ("0x10", 16),
        ("not a date", math.nan),  # NaN: sent as null
        ("", UNDEFINED),  # not set: left out
    ],
    ids=["z", "micro", "offset", "space", "segment-snapshot", "feb-30", "numeric-string",
         "hex", "bad", "empty"],
)  # fmt: skip
def test_convert_timestamp(value: str, micros: Any) -> None:
    got = convert_timestamp(value)
    if micros is UNDEFINED:
        assert got is UNDEFINED
    elif math.isnan(micros):
        assert math.isnan(got)
    else:
        assert got == micros


@pytest.mark.parametrize(
    ("name", "lowercase", "expected"),
    [("Home Profile", False, "Home_Profile"), (" Video  Played\t", True, "video__played")],
)
def test_event_name(name: str, lowercase: bool, expected: str) -> None:
    assert event_name(name, lowercase) == expected


def test_settings() -> None:
    with pytest.raises(msgspec.ValidationError, match="api_secret"):
        GoogleAnalytics4.parse_settings({"measurement_id": MEASUREMENT_ID})
    with pytest.raises(msgspec.ValidationError, match="measurement_id"):
        GoogleAnalytics4.parse_settings({"api_secret": API_SECRET})
    settings = GoogleAnalytics4.parse_settings({"api_secret": API_SECRET, "measurement_id": "G-1"})
    assert isinstance(settings, GA4Settings) and API_SECRET not in repr(settings)


def test_declaration() -> None:
    assert load("google-analytics-4") is GoogleAnalytics4
    assert GoogleAnalytics4.name == "Google Analytics 4 Cloud"
    assert "Google Analytics 4" in GoogleAnalytics4.aliases
    assert len(GoogleAnalytics4.actions) == 19
    assert all(action.max_batch == 1 for action in GoogleAnalytics4.actions.values())
    preset_actions = [p.action for p in GoogleAnalytics4.presets]
    assert len(preset_actions) == len(set(preset_actions)) == 18  # one per action
    assert "generateLead" not in preset_actions


@pytest.mark.parametrize(
    ("reply", "verdict", "retry_after"),
    [
        (Reply(204, b""), Verdict.DELIVERED, None),
        (Reply(429, b"", {"Retry-After": "12"}), Verdict.RETRY, 12.0),
        (Reply(500, b"{}"), Verdict.RETRY, None),
        (Reply(400, b"{}"), Verdict.PARK, None),
    ],
    ids=["204", "429", "500", "400"],
)
def test_interpret(
    recorder: Recorder, reply: Reply, verdict: Verdict, retry_after: float | None
) -> None:
    recorder.respond_with(reply)
    destination = ga4(endpoint=recorder.base_url)
    (request,) = destination.build("login", [Mapped("m1", {"client_id": "c1"}, {})])
    (response,) = deliver([request])
    outcome = destination.interpret(request, response)
    assert (outcome.verdict, outcome.retry_after_s) == (verdict, retry_after)


def test_presets_map_the_actions_field_defaults() -> None:
    """Segment ships no automatic preset; each of Sluice's maps exactly the action's defaults."""
    for preset in GoogleAnalytics4.presets:
        spec = next(a for a in ACTIONS if a.key == preset.action)
        assert dict(preset.mapping) == field_defaults(spec)
    custom = next(p for p in GoogleAnalytics4.presets if p.action == "customEvent")
    assert list(custom.mapping) == [
        "data_stream_type", "clientId", "timestamp_micros", "name", "lowercase",
        "engagement_time_msec",
    ]  # fmt: skip
    assert custom.mapping["lowercase"] is False


def test_query_is_written_as_segments_template_and_node_fetch_make_it() -> None:
    """Segment pastes the settings into the query as they are; node-fetch then escapes a few
    characters and cuts the URL at `#` (real API secrets are letters, digits, `-` and `_`)."""
    secret = "a^b[c]%d&e f#g"
    (request,) = ga4(api_secret=secret).build("login", [Mapped("m1", {"client_id": "c1"}, {})])
    assert request.url == "https://www.google-analytics.com/mp/collect?api_secret=a%5Eb[c]%d&e%20f"
    escaped = node_fetch_query("k=\\\"'<>`{|}é\t ")  # tab removed, trailing space trimmed
    assert escaped == "k=%5C%22%27%3C%3E%60%7B%7C%7D%C3%A9"
    app = ga4(measurement_id=None, firebase_app_id=FIREBASE_APP_ID)
    mobile = {"data_stream_type": "Mobile App", "app_instance_id": "i1"}
    (request,) = app.build("login", [Mapped("m1", mobile, {})])
    assert request.url.endswith(f"?api_secret={API_SECRET}&firebase_app_id={FIREBASE_APP_ID}")


def test_body_keys_and_values_as_javascript_writes_them() -> None:
    """Mapped values coerced as Segment's schema validation does, a date Date.parse cannot read
    sent as `timestamp_micros: null`, integer-like keys first, `params` spread last."""
    payload = {
        "client_id": 42,
        "user_id": True,
        "timestamp_micros": "not a date",
        "currency": "usd",
        "value": "19.5",
        "items": {"item_id": None, "item_name": 7, "price": "2", "quantity": "3", "sku": None},
        "params": {"b": 1, "10": "ten", "2": "two", "value": 20},
        "user_properties": {"plan": "pro", "1": None},
        "engagement_time_msec": 1.0,
        "ad_personalization_consent": "DENIED",
        "unknown_field": "dropped",
    }
    (request,) = ga4().build("viewItem", [Mapped("m1", payload, {})])
    assert request.body == (
        b'{"client_id":"42","user_id":"true","events":[{"name":"view_item","params":{"2":"two",'
        b'"10":"ten","currency":"usd","items":[{"item_id":"","item_name":"7","price":2,'
        b'"quantity":3,"sku":null}],"value":20,"engagement_time_msec":1,"b":1}}],'
        b'"user_properties":{"1":{"value":null},"plan":{"value":"pro"}},"timestamp_micros":null,'
        b'"consent":{"ad_personalization":"DENIED"}}'
    )


@pytest.mark.parametrize(
    ("action", "payload", "message"),
    [
        # Segment's order: the currency checks come before the products' own.
        ("viewCart", {"items": [{}]},
         "One of item-level currency or top-level currency is required."),
        ("addPaymentInfo", {"items": [{"currency": ""}], "value": 0},
         "One of product name or product id is required for product or impression data."),
        ("addToWishlist", {"items": [{"item_id": "p", "currency": ""}]},
         "One of item-level currency or top-level currency is required."),
        ("viewPromotion", {"items": [{}]}, "One of item id or item name is required."),
        ("purchase", {"currency": "eur", "transaction_id": "t", "items": [{"item_id": "p",
                      "currency": "JEP"}]}, "JEP is not a valid currency code."),
        ("login", {"params": {"z": [1], "a": None}},
         "Param [z] has unsupported value of type [Array]. GA4 does not accept null, array, or "
         "object values for event parameters and item parameters."),
        ("login", {"user_properties": {"tags": {"a": 1}}},
         "Param [tags] has unsupported value of type [object]. GA4 does not accept array or "
         "object values for user properties."),
        ("viewCart", {"currency": {"code": "USD"}, "value": "a lot", "data_stream_type": "iOS"},
         "The root value is missing the required field 'items'. Data Stream Type must be one of: "
         '"Web" or "Mobile App". Currency must be a string but it was an object. Value must be '
         "a number but it was a string."),
        ("viewCart", {"items": ["x", {"item_id": "p", "quantity": 1.5}]},
         "The value at /items/0 must be an object but it was a string. Quantity must be an "
         "integer but it was a number."),
    ],
    ids=["currency-first", "item-currency-set", "item-currency-empty", "promotion-message",
         "item-currency", "params", "user-properties", "schema", "item-schema"],
)  # fmt: skip
def test_checks_run_in_segments_order_with_its_messages(
    action: str, payload: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidPayload) as refused:
        ga4().build(action, [Mapped("m1", {"client_id": "c1", **payload}, {})])
    assert str(refused.value) == message
