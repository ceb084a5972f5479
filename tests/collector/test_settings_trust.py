"""The settings endpoint behind a reverse proxy: `apiHost` and `protocol` follow what a trusted
proxy says the client used (`X-Forwarded-Proto`/`-Host`, or `Forwarded`), so analytics.js
behind a TLS-terminating proxy posts over https; anyone else's forwarding headers are ignored."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from server import WRITE_KEY, SluiceServer, StartServer

HOST = {"Host": "sluice.internal:8088"}


def api_host(server: SluiceServer, headers: Mapping[str, str]) -> tuple[str, str]:
    res = server.request("GET", f"/v1/projects/{WRITE_KEY}/settings", headers={**HOST, **headers})
    assert res.status == 200, res.body
    segment = res.json()["integrations"]["Segment.io"]
    return segment["apiHost"], segment["protocol"]


@pytest.fixture(scope="module")
def behind_proxy(start_module_server: StartServer) -> SluiceServer:
    """The proxy runs on this machine: loopback is trusted."""
    return start_module_server({"SLUICE_WORKERS": "1", "SLUICE_TRUSTED_PROXIES": "127.0.0.1"})


@pytest.fixture(scope="module")
def trusting_others(start_module_server: StartServer) -> SluiceServer:
    """Proxies are trusted, but the peer (loopback) is not one of them."""
    return start_module_server({"SLUICE_WORKERS": "1", "SLUICE_TRUSTED_PROXIES": "10.0.0.0/8"})


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "events.example.com"},
            ("events.example.com/v1", "https"),
        ),
        ({"X-Forwarded-Proto": "https"}, ("sluice.internal:8088/v1", "https")),
        ({"X-Forwarded-Host": "events.example.com:8443"}, ("events.example.com:8443/v1", "http")),
        (
            {"Forwarded": 'for=203.0.113.9;proto=https;host="cdp.example.com"'},
            ("cdp.example.com/v1", "https"),
        ),
        (
            {"X-Forwarded-Proto": "https", "Forwarded": "proto=http;host=other.example.com"},
            ("other.example.com/v1", "https"),
        ),
        (
            {"X-Forwarded-Proto": "HTTPS, http", "X-Forwarded-Host": "a.example.com, b.internal"},
            ("a.example.com/v1", "https"),
        ),
        ({"X-Forwarded-Host": "[2001:db8::1]:443"}, ("[2001:db8::1]:443/v1", "http")),
        ({}, ("sluice.internal:8088/v1", "http")),
        (
            {"X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "evil.example/x?"},
            ("sluice.internal:8088/v1", "http"),
        ),
        ({"X-Forwarded-Host": "user@evil.example"}, ("sluice.internal:8088/v1", "http")),
    ],
    ids=[
        "proto-and-host",
        "proto-only",
        "host-with-port",
        "rfc7239",
        "x-forwarded-first",
        "first-of-a-list",
        "ipv6-host",
        "no-headers",
        "bad-values-ignored",
        "userinfo-refused",
    ],
)
def test_a_trusted_proxy_is_believed(
    behind_proxy: SluiceServer, headers: dict[str, str], expected: tuple[str, str]
) -> None:
    assert api_host(behind_proxy, headers) == expected


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example.com"}
RFC7239 = {"Forwarded": "proto=https;host=evil.example.com"}


@pytest.mark.parametrize("headers", [FORWARDED, RFC7239], ids=["x-forwarded", "rfc7239"])
def test_other_peers_are_not_believed(
    sluice_server: SluiceServer, trusting_others: SluiceServer, headers: dict[str, str]
) -> None:
    for server in (sluice_server, trusting_others):  # no trusted proxies; others trusted
        assert api_host(server, headers) == ("sluice.internal:8088/v1", "http")


def test_the_public_url_wins_over_what_a_proxy_says(start_server: StartServer) -> None:
    server = start_server(
        {
            "SLUICE_WORKERS": "1",
            "SLUICE_TRUSTED_PROXIES": "127.0.0.1",
            "SLUICE_PUBLIC_URL": "https://cdp.example.org/sluice/",
        }
    )
    assert api_host(server, FORWARDED) == ("cdp.example.org/sluice/v1", "https")
