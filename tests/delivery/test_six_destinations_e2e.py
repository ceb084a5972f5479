"""The seven destination types of one workspace file, end to end, with a real Segment library.

A workspace YAML names every built-in destination type (classic and Actions Webhooks, Amplitude,
Mixpanel, Google Analytics 4, Slack and PostHog), each pointed at its own recording server. It is
applied with the real CLI before `sluice serve` starts; `segment-analytics-python` then sends one
call of every type (and three tracks), and each recorder must hold exactly what that
destination's API would receive from Segment: method, path, query, headers and body. Calls a
destination does not handle must not reach it, and `sluice trace` / `sluice status` must say they
were filtered as `no_matching_mapping`. The server starts once for the module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from recorder import Recorded, Recorder
from server import WRITE_KEY, SluiceServer, wait_for
from sluice.delivery.consumer import cursor_name
from sluice.delivery.stats import destination_stats

USER = "user-42"
ANON = "anon-7"
GA4_SECRET = "ga-s3cret"
GA4_MEASUREMENT = "G-TEST12345"
HOOK_SECRET = "hook-s3cret"
ACTIONS_SECRET = "actions-s3cret"
MIXPANEL_SECRET = "mp-s3cret"
MIXPANEL_TOKEN = "mp-token"
AMPLITUDE_KEY = "amp-key"
POSTHOG_KEY = "phc_test"

# One message id per call; `sent` in the scenario is in this order.
IDENTIFY, PLAIN, ORDER, VIEWED, PAGE, SCREEN, GROUP, ALIAS = (
    "e2e-identify",
    "e2e-track-plain",
    "e2e-track-order",
    "e2e-track-viewed",
    "e2e-page",
    "e2e-screen",
    "e2e-group",
    "e2e-alias",
)
ALL_CALLS = (IDENTIFY, PLAIN, ORDER, VIEWED, PAGE, SCREEN, GROUP, ALIAS)

PRODUCTS = [
    {
        "product_id": "507f1f77",
        "sku": "G-32",
        "name": "Monopoly",
        "price": 19,
        "quantity": 1,
        "category": "Games",
        "brand": "Hasbro",
        "position": 1,
    },
    {
        "product_id": "505bd76",
        "sku": "F-15",
        "name": "Uno",
        "price": 3.5,
        "quantity": 2,
        "category": "Games",
    },
]
ORDER_PROPERTIES = {
    "order_id": "o-5031",
    "affiliation": "Toy Store",
    "total": 27.5,
    "revenue": 25,
    "shipping": 3,
    "tax": 2,
    "coupon": "hasbros",
    "currency": "USD",
    "products": PRODUCTS,
}
VIEWED_PROPERTIES = {
    "product_id": "507f1f77",
    "name": "Monopoly",
    "price": 19,
    "currency": "USD",
    "value": 19,
    "brand": "Hasbro",
}
TRAITS = {"email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace", "plan": "pro"}
GROUP_TRAITS = {"name": "Acme", "employees": 42}
PAGE_CONTEXT = {
    "page": {
        "url": "https://www.example.com/pricing",
        "referrer": "https://www.google.com/",
        "title": "Pricing",
        "path": "/pricing",
    }
}

WORKSPACE = """\
workspace: six-destinations
sources:
  - id: web
    name: Web site
    write_keys: [WRITE_KEY]

