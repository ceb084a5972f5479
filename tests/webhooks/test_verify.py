"""Webhook signatures (issue 19, scope 1): each provider's scheme, checked against deliveries
signed by the provider's own library where one exists on PyPI (stripe, twilio,
standardwebhooks) and by the documented scheme with its published test vector otherwise
(GitHub), then tampered with: body, signature, secret, timestamp."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook
from stripe import WebhookSignature
from twilio.request_validator import RequestValidator

from sluice.webhooks.verify import Delivery, Generic, Rejected, verify

NOW = 1_733_500_000
STRIPE_SECRET = "whsec_test_secret_1"
STRIPE_BODY = json.dumps({"id": "evt_1", "type": "charge.succeeded",
                          "data": {"object": {"id": "ch_1", "amount": 2000}}}).encode()  # fmt: skip


def rejected(
    reason: str, provider: str, delivery: Delivery, secrets: list[str], **kw: object
) -> None:
    with pytest.raises(Rejected) as caught:
        verify(provider, delivery, secrets, now=NOW, **kw)  # type: ignore[arg-type]
    assert caught.value.reason == reason, caught.value
    assert not any(secret in str(caught.value) for secret in secrets)  # never a secret's value


def stripe_delivery(
    body: bytes = STRIPE_BODY, secret: str = STRIPE_SECRET, at: int = NOW
) -> Delivery:
    header = WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=at)
    return Delivery(body, {"stripe-signature": header})


def test_stripe_signed_by_stripes_library() -> None:
    verify("stripe", stripe_delivery(), [STRIPE_SECRET], now=NOW)
    verify("stripe", stripe_delivery(), ["whsec_old", STRIPE_SECRET], now=NOW)  # rotation
    verify("stripe", stripe_delivery(at=NOW - 299), [STRIPE_SECRET], now=NOW)
    rejected("bad_signature", "stripe", Delivery(STRIPE_BODY + b" ", stripe_delivery().headers),
             [STRIPE_SECRET])  # fmt: skip
    forged = stripe_delivery()
    forged = Delivery(STRIPE_BODY.replace(b"2000", b"9000"), forged.headers)
    rejected("bad_signature", "stripe", forged, [STRIPE_SECRET])
    rejected("bad_signature", "stripe", stripe_delivery(secret="whsec_other"), [STRIPE_SECRET])
    rejected("stale_timestamp", "stripe", stripe_delivery(at=NOW - 301), [STRIPE_SECRET])
    rejected("missing_signature", "stripe", Delivery(STRIPE_BODY, {}), [STRIPE_SECRET])
    rejected("bad_signature", "stripe", Delivery(STRIPE_BODY, {"stripe-signature": "t=1"}),
             [STRIPE_SECRET])  # fmt: skip
    # Stripe's own check agrees with ours on what it signed.
    header = stripe_delivery().headers["stripe-signature"]
    WebhookSignature.verify_header(STRIPE_BODY.decode(), header, STRIPE_SECRET, tolerance=None)


def test_github_as_its_documentation_signs() -> None:
    # GitHub's documented example: secret "It's a Secret to Everybody", payload "Hello, World!".
    body = b"Hello, World!"
    documented = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    delivery = Delivery(body, {"x-hub-signature-256": documented})
    verify("github", delivery, ["It's a Secret to Everybody"], now=NOW)
    rejected("bad_signature", "github", delivery, ["another secret"])
    rejected("bad_signature", "github", Delivery(body + b"!", delivery.headers),
             ["It's a Secret to Everybody"])  # fmt: skip
    rejected("bad_signature", "github", Delivery(body, {"x-hub-signature-256": "sha1=00"}),
             ["It's a Secret to Everybody"])  # fmt: skip
    rejected("missing_signature", "github", Delivery(body, {}), ["It's a Secret to Everybody"])


def test_shopify_base64_hmac_of_the_body() -> None:
    body = json.dumps({"id": 820982911946154508, "email": "jon@example.com"}).encode()
    secret = "shpss_test_1"
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    verify("shopify", Delivery(body, {"x-shopify-hmac-sha256": digest}), [secret], now=NOW)
    tampered = Delivery(body[:-1] + b" ", {"x-shopify-hmac-sha256": digest})
    rejected("bad_signature", "shopify", tampered, [secret])
    garbled = Delivery(body, {"x-shopify-hmac-sha256": "not base64!"})
    rejected("bad_signature", "shopify", garbled, [secret])


def test_twilio_signed_by_twilios_validator() -> None:
    token = "twilio-auth-token-1"
    validator = RequestValidator(token)
    url = "https://sluice.example.com/v1/hooks/abc123"
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+15551230000"}
    body = "&".join(f"{k}={v}" for k, v in params.items()).replace("+", "%2B").encode()
    signature = validator.compute_signature(url, params)
    delivery = Delivery(body, {"x-twilio-signature": signature}, url)
    verify("twilio", delivery, [token], now=NOW)
    assert validator.validate(url, params, signature)
    rejected("bad_signature", "twilio", Delivery(body, delivery.headers, url + "x"), [token])
    rejected("bad_signature", "twilio", delivery, ["other-token"])
    # A JSON body: signed through the URL's bodySHA256.
    json_body = b'{"event":"call.completed"}'
    signed_url = f"{url}?bodySHA256={validator.compute_hash(json_body.decode())}"
    url_signature = validator.compute_signature(signed_url, {})
    json_delivery = Delivery(json_body, {"x-twilio-signature": url_signature}, signed_url)
    verify("twilio", json_delivery, [token], now=NOW)
    rejected("bad_signature", "twilio", Delivery(b"{}", json_delivery.headers, signed_url), [token])


def test_standard_webhooks_signed_by_its_library() -> None:
    secret = "whsec_" + base64.b64encode(b"a-32-byte-key-for-the-tests-0001").decode()
    body = b'{"type":"invoice.paid","data":{"id":"inv_1"}}'
    at = datetime.fromtimestamp(NOW, tz=UTC)
    signature = StandardWebhook(secret).sign("msg_1", at, body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(NOW), "webhook-signature": signature}
    verify("standard-webhooks", Delivery(body, headers), [secret], now=NOW)
    rotated = {
        **headers,
        "webhook-signature": f"v1,{base64.b64encode(b'x' * 32).decode()} {signature}",
    }
    verify("standard-webhooks", Delivery(body, rotated), [secret], now=NOW)
    other_id = Delivery(body, {**headers, "webhook-id": "msg_2"})
    rejected("bad_signature", "standard-webhooks", other_id, [secret])
    future = Delivery(body, {**headers, "webhook-timestamp": str(NOW + 301)})
    rejected("bad_signature", "standard-webhooks", future, [secret])  # the timestamp is signed
    later = StandardWebhook(secret).sign("msg_1", datetime.fromtimestamp(NOW + 400, tz=UTC), body)
    ahead = Delivery(
        body, {**headers, "webhook-timestamp": str(NOW + 400), "webhook-signature": later}
    )
    rejected("stale_timestamp", "standard-webhooks", ahead, [secret])


def test_generic_hmac_and_bearer() -> None:
    body = b'{"hello":"world"}'
    digest = hmac.new(b"s3cret", body, hashlib.sha512).digest()
    scheme = Generic(header="X-Hook-Signature", algorithm="sha512", encoding="base64", prefix="v=")
    signed = Delivery(body, {"x-hook-signature": "v=" + base64.b64encode(digest).decode()})
    verify("generic", signed, ["s3cret"], generic=scheme, now=NOW)
    rejected("bad_signature", "generic", signed, ["other"], generic=scheme)
    rejected("bad_signature", "generic", Delivery(body, {"x-hook-signature": "zz"}), ["s3cret"],
             generic=scheme)  # fmt: skip
    bearer = Generic(scheme="bearer")
    verify("generic", Delivery(body, {"authorization": "Bearer tok-1"}), ["tok-0", "tok-1"],
           generic=bearer, now=NOW)  # fmt: skip
    rejected("bad_token", "generic", Delivery(body, {"authorization": "Bearer tok-2"}), ["tok-1"],
             generic=bearer)  # fmt: skip
    rejected("missing_signature", "generic", Delivery(body, {}), ["tok-1"], generic=bearer)


def test_a_source_without_a_secret_refuses_everything() -> None:
    rejected("no_secret", "github", Delivery(b"{}", {"x-hub-signature-256": "sha256=00"}), [])
