"""Webhook sources end to end (issue 19, scope 1): a real `sluice serve` whose workspace has a
Stripe and a GitHub webhook source and a destination fed by them. A delivery signed by Stripe's
own library, and one signed as GitHub documents, arrive as Spec events (`sluice events`) and at
the destination; a provider's redelivery is a duplicate; a bad signature is refused with 401,
counted and never stored; a hook's token opens nothing else."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from stripe import WebhookSignature

from delivery.delivery_kit import sluice
from recorder import Recorder
from server import WRITE_KEY, SluiceServer, StartServer, wait_for

STRIPE_TOKEN = "hook_stripe_token_0001"
GITHUB_TOKEN = "hook_github_token_0001"
STRIPE_SECRET = "whsec_e2e_secret"
GITHUB_SECRET = "gh-e2e-secret"


STARRED = {
    "type": "track",
    "event": "Repository Starred",
    "userId": {"@path": "$.payload.sender.login"},
    "properties": {"repo": {"@path": "$.payload.repository.full_name"}},
}


def workspace(recorder: Recorder) -> str:
    return json.dumps({
        "sources": [
            {"id": "web", "write_keys": [WRITE_KEY]},
            {"id": "stripe", "write_keys": [STRIPE_TOKEN],
             "webhook": {"provider": "stripe", "secrets": ["whsec_old", STRIPE_SECRET]}},
            {"id": "github", "write_keys": [GITHUB_TOKEN],
             "webhook": {"provider": "github", "secrets": [GITHUB_SECRET],
                         "mappings": {"star.created": STARRED}}},
        ],
        "destinations": [
            {"id": "hook", "type": "webhook", "sources": ["stripe", "github"],
             "settings": {"urls": [f"{recorder.base_url}/hook"]}},
        ],
    })  # fmt: skip


@pytest.fixture
def server(start_server: StartServer, recorder: Recorder, tmp_path: Path) -> SluiceServer:
    data_dir = tmp_path / "data"
    file = tmp_path / "workspace.json"
    file.write_text(workspace(recorder))  # JSON is YAML
    subprocess.run([sys.executable, "-m", "sluice", "apply", str(file), "--data-dir",
                    str(data_dir)], check=True, capture_output=True)  # fmt: skip
    return start_server({"SLUICE_WORKERS": "1"}, data_dir=data_dir)


def stripe_charge(event_id: str = "evt_e2e_1") -> bytes:
    return json.dumps({
        "id": event_id, "object": "event", "type": "charge.succeeded", "created": 1733500000,
        "data": {"object": {"id": "ch_1", "object": "charge", "amount": 2000, "currency": "eur",
                            "customer": "cus_42", "paid": True, "status": "succeeded"}},
    }).encode()  # fmt: skip


def post_hook(server: SluiceServer, token: str, body: bytes, headers: dict[str, str]) -> Any:
    return server.request("POST", f"/v1/hooks/{token}", body,
                          {"content-type": "application/json", **headers})  # fmt: skip


def stripe_headers(body: bytes, secret: str = STRIPE_SECRET) -> dict[str, str]:
    header = WebhookSignature.generate_signature_header(body.decode(), secret, int(time.time()))
    return {"stripe-signature": header}


def events(server: SluiceServer) -> list[dict[str, Any]]:
    out = sluice(server, "events", "--json", "--limit", "50")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_deliveries_become_spec_events_and_reach_the_destination(
    server: SluiceServer, recorder: Recorder
) -> None:
    body = stripe_charge()
    answer = post_hook(server, STRIPE_TOKEN, body, stripe_headers(body))
    assert answer.status == 200 and answer.json() == {"success": True}
    again = post_hook(server, STRIPE_TOKEN, body, stripe_headers(body))  # Stripe's retry
    assert again.status == 200

    star = json.dumps({"action": "created", "sender": {"login": "ada"},
                       "repository": {"full_name": "acme/sluice"}}).encode()  # fmt: skip
    signature = "sha256=" + hmac.new(GITHUB_SECRET.encode(), star, hashlib.sha256).hexdigest()
    github = {"x-github-event": "star", "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
              "x-hub-signature-256": signature}  # fmt: skip
    assert post_hook(server, GITHUB_TOKEN, star, github).status == 200
    push = json.dumps({"ref": "refs/heads/main", "pusher": {"name": "ada"}}).encode()
    push_signature = "sha256=" + hmac.new(GITHUB_SECRET.encode(), push, hashlib.sha256).hexdigest()
    pushed = {"x-github-event": "push", "x-github-delivery": "delivery-push-1",
              "x-hub-signature-256": push_signature}  # fmt: skip
    assert post_hook(server, GITHUB_TOKEN, push, pushed).status == 200

    stored = wait_for(lambda: (e := events(server)) and len(e) == 3 and e, 20, what="3 events")
    by_id = {e["messageId"]: e for e in stored}
    charge = by_id["evt_e2e_1"]  # Stripe's event id: its retry was a duplicate
    assert (charge["type"], charge["event"], charge["userId"]) == (
        "track", "Charge Succeeded", "cus_42")  # fmt: skip
    assert charge["properties"] == {"charge_id": "ch_1", "amount": 2000, "currency": "eur",
                                    "paid": True, "status": "succeeded"}  # fmt: skip
    assert charge["timestamp"].startswith("2024-12-06T15:46:40")
    assert charge["context"]["library"]["name"] == "sluice-webhook"
    assert charge["context"]["source"] == {"provider": "stripe", "type": "charge.succeeded"}
    starred = by_id["72d3162e-cc78-11e3-81ab-4c9367dc0958"]  # the source's own mapping
    assert (starred["event"], starred["userId"], starred["properties"]) == (
        "Repository Starred", "ada", {"repo": "acme/sluice"})  # fmt: skip
    pushed_event = by_id["delivery-push-1"]  # no mapping: a track named after the type
    assert (
        pushed_event["event"] == "Push" and pushed_event["properties"]["ref"] == "refs/heads/main"
    )
    assert pushed_event["anonymousId"] == "github:delivery-push-1"

    exported = yaml.safe_load(sluice(server, "export"))
    github_source = next(s for s in exported["sources"] if s["id"] == "github")
    assert github_source["webhook"]["mappings"]["star.created"] == STARRED  # round trip

    delivered = wait_for(lambda: len(recorder.requests) >= 3 and recorder.requests, 30,
                         what="the destination's requests")  # fmt: skip
    assert {r.json()["messageId"] for r in delivered} == set(by_id)


def test_what_is_not_verified_is_refused_counted_and_not_stored(server: SluiceServer) -> None:
    body = stripe_charge("evt_forged")
    forged = post_hook(server, STRIPE_TOKEN, body, stripe_headers(body, "whsec_wrong"))
    assert forged.status == 401 and forged.json()["code"] == "webhook_bad_signature"
    unsigned = post_hook(server, STRIPE_TOKEN, body, {})
    assert unsigned.status == 401 and unsigned.json()["code"] == "webhook_missing_signature"
    old = WebhookSignature.generate_signature_header(body.decode(), STRIPE_SECRET,
                                                     int(time.time()) - 3600)  # fmt: skip
    replayed = post_hook(server, STRIPE_TOKEN, body, {"stripe-signature": old})
    assert replayed.status == 401 and replayed.json()["code"] == "webhook_stale_timestamp"
    not_json = b"not json"
    garbled = post_hook(server, STRIPE_TOKEN, not_json, stripe_headers(not_json))
    assert garbled.status == 400 and garbled.json()["code"] == "webhook_bad_body"
    unknown = post_hook(server, "no_such_hook_token", body, stripe_headers(body))
    assert unknown.status == 404 and unknown.json()["code"] == "unknown_webhook"
    # A hook's token is not a Tracking API key.
    tracked = server.post("/v1/track", {"event": "x", "userId": "u"}, key=STRIPE_TOKEN)
    assert tracked.status == 401 and tracked.json()["code"] == "webhook_source"

    assert events(server) == []

    def counters() -> dict[str, int]:
        found: dict[str, int] = json.loads(sluice(server, "status", "--json"))["sources"]["stripe"]
        return found

    counted = wait_for(lambda: (c := counters()).get("webhook_rejected:bad_signature") and c, 20,
                       what="the refusals counted")  # fmt: skip
    assert counted["webhook_rejected:missing_signature"] == 1
    assert counted["webhook_rejected:stale_timestamp"] == 1
    metrics = server.request("GET", "/metrics").body.decode()
    assert 'sluice_webhook_rejected_total{reason="bad_signature",source="stripe"} 1.0' in metrics
    assert STRIPE_SECRET not in server.log() and "whsec_wrong" not in server.log()
    assert msgspec.json.decode(forged.body)["message"]  # says why, names no secret


@pytest.mark.parametrize(
    ("webhook", "path", "words"),
    [
        ({"provider": "stripe"}, "sources[0].webhook.secrets", "needs its signing secret"),
        ({"provider": "github", "secrets": ["s"], "signature": {"header": "X-Sig"}},
         "sources[0].webhook.signature", "for the generic provider"),
        ({"provider": "stripe", "secrets": ["s"], "mappings": {"charge.succeeded":
                                                               {"event": {"@pth": "$.x"}}}},
         "sources[0].webhook.mappings.charge.succeeded", "@pth"),
        ({"provider": "paypal", "secrets": ["s"]}, "sources[0].webhook.provider", "Invalid enum"),
    ],
    ids=["no-secret", "signature-not-generic", "bad-mapping", "unknown-provider"],
)  # fmt: skip
def test_apply_refuses_a_webhook_source_that_cannot_work(
    webhook: dict[str, Any], path: str, words: str
) -> None:
    from sluice.workspace.errors import WorkspaceError
    from sluice.workspace.files import parse_workspace

    document = json.dumps({"sources": [{"id": "hooks", "webhook": webhook}]})
    with pytest.raises(WorkspaceError) as caught:
        parse_workspace(document, None)
    assert caught.value.path == path and words in caught.value.message, caught.value


def test_shopify_twilio_and_standard_webhooks_deliveries(
    start_server: StartServer, tmp_path: Path
) -> None:
    """The other schemes through a running server: Shopify's base64 HMAC (a built-in order
    mapping), Twilio's form body signed by Twilio's validator over the public URL, and a
    Standard Webhooks delivery signed by its library."""
    import base64
    from datetime import UTC, datetime

    from standardwebhooks.webhooks import Webhook as StandardWebhook
    from twilio.request_validator import RequestValidator

    standard_secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    sources = [
        {"id": "shop", "write_keys": ["hook_shop_token_0001"],
         "webhook": {"provider": "shopify", "secrets": ["shpss_1"]}},
        {"id": "sms", "write_keys": ["hook_sms_token_0001"],
         "webhook": {"provider": "twilio", "secrets": ["twilio-token-1"]}},
        {"id": "svix", "write_keys": ["hook_svix_token_0001"],
         "webhook": {"provider": "standard-webhooks", "secrets": [standard_secret]}},
    ]  # fmt: skip
    file = tmp_path / "workspace.json"
    file.write_text(json.dumps({"sources": sources}))
    data_dir = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "sluice", "apply", str(file), "--data-dir",
                    str(data_dir)], check=True, capture_output=True)  # fmt: skip
    server = start_server({"SLUICE_WORKERS": "1"}, data_dir=data_dir)

    order = json.dumps({"id": 820982911946154508, "total_price": "25.00", "currency": "EUR",
                        "customer": {"id": 115310627314723954},
                        "line_items": [{"product_id": 632910392, "sku": "IPOD2008PINK",
                                        "title": "IPod Nano", "price": "25.00",
                                        "quantity": 1}]}).encode()  # fmt: skip
    digest = base64.b64encode(hmac.new(b"shpss_1", order, hashlib.sha256).digest()).decode()
    shop = {"x-shopify-topic": "orders/create", "x-shopify-hmac-sha256": digest,
            "x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}  # fmt: skip
    assert post_hook(server, "hook_shop_token_0001", order, shop).status == 200

    url = f"{server.base_url}/v1/hooks/hook_sms_token_0001"
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+15551230000"}
    form = "&".join(f"{k}={v}" for k, v in params.items()).replace("+", "%2B").encode()
    signature = RequestValidator("twilio-token-1").compute_signature(url, params)
    answer = server.request(
        "POST",
        "/v1/hooks/hook_sms_token_0001",
        form,
        {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature},
    )
    assert answer.status == 200, answer.body

    body = b'{"type":"invoice.paid","data":{"id":"inv_1","customer":"c_9"}}'
    at = datetime.now(tz=UTC)
    signed = StandardWebhook(standard_secret).sign("msg_2Lh9", at, body)
    svix = {"webhook-id": "msg_2Lh9", "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signed}  # fmt: skip
    assert post_hook(server, "hook_svix_token_0001", body, svix).status == 200

    stored = wait_for(lambda: (e := events(server)) and len(e) == 3 and e, 20, what="3 events")
    by_id = {e["messageId"]: e for e in stored}
    placed = by_id["b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"]
    assert (placed["event"], placed["userId"]) == ("Order Completed", "115310627314723954")
    assert placed["properties"]["products"][0]["sku"] == "IPOD2008PINK"
    sms = by_id["SM1:delivered"]
    assert sms["event"] == "Message Delivered" and sms["properties"]["to"] == "+15551230000"
    assert by_id["msg_2Lh9"]["event"] == "Invoice Paid"


def test_the_source_page_shows_the_hook_url_and_the_refusals(server: SluiceServer) -> None:
    from ui.ui_kit import exchange, signed_in_cookie

    body = stripe_charge("evt_forged_ui")
    assert post_hook(server, STRIPE_TOKEN, body, stripe_headers(body, "whsec_bad")).status == 401
    cookie = signed_in_cookie("127.0.0.1", server.port, server.data_dir)
    page = wait_for(
        lambda: (p := exchange("127.0.0.1", server.port, "GET", "/sources/stripe",
                               headers={"cookie": cookie})[0].body.decode())
        and "bad_signature" in p and p,
        20, what="the refusal on the source page",
    )  # fmt: skip
    assert f"/v1/hooks/{STRIPE_TOKEN}" in page and "Webhook (stripe)" in page
    assert "analytics.load" not in page  # no library snippet for a webhook source
    assert STRIPE_SECRET not in page