destinations:
  - id: hooks
    type: webhook
    sources: [web]
    settings:
      urls: ["HOOKS_URL/segment", "HOOKS_URL/backup?via=sluice"]
      headers: {Authorization: "Bearer hook-token"}
      shared_secret: HOOK_SECRET

  - id: crm-hook
    type: webhook-actions
    sources: [web]
    settings:
      shared_secret: ACTIONS_SECRET
      endpoint: ACTIONS_URL
    mappings:
      - action: send
        name: Contacts to the CRM
        trigger: 'type = "identify"'
        mapping:
          url: https://crm.example.com/contacts?source=sluice
          method: PUT
          headers: {Authorization: "Bearer crm-token"}
          data:
            id: {"@path": "$.userId"}
            email: {"@path": "$.traits.email"}
            message_id: {"@path": "$.messageId"}
      - action: send
        name: Activity, in bulk
        trigger: 'type = "track" or type = "page" or type = "screen"'
        mapping:
          url: https://lake.example.com/ingest
          data:
            type: {"@path": "$.type"}
            name: {"@if": {exists: {"@path": "$.event"},
                           then: {"@path": "$.event"}, else: {"@path": "$.name"}}}
            message_id: {"@path": "$.messageId"}
          enable_batching: true
          batch_size: 500

  - id: amplitude
    type: amplitude
    sources: [web]
    settings:
      api_key: AMPLITUDE_KEY
      endpoint: AMPLITUDE_URL

  - id: mixpanel
    type: mixpanel
    sources: [web]
    settings:
      project_token: MIXPANEL_TOKEN
      api_secret: MIXPANEL_SECRET
      endpoint: MIXPANEL_URL

  - id: ga4
    type: google-analytics-4
    sources: [web]
    settings:
      measurement_id: GA4_MEASUREMENT
      api_secret: GA4_SECRET
      endpoint: GA4_URL

  - id: slack-alerts
    type: slack
    sources: [web]
    settings:
      endpoint: SLACK_URL
    mappings:
      - action: postToChannel
        name: Every track
        trigger: 'type = "track"'
        mapping:
          url: https://hooks.slack.com/services/T0001/B0001/XXXX
          text: {"@template": "{{userId}} did {{event}}"}
      - action: postToChannel
        name: Orders to sales
        trigger: 'type = "track" and event = "Order Completed"'
        mapping:
          url: https://hooks.slack.com/services/T0001/B0002/YYYY
          text: {"@template": "*{{properties.total}} {{properties.currency}}* from {{userId}}"}
          channel: sales
          username: Sluice

  - id: posthog
    type: posthog
    sources: [web]
    settings:
      api_key: POSTHOG_KEY
      endpoint: POSTHOG_URL
"""

# destination id -> type, as in WORKSPACE
DESTINATIONS = {
    "hooks": "webhook",
    "crm-hook": "webhook-actions",
    "amplitude": "amplitude",
    "mixpanel": "mixpanel",
    "ga4": "google-analytics-4",
    "slack-alerts": "slack",
    "posthog": "posthog",
}
# Calls each destination's presets or mappings do not take: filtered as no_matching_mapping.
NOT_HANDLED = {
    "hooks": (),
    "crm-hook": (GROUP, ALIAS),
    "amplitude": (GROUP, ALIAS),
    "mixpanel": (ALIAS,),
    "ga4": (IDENTIFY, SCREEN, GROUP, ALIAS),
    "slack-alerts": (IDENTIFY, PAGE, SCREEN, GROUP, ALIAS),
    "posthog": (GROUP, ALIAS),
}


def sluice(data_dir: Path, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "sluice", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def form(request: Recorded) -> dict[str, Any]:
    """A form body's fields, with JSON values (`data`, `identification`) decoded."""
    fields = {k: v[0] for k, v in parse_qs(request.body.decode(), strict_parsing=True).items()}
    return {k: json.loads(v) if v[:1] in "{[" else v for k, v in fields.items()}


def in_call_order(item: dict[str, Any]) -> int:
    """Sort key: requests of one step go out concurrently, so they arrive in any order."""
    return ALL_CALLS.index(item.get("message_id") or item["$insert_id"])


def sha1_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Scenario:
    server: SluiceServer
    recorders: dict[str, Recorder]
    status: dict[str, Any]  # `sluice status --json` once everything settled

    def requests(self, destination: str) -> list[Recorded]:
        return list(self.recorders[destination].requests)

    def trace(self, message_id: str) -> dict[str, dict[str, Any]]:
        report = json.loads(sluice(self.server.data_dir, "trace", message_id, "--json"))
        (found,) = report["found"]
        return {hop["destination"]: hop for hop in found["destinations"]}


# What each recorder holds once every event it should get arrived, counted in events.
def hooks_events(requests: list[Recorded]) -> int:
    return len(requests) // 2  # every event goes to both URLs


def crm_events(requests: list[Recorded]) -> int:
    return sum(len(r.json()) if r.path == "/ingest" else 1 for r in requests)


PURCHASED = (
    "Product Purchased"  # one more event per product of an order (Log Purchase, trackPurchase)
)


