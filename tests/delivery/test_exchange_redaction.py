"""Credentials never reach the exchanges Sluice keeps (parked events, the retry set, `sluice
trace`): secret-looking header and query names, URL user info, and the values of settings a
destination marks secret, wherever they appear (delivery/exchange.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus

import msgspec
import pytest
from delivery_kit import StartServer, add_destination, send, sluice, trace, track

from recorder import Recorded, Recorder, Reply
from server import wait_for
from sluice.delivery.exchange import (
    REDACTED,
    Redactor,
    request_record,
    response_record,
    secret_name,
)
from sluice.destinations.base import Destination, DestinationSettings, OutRequest, Response
from sluice.destinations.registry import BUILTIN, load
from sluice.destinations.webhook import Webhook

R = REDACTED


# --- names ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("Authorization", True),
        ("Proxy-Authorization", True),
        ("X-Api-Key", True),
        ("api-key", True),
        ("X-Signature", True),
        ("X-Hub-Signature-256", True),
        ("Cookie", True),
        ("Set-Cookie", True),
        ("X-Auth-Token", True),
        ("api_secret", True),
        ("apikey", True),
        ("key", True),
        ("sig", True),
        ("access_token", True),
        ("password", True),
        ("write_key", True),
        ("client_secret", True),
        ("Content-Type", False),
        ("User-Agent", False),
        ("Keep-Alive", False),
        ("measurement_id", False),
        ("firebase_app_id", False),
        ("strict", False),
        ("monkey", False),
    ],
    ids=lambda v: str(v),
)
def test_secret_names(name: str, secret: bool) -> None:
    assert secret_name(name) is secret


# --- URLs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "kept"),
    [
        (
            "https://www.google-analytics.com/mp/collect?api_secret=abc%2B1&measurement_id=G-1",
            f"https://www.google-analytics.com/mp/collect?api_secret={R}&measurement_id=G-1",
        ),
        ("https://bob:pa55@hooks.example.com/in", f"https://bob:{R}@hooks.example.com/in"),
        ("https://ghp_TOKEN@hooks.example.com/in", f"https://{R}@hooks.example.com/in"),
        ("https://bob:@h.example/", f"https://bob:{R}@h.example/"),
        ("http://u:p@h.example:8080?token=t#x", f"http://u:{R}@h.example:8080?token={R}#x"),
        ("https://h.example/a?key=1&key=2&k=3", f"https://h.example/a?key={R}&key={R}&k=3"),
        ("https://h.example/a?Api%5FKey=1&flag", f"https://h.example/a?Api%5FKey={R}&flag"),
        ("https://h.example/a/b@c?x=1", "https://h.example/a/b@c?x=1"),
        ("http://[::1]:8080/p?sig=00", f"http://[::1]:8080/p?sig={R}"),
        ("https://h.example/hook/s3cret-value/x", f"https://h.example/hook/{R}/x"),
        ("https://hooks.slack.com/services/T0/B0/XyZ", f"https://hooks.slack.com/services/{R}"),
        ("https://discord.com/api/webhooks/1/tok", f"https://discord.com/api/webhooks/{R}"),
        ("https://example.com/services/T0/B0/XyZ", "https://example.com/services/T0/B0/XyZ"),
    ],
    ids=[
        "ga4-query",
        "password",
        "token-as-user",
        "empty-password",
        "no-path",
        "repeated",
        "encoded-name",
        "at-in-path",
        "ipv6",
        "setting-in-path",
        "slack-webhook-path",
        "discord-webhook-path",
        "same-path-elsewhere",
    ],
)
def test_urls(url: str, kept: str) -> None:
    assert Redactor(["s3cret-value"]).url(url) == kept


# --- records -------------------------------------------------------------------------------------
SECRET = 'k3y+/="\\é'  # needs URL-encoding and JSON escaping


def record(data: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = msgspec.json.decode(data)
    return decoded


def test_a_secret_value_is_redacted_in_every_encoding() -> None:
    body = b"|".join(
        [
            SECRET.encode(),
            msgspec.json.encode({"api_key": SECRET}),
            quote(SECRET, safe="").encode(),
            quote_plus(SECRET).encode(),
            b"api_key=" + quote_plus(msgspec.json.encode(SECRET).decode()[1:-1]).encode(),
        ]
    )
    headers = {"Content-Type": "text/plain", "X-Partner": f"id {SECRET}"}
    url = f"https://h.example/{quote(SECRET, safe='')}"
    request = OutRequest("POST", url, headers, body, ["m"])
    kept = record(request_record(request, secrets=[SECRET]))
    assert kept["body"] == f'{R}|{{"api_key":"{R}"}}|{R}|{R}|api_key={R}'
    assert kept["url"] == f"https://h.example/{R}"
    assert kept["headers"] == {"Content-Type": "text/plain", "X-Partner": f"id {R}"}


def test_without_secrets_only_names_and_user_info_are_redacted() -> None:
    headers = {"Authorization": "Basic eDo=", "X-Signature": "0b6f", "Accept": "*/*"}
    request = OutRequest("POST", "https://u:p@h.example/?q=1", headers, SECRET.encode(), ["m"])
    kept = record(request_record(request))
    assert kept == {
        "method": "POST",
        "url": f"https://u:{R}@h.example/?q=1",
        "headers": {"Authorization": R, "X-Signature": R, "Accept": "*/*"},
        "body": SECRET,
    }


def test_the_body_limit_is_applied_after_redaction() -> None:
    secret = "s" * 40
    body = b"x" * 5 + secret.encode() + b"y" * 100
    request = OutRequest("POST", "https://h.example/", {}, body, ["m"])
    assert record(request_record(request, 20, [secret]))["body"] == "xxxxx" + R + "yyyyy…"
    # A secret straddling the limit is not kept in part either.
    assert record(request_record(request, 10, [secret]))["body"] == "xxxxx<reda…"
    assert record(request_record(request, 10))["body"] == "xxxxxsssss…"


def test_secrets_too_short_to_be_credentials_are_left_alone() -> None:
    request = OutRequest("POST", "https://h.example/abc", {}, b"abc abcd", ["m"])
    assert record(request_record(request, secrets=["abc", "abcd", ""]))["body"] == f"abc {R}"


def test_responses_lose_cookies_secrets_and_credentials_in_error_text() -> None:
    headers = {"set-cookie": "sid=1", "content-type": "application/json"}
    body = msgspec.json.encode({"error": "bad key", "key": SECRET})
    answered = record(response_record(Response(400, headers, body), secrets=[SECRET]))
    assert answered == {
        "status": 400,
        "headers": {"set-cookie": R, "content-type": "application/json"},
        "body": f'{{"error":"bad key","key":"{R}"}}',
    }
    error = "InvalidURL: https://u:hunter2@h.example/x?api_secret=s3cr3t&id=1 (s3cr3t)"
    failed = record(response_record(Response(0, {}, b"", error), secrets=["s3cr3t"]))
    assert failed["error"] == f"InvalidURL: https://u:{R}@h.example/x?api_secret={R}&id=1 ({R})"


# --- destinations mark their secret settings -----------------------------------------------------
@pytest.mark.parametrize("type_id", sorted(BUILTIN))
def test_every_secret_looking_setting_of_a_builtin_destination_is_marked(type_id: str) -> None:
    cls = load(type_id)
    fields = set(cls.Settings.__struct_fields__)
    assert cls.secret_settings <= fields
    assert {f for f in fields if secret_name(f)} <= cls.secret_settings


def test_secret_values_are_the_marked_settings_that_are_set() -> None:
    hook = Webhook(Webhook.parse_settings({"urls": ["https://h.example/"]}))
    assert hook.secret_values == ()
    signed = {"urls": ["https://h.example/"], "shared_secret": "wh-secret"}
    assert Webhook(Webhook.parse_settings(signed)).secret_values == ("wh-secret",)


def test_a_misspelt_secret_setting_is_refused_at_import() -> None:
    class TypoSettings(DestinationSettings, kw_only=True, forbid_unknown_fields=True):
        api_key: str

    with pytest.raises(TypeError, match=r"secret_settings: no such setting: \['apikey'\]"):

        class Typo(Destination):
            id: ClassVar[str] = "typo"
            Settings: ClassVar[type[DestinationSettings]] = TypoSettings
            secret_settings: ClassVar[frozenset[str]] = frozenset({"apikey"})


# --- end to end: what `sluice trace` and `sluice parked list` show --------------------------------
GA4_SECRET = "ga4-S3cr3t+/="
GA4_MEASUREMENT = "G-TEST12345"
HOOK_PASSWORD = "hook-pa55word"
HOOK_SECRET = "wh-shared-S3cret"
ALL_SECRETS = (GA4_SECRET, HOOK_PASSWORD, HOOK_SECRET)


def forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret)}


@pytest.fixture
def recorders() -> Iterator[dict[str, Recorder]]:
    made = {name: Recorder() for name in ("ga4", "ga4-down", "hook")}
    yield made
    for each in made.values():
        each.stop()


def echo(secret: str) -> Callable[[Recorded], Reply]:
    """A 400 that repeats what it was sent and the destination's secret, as APIs' error
    messages often do."""

    def respond(request: Recorded) -> Reply:
        body = {"error": "invalid request", "query": request.query, "says": f"{secret}: no"}
        return Reply(400, body, headers={"set-cookie": f"session={secret}"})

    return respond


def test_parked_and_retrying_exchanges_hold_no_secret(
    start_server: StartServer, recorders: dict[str, Recorder]
) -> None:
    server = start_server({"SLUICE_WORKERS": "1", "SLUICE_WAREHOUSE_INTERVAL_S": "0"})
    recorders["ga4"].respond_with(echo(GA4_SECRET))
    recorders["hook"].respond_with(echo(HOOK_SECRET))
    recorders["ga4-down"].respond_with(Reply(500, {"echo": GA4_SECRET}))
    for dest_id in ("ga4", "ga4-down"):
        settings = {"measurement_id": GA4_MEASUREMENT, "api_secret": GA4_SECRET}
        settings["endpoint"] = recorders[dest_id].base_url
        doc = {"id": dest_id, "type": "google-analytics-4", "sources": ["web"]}
        add_destination(server, {**doc, "settings": settings})
    port = recorders["hook"].port
    hook_url = f"http://hookuser:{HOOK_PASSWORD}@127.0.0.1:{port}/hook"
    hook = {"urls": [hook_url], "shared_secret": HOOK_SECRET}
    add_destination(server, {"id": "hook", "type": "webhook", "sources": ["web"], "settings": hook})

    send(server, track("leaky", event="Signed Up", anonymousId="anon-1"))
    # The destinations did get the secrets: what is kept is redacted, not what is sent.
    (sent,) = recorders["ga4"].wait_for(1, timeout=15)
    # GA4 puts the secret into the query raw, as Segment's code does: its `+` reads as a space.
    assert sent.query["api_secret"] == [GA4_SECRET.replace("+", " ")]
    (hooked,) = recorders["hook"].wait_for(1, timeout=15)
    assert hooked.headers["authorization"].startswith("Basic ")

    def settled() -> bool:
        hops = trace(server, "leaky")
        states = {d: hops[d]["status"] for d in ("ga4", "ga4-down", "hook") if d in hops}
        return states == {"ga4": "parked", "hook": "parked", "ga4-down": "retrying"}

    wait_for(settled, timeout=20, what="two parked, one retrying")

    traced = sluice(server, "trace", "leaky", "--json")
    parked = sluice(server, "parked", "list", "--json")
    for text in (traced, parked):
        for secret in ALL_SECRETS:
            for form in forms(secret):
                assert form not in text, (secret, form)

    hops = trace(server, "leaky")
    ga4_url = f"{recorders['ga4'].base_url}/mp/collect?api_secret={R}"
    ga4_url += f"&measurement_id={GA4_MEASUREMENT}"
    assert hops["ga4"]["request"]["url"] == ga4_url
    assert hops["ga4"]["response"]["status"] == 400
    assert hops["ga4"]["response"]["headers"]["set-cookie"] == R
    assert f'"says": "{R}: no"' in hops["ga4"]["response"]["body"]
    assert f'"query": {{"api_secret": ["{R}"]' in hops["ga4"]["response"]["body"]

    assert hops["hook"]["request"]["url"] == f"http://hookuser:{R}@127.0.0.1:{port}/hook"
    assert hops["hook"]["request"]["headers"]["X-Signature"] == R
    assert json.loads(hops["hook"]["request"]["body"])["messageId"] == "leaky"
    assert f'"says": "{R}: no"' in hops["hook"]["response"]["body"]

    down = hops["ga4-down"]  # the retry set's last exchange
    down_url = f"{recorders['ga4-down'].base_url}/mp/collect?api_secret={R}"
    assert down["request"]["url"] == f"{down_url}&measurement_id={GA4_MEASUREMENT}"
    assert down["response"]["body"] == f'{{"echo": "{R}"}}'

    listed = {p["destination"]: p for p in map(json.loads, parked.splitlines())}
    assert listed["ga4"]["request"]["url"] == ga4_url
    assert listed["hook"]["request"]["url"] == hops["hook"]["request"]["url"]