def amplitude_events(requests: list[Recorded]) -> int:
    """Sluice's events: an order's "Product Purchased" events come from the order's one."""
    return sum(
        sum(e["event_type"] != PURCHASED for e in r.json()["events"])
        if r.path == "/2/httpapi"
        else 1
        for r in requests
    )


def mixpanel_events(requests: list[Recorded]) -> int:
    # An identify makes two requests (/track `$identify`, then /engage) for one event.
    return sum(
        sum(e["event"] != PURCHASED for e in r.json())
        if r.path == "/import"
        else r.path != "/engage"
        for r in requests
    )


def one_per_request(requests: list[Recorded]) -> int:
    return len(requests)


def slack_events(requests: list[Recorded]) -> int:
    # Every track posts to B0001; an order also posts to B0002 (two mappings, one event).
    return sum(r.path == "/services/T0001/B0001/XXXX" for r in requests)


def posthog_events(requests: list[Recorded]) -> int:
    return sum(len(r.json()["batch"]) if r.path == "/batch/" else 1 for r in requests)


EVENT_COUNTERS: dict[str, Callable[[list[Recorded]], int]] = {
    "hooks": hooks_events,
    "crm-hook": crm_events,
    "amplitude": amplitude_events,
    "mixpanel": mixpanel_events,
    "ga4": one_per_request,
    "slack-alerts": slack_events,
    "posthog": posthog_events,
}


def send_every_call(server: SluiceServer) -> None:
    from segment.analytics.client import Client

    client = Client(WRITE_KEY, host=server.base_url, sync_mode=True, max_retries=1)
    client.identify(USER, TRAITS, anonymous_id=ANON, message_id=IDENTIFY)
    client.track(USER, "Video Played", {"title": "Intro", "seconds": 42}, message_id=PLAIN)
    client.track(USER, "Order Completed", ORDER_PROPERTIES, message_id=ORDER)
    client.track(USER, "Product Viewed", VIEWED_PROPERTIES, message_id=VIEWED)
    client.page(
        USER, "Docs", "Pricing", {"path": "/pricing"}, context=PAGE_CONTEXT, message_id=PAGE
    )
    client.screen(USER, "App", "Home", {"tab": "feed"}, message_id=SCREEN)
    client.group(USER, "acme", GROUP_TRAITS, message_id=GROUP)
    client.alias(ANON, USER, message_id=ALIAS)


def settled(server: SluiceServer) -> bool:
    """Every call counted as stored, every cursor at the log's end, nothing retrying."""
    if server.counters().get(("web", "stored"), 0) < len(ALL_CALLS):
        return False
    stats = destination_stats(server.store)
    return all(stats[d]["lag"] == 0 and stats[d]["retrying"] == 0 for d in DESTINATIONS)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    recorders = {dest: Recorder() for dest in DESTINATIONS}
    server: SluiceServer | None = None
    try:
        root = tmp_path_factory.mktemp("six")
        data_dir = root / "data"
        text = WORKSPACE
        for placeholder, value in {
            "WRITE_KEY": WRITE_KEY,
            "HOOKS_URL": recorders["hooks"].base_url,
            "ACTIONS_URL": recorders["crm-hook"].base_url,
            "AMPLITUDE_URL": recorders["amplitude"].base_url,
            "MIXPANEL_URL": recorders["mixpanel"].base_url,
            "GA4_URL": recorders["ga4"].base_url,
            "SLACK_URL": recorders["slack-alerts"].base_url,
            "POSTHOG_URL": recorders["posthog"].base_url,
            "HOOK_SECRET": HOOK_SECRET,
            "ACTIONS_SECRET": ACTIONS_SECRET,
            "AMPLITUDE_KEY": AMPLITUDE_KEY,
            "MIXPANEL_TOKEN": MIXPANEL_TOKEN,
            "MIXPANEL_SECRET": MIXPANEL_SECRET,
            "GA4_MEASUREMENT": GA4_MEASUREMENT,
            "GA4_SECRET": GA4_SECRET,
            "POSTHOG_KEY": POSTHOG_KEY,
        }.items():
            text = text.replace(placeholder, value)
        workspace = root / "workspace.yaml"
        workspace.write_text(text)
        applied = sluice(data_dir, "apply", str(workspace))
        assert "9 created" in applied, applied  # workspace, source, seven destinations

        server = SluiceServer(data_dir, {"SLUICE_WORKERS": "1"}).start()
        # A consumer starts at the log's end when it first runs: wait until all of them have,
        # or the first calls could land before a cursor and never be this destination's.
        store = server.store
        wait_for(
            lambda: all(store.find_cursor(cursor_name(d)) is not None for d in DESTINATIONS),
            timeout=15,
            what="every destination's consumer",
        )
        send_every_call(server)
        for dest, count_events in EVENT_COUNTERS.items():
            expected = len(ALL_CALLS) - len(NOT_HANDLED[dest])
            wait_for(
                lambda r=recorders[dest], c=count_events, n=expected: c(r.requests) >= n,
                timeout=15,
                what=f"{expected} events at {dest}",
            )
        wait_for(lambda: settled(server), timeout=15, what="every cursor at the log's end")
        status = json.loads(sluice(data_dir, "status", "--json"))
        yield Scenario(server, recorders, status)
    finally:
        if server is not None:
            server.close()
        for recorder in recorders.values():
            recorder.stop()


# --- Webhooks (classic) ------------------------------------------------------------------------
def test_classic_webhook_gets_every_call_signed_at_every_url(scenario: Scenario) -> None:
    requests = scenario.requests("hooks")
    assert len(requests) == 2 * len(ALL_CALLS)
    for path, query in (("/segment", {}), ("/backup", {"via": ["sluice"]})):
        at_url = [r for r in requests if r.path == path]
        assert sorted(r.json()["messageId"] for r in at_url) == sorted(ALL_CALLS)
        for r in at_url:
            assert r.method == "POST" and r.query == query
            assert r.headers["content-type"] == "application/json"
            assert r.headers["user-agent"] == "Segment.io/1.0"
            assert r.headers["authorization"] == "Bearer hook-token"
            assert hmac.compare_digest(
                r.headers["x-signature"], sha1_signature(HOOK_SECRET, r.body)
            )
    got = {r.json()["messageId"]: r.json() for r in requests if r.path == "/segment"}
    assert [got[m]["type"] for m in ALL_CALLS] == [
        "identify",
        "track",
        "track",
        "track",
        "page",
        "screen",
        "group",
        "alias",
    ]
    assert got[IDENTIFY]["traits"] == TRAITS and got[IDENTIFY]["anonymousId"] == ANON
    assert got[ORDER]["event"] == "Order Completed"
    assert got[ORDER]["properties"] == ORDER_PROPERTIES
    assert got[PAGE]["name"] == "Pricing" and got[PAGE]["context"]["page"] == PAGE_CONTEXT["page"]
    assert got[GROUP]["groupId"] == "acme" and got[GROUP]["traits"] == GROUP_TRAITS
    assert (got[ALIAS]["previousId"], got[ALIAS]["userId"]) == (ANON, USER)
    assert all(e["context"]["library"]["name"] == "analytics-python" for e in got.values())
    assert all("receivedAt" in e and e["userId"] == USER for e in got.values())


# --- Webhooks (Actions) ------------------------------------------------------------------------
def test_webhook_actions_sends_mapped_data_to_mapped_urls(scenario: Scenario) -> None:
    requests = scenario.requests("crm-hook")
    (contact,) = [r for r in requests if r.path == "/contacts"]
    assert contact.method == "PUT" and contact.query == {"source": ["sluice"]}
    assert contact.headers["authorization"] == "Bearer crm-token"
    assert contact.headers["content-type"] == "application/json"
    assert contact.headers["user-agent"] == "Segment (Actions)"
    assert contact.json() == {"id": USER, "email": TRAITS["email"], "message_id": IDENTIFY}
    assert contact.headers["x-signature"] == sha1_signature(ACTIONS_SECRET, contact.body)

    bulk = [r for r in requests if r.path == "/ingest"]
    assert len(bulk) + 1 == len(requests)
    items = sorted((item for r in bulk for item in r.json()), key=in_call_order)
    assert items == [
        {"type": "track", "name": "Video Played", "message_id": PLAIN},
        {"type": "track", "name": "Order Completed", "message_id": ORDER},
        {"type": "track", "name": "Product Viewed", "message_id": VIEWED},
        {"type": "page", "name": "Pricing", "message_id": PAGE},
        {"type": "screen", "name": "Home", "message_id": SCREEN},
    ]
    for r in bulk:
        assert r.method == "POST" and r.query == {}
        assert r.headers["content-type"] == "application/json"
        # A batch is signed over the JSON of its first event's data (as Segment does).
        assert r.headers["x-signature"] == sha1_signature(ACTIONS_SECRET, compact(r.json()[0]))


# --- Amplitude ---------------------------------------------------------------------------------
def test_amplitude_logs_tracks_pages_screens_and_identifies(scenario: Scenario) -> None:
    requests = scenario.requests("amplitude")
    logged = [r for r in requests if r.path == "/2/httpapi"]
    (identify,) = [r for r in requests if r.path == "/identify"]
    assert len(logged) + 1 == len(requests)
    for r in logged:
        assert r.method == "POST"
        assert r.headers["content-type"] == "application/json"
        assert r.headers["user-agent"] == "Segment (Actions)"
        assert r.json()["api_key"] == AMPLITUDE_KEY
    every = [e for r in logged for e in r.json()["events"]]
    events = {e["event_type"]: e for e in every if e["event_type"] != PURCHASED}
    assert sorted(events) == [
        "Order Completed",
        "Product Viewed",
        "Video Played",
        "Viewed Home",
        "Viewed Pricing",
    ]
    for e in every:  # `library` is the event's library, as Segment's mapping reads it
        assert e["user_id"] == USER and isinstance(e["time"], int)
        assert e["library"] == "analytics-python"
    # Order Completed goes to Log Purchase (Segment's "Order Completed Calls" preset): the order
    # with its revenue, then one "Product Purchased" per product.
    order = events["Order Completed"]
    assert order["event_properties"] == ORDER_PROPERTIES
    assert (order["revenue"], order["revenueType"]) == (25, "Purchase")
    purchased = [e["event_properties"] for e in every if e["event_type"] == PURCHASED]
    assert purchased == [{"price": p["price"], "quantity": p["quantity"]} for p in PRODUCTS]
    page = events["Viewed Pricing"]
    assert page["user_properties"]["$setOnce"]["initial_referrer"] == "https://www.google.com/"

    assert identify.method == "POST"
    assert identify.headers["content-type"] == "application/x-www-form-urlencoded;charset=UTF-8"
    fields = form(identify)
    assert fields["api_key"] == AMPLITUDE_KEY
    who = fields["identification"]
    assert (who["user_id"], who["device_id"]) == (USER, ANON)
    assert who["user_properties"] == TRAITS and who["library"] == "segment"
    assert fields["options"] == "undefined"  # as Segment sends it when there are no options


# --- Mixpanel ----------------------------------------------------------------------------------
def test_mixpanel_imports_events_and_sets_profiles_and_groups(scenario: Scenario) -> None:
    requests = scenario.requests("mixpanel")
    imports = [r for r in requests if r.path == "/import"]
    auth = "Basic " + base64.b64encode(f"{MIXPANEL_SECRET}:".encode()).decode()
    for r in imports:
        assert r.method == "POST" and r.query == {"strict": ["1"]}
        assert r.headers["authorization"] == auth
        assert r.headers["content-type"] == "application/json"
    every = [e for r in imports for e in r.json()]
    events = sorted(
        (e for e in every if e["event"] != PURCHASED), key=lambda e: in_call_order(e["properties"])
    )
    assert [e["event"] for e in events] == [
        "Video Played",
        "Order Completed",
        "Product Viewed",
        "Viewed Pricing",
        "Viewed Home",
    ]
    assert [e["properties"]["$insert_id"] for e in events] == [PLAIN, ORDER, VIEWED, PAGE, SCREEN]
    for e in events:
        props = e["properties"]
        assert props["distinct_id"] == USER and props["$source"] == "segment"
        assert props["mp_lib"] == "Segment Actions: analytics-python"
        assert isinstance(props["time"], int)
    order = events[1]["properties"]
    assert order["order_id"] == "o-5031" and order["products"] == PRODUCTS
    # trackPurchase (Segment's "Order Completed Calls"): one "Product Purchased" per product,
    # with the order's id and `$insert_id` = index + messageId, as Segment's code makes it.
    purchased = [e["properties"] for e in every if e["event"] == PURCHASED]
    assert [(p["$insert_id"], p["order_id"], p["name"]) for p in purchased] == [
        (f"{i}{ORDER}", "o-5031", product["name"]) for i, product in enumerate(PRODUCTS)
    ]
    assert events[3]["properties"]["$current_url"] == PAGE_CONTEXT["page"]["url"]

    forms = [r for r in requests if r.path != "/import"]
    assert sorted(r.path for r in forms) == ["/engage", "/groups", "/track"]
    for r in forms:
        assert r.method == "POST"
        assert r.headers["content-type"] == "application/x-www-form-urlencoded;charset=UTF-8"
    data = {r.path: form(r)["data"] for r in forms}
    identified, engage, group = data["/track"], data["/engage"], data["/groups"]
    assert identified == {
        "event": "$identify",
        "properties": {"$identified_id": USER, "$anon_id": ANON, "token": MIXPANEL_TOKEN},
    }
    assert engage["$token"] == MIXPANEL_TOKEN and engage["$distinct_id"] == USER
    assert engage["$set"] == {
        "plan": "pro",
        "$email": TRAITS["email"],
        "$first_name": "Ada",
        "$last_name": "Lovelace",
        "$name": "Ada Lovelace",
    }
    assert group == {
        "$token": MIXPANEL_TOKEN,
        "$group_key": "$group_id",
        "$group_id": "acme",
        "$set": {"employees": 42, "$name": "Acme"},  # `name` as `$name`, as Segment sends it
    }


# --- Google Analytics 4 ------------------------------------------------------------------------
def test_ga4_gets_ecommerce_custom_and_page_view_events(scenario: Scenario) -> None:
    requests = scenario.requests("ga4")
    for r in requests:
        assert r.method == "POST" and r.path == "/mp/collect"
        assert r.query == {"api_secret": [GA4_SECRET], "measurement_id": [GA4_MEASUREMENT]}
        assert r.headers["content-type"] == "application/json"
        assert r.headers["user-agent"] == "Segment (Actions)"
        body = r.json()
        assert body["client_id"] == USER and isinstance(body["timestamp_micros"], int)
        assert len(body["events"]) == 1
    events = {e["name"]: e["params"] for r in requests for e in r.json()["events"]}
    assert len(requests) == len(events)
    assert sorted(events) == ["Video_Played", "page_view", "purchase", "view_item"]
    assert events["Video_Played"] == {"engagement_time_msec": 1}
    assert events["purchase"] == {
        "affiliation": "Toy Store",
        "coupon": "hasbros",
        "currency": "USD",
        "items": [
            {
                "item_id": "507f1f77",
                "item_name": "Monopoly",
                "index": 1,
                "item_brand": "Hasbro",
                "item_category": "Games",
                "price": 19,
                "quantity": 1,
            },
            {
                "item_id": "505bd76",
                "item_name": "Uno",
                "item_category": "Games",
                "price": 3.5,
                "quantity": 2,
            },
        ],
        "transaction_id": "o-5031",
        "shipping": 3,
        "value": 27.5,
        "tax": 2,
        "engagement_time_msec": 1,
    }
    assert events["view_item"] == {
        "currency": "USD",
        "items": [
            {"item_id": "507f1f77", "item_name": "Monopoly", "item_brand": "Hasbro", "price": 19}
        ],
        "value": 19,
        "engagement_time_msec": 1,
    }
    assert events["page_view"] == {
        "page_location": "https://www.example.com/pricing",
        "page_referrer": "https://www.google.com/",
        "page_title": "Pricing",
        "engagement_time_msec": 1,
    }


# --- Slack -------------------------------------------------------------------------------------
def test_slack_posts_rendered_text_for_tracks(scenario: Scenario) -> None:
    requests = scenario.requests("slack-alerts")
    for r in requests:
        assert r.method == "POST" and r.query == {}
        assert r.headers["content-type"] == "application/json"
        assert r.headers["user-agent"] == "Segment (Actions)"
    icon = "https://logo.clearbit.com/segment.com"
    posted = sorted((r.path, json.dumps(r.json(), sort_keys=True)) for r in requests)
    expected = [
        ("/services/T0001/B0001/XXXX", {"text": f"{USER} did {name}", "username": "Segment"})
        for name in ("Video Played", "Order Completed", "Product Viewed")
    ] + [
        (
            "/services/T0001/B0002/YYYY",
            {"channel": "sales", "text": f"*27.5 USD* from {USER}", "username": "Sluice"},
        )
    ]
    assert posted == sorted(
        (path, json.dumps({**body, "icon_url": icon}, sort_keys=True)) for path, body in expected
    )


# --- PostHog -----------------------------------------------------------------------------------
def test_posthog_captures_events_and_identifies(scenario: Scenario) -> None:
    requests = scenario.requests("posthog")
    for r in requests:
        assert r.method == "POST"
        assert r.headers["content-type"] == "application/json"
        assert r.headers["user-agent"] == "Segment (Actions)"
        assert r.json()["api_key"] == POSTHOG_KEY
    captured = [r.json() for r in requests if r.path == "/batch/"]
    assert all(len(body["batch"]) == 1 for body in captured)  # batching is off by default
    assert all(body["historical_migration"] is False for body in captured)
    items = {body["batch"][0]["event"]: body["batch"][0] for body in captured}
    assert len(items) == len(captured)
    assert sorted(items) == [
        "$pageview",
        "$screen",
        "Order Completed",
        "Product Viewed",
        "Video Played",
    ]
    for item in items.values():
        assert item["properties"]["distinct_id"] == USER
        assert item["properties"]["$process_person_profile"] is False
        assert item["timestamp"].endswith("Z")
    assert items["Order Completed"]["properties"]["order_id"] == "o-5031"
    assert items["$pageview"]["properties"]["$current_url"] == PAGE_CONTEXT["page"]["url"]
    assert items["$screen"]["properties"] == {
        "tab": "feed",
        "$screen_name": "Home",
        "distinct_id": USER,
        "$process_person_profile": False,
    }
    (identify,) = [r for r in requests if r.path == "/i/v0/e/"]
    assert len(captured) + 1 == len(requests)
    body = identify.json()
    assert (body["event"], body["distinct_id"]) == ("$identify", USER)
    assert body["properties"] == {"$set": TRAITS}


# --- what was not sent, and the accounts ---------------------------------------------------------
@pytest.mark.parametrize("message_id", ALL_CALLS, ids=lambda m: m.removeprefix("e2e-"))
def test_trace_explains_every_destination(scenario: Scenario, message_id: str) -> None:
    hops = scenario.trace(message_id)
    assert {dest: hop["type"] for dest, hop in hops.items()} == DESTINATIONS
    for dest, hop in hops.items():
        if message_id in NOT_HANDLED[dest]:
            assert (hop["status"], hop["reason"]) == ("filtered", "no_matching_mapping"), dest
        else:
            assert (hop["status"], hop["attempts"]) == ("delivered", 1), dest


def test_status_counts_what_the_recorders_received(scenario: Scenario) -> None:
    destinations = scenario.status["destinations"]
    assert set(destinations) == set(DESTINATIONS)
    for dest, count_events in EVENT_COUNTERS.items():
        stats = destinations[dest]
        received = count_events(scenario.requests(dest))
        assert received == len(ALL_CALLS) - len(NOT_HANDLED[dest]), dest
        assert stats["delivered"] == received, dest
        not_handled = len(NOT_HANDLED[dest])
        assert stats["filtered"] == not_handled, dest
        assert stats["filtered_by_reason"] == (
            {"no_matching_mapping": not_handled} if not_handled else {}
        ), dest
        assert (stats["parked"], stats["parked_total"], stats["retrying"]) == (0, 0, 0), dest
        assert stats["lag"] == 0, dest
        latency = stats["latency_ms"]
        assert all(isinstance(latency[p], int) for p in ("p50", "p95", "p99")), dest
        assert latency["p50"] <= latency["p95"] <= latency["p99"], dest
    assert scenario.status["sources"]["web"]["stored"] == len(ALL_CALLS)
