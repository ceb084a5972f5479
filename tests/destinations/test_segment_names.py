"""A workspace written in Segment's terms applies to Sluice's native destinations (issue 18,
scope 3): Segment's type names (definition slug, display names, catalogue metadata id) and
setting names (`apiKey`, `projectToken`, region values as Segment spells them), next to
Sluice's own, with the same result; a setting given under both names is refused naming it."""

from __future__ import annotations

from typing import Any

import pytest

from sluice.delivery.config import DestinationConfigError, compile_destination
from sluice.destinations.base import Destination
from sluice.destinations.registry import BUILTIN, load

SEGMENT_TYPES = {
    "amplitude": ("actions-amplitude", "Actions Amplitude", "Amplitude (Actions)",
                  "5f7dd6d21ad74f3842b1fc47"),
    "mixpanel": ("actions-mixpanel", "Mixpanel (Actions)", "615c7438d93d9b61b1e9e192"),
    "google-analytics-4": ("actions-google-analytics-4", "Google Analytics 4 Cloud",
                           "60ad61f9ff47a16b8fb7b5d9"),
    "posthog": ("actions-posthog", "Posthog", "68516c107fc235f3572f8a64"),
    "slack": ("actions-slack", "Slack (Actions)", "5f7dd8e302173ff732db5cc4"),
    "webhook-actions": ("actions-webhook", "Webhooks (Actions)", "614a3c7d791c91c41bae7599"),
    "webhook": ("webhooks", "Webhooks", "54521fdc25e721e32a72ef04"),
}  # fmt: skip

# (type, Segment's settings, the same in Sluice's names)
SETTINGS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("amplitude", {"apiKey": "k-123456", "secretKey": "s-123456", "endpoint": "europe"},
     {"api_key": "k-123456", "secret_key": "s-123456", "region": "europe"}),
    ("mixpanel", {"projectToken": "t-1", "apiSecret": "s-1", "apiRegion": "IN 🇮🇳",
                  "sourceName": "web", "strictMode": "0"},
     {"project_token": "t-1", "api_secret": "s-1", "api_region": "IN 🇮🇳",
      "source_name": "web", "strict_mode": "0"}),
    ("google-analytics-4", {"measurementId": "G-1", "apiSecret": "s-1"},
     {"measurement_id": "G-1", "api_secret": "s-1"}),
    ("webhook-actions", {"sharedSecret": "s-1"}, {"shared_secret": "s-1"}),
]  # fmt: skip


@pytest.mark.parametrize(("native", "names"), SEGMENT_TYPES.items(), ids=list(SEGMENT_TYPES))
def test_segments_type_names_are_the_native_destination(native: str, names: tuple[str]) -> None:
    for name in (*names, *(n.upper() for n in names)):
        assert load(name).id == native, name


@pytest.mark.parametrize(("type_id", "segment", "sluice"), SETTINGS, ids=[s[0] for s in SETTINGS])
def test_segments_setting_names_mean_the_same(
    type_id: str, segment: dict[str, Any], sluice: dict[str, Any]
) -> None:
    theirs = compile_destination({"id": "d", "type": type_id, "settings": segment})
    ours = compile_destination({"id": "d", "type": type_id, "settings": sluice})
    assert theirs.destination.settings == ours.destination.settings
    assert theirs.destination.endpoint == ours.destination.endpoint


def test_regions_as_segment_spells_them() -> None:
    def endpoint(type_id: str, settings: dict[str, Any]) -> str:
        doc = {"id": "d", "type": type_id, "settings": settings}
        return compile_destination(doc).destination.endpoint

    in_india = {"projectToken": "t", "apiRegion": "IN 🇮🇳"}
    assert endpoint("actions-mixpanel", in_india) == "https://api-in.mixpanel.com"
    in_europe = {"apiKey": "k", "endpoint": "europe"}
    assert endpoint("Amplitude (Actions)", in_europe) == "https://api.eu.amplitude.com"
    # Sluice's `endpoint` (a base URL) keeps its meaning: a URL is never a region.
    proxied = {"apiKey": "k", "endpoint": "http://127.0.0.1:9/"}
    assert endpoint("amplitude", proxied) == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("type_id", "settings", "path"),
    [
        ("amplitude", {"apiKey": "a", "api_key": "b"}, "settings.apiKey"),
        ("amplitude", {"api_key": "a", "endpoint": "europe", "region": "europe"},
         "settings.endpoint"),
        ("mixpanel", {"projectToken": "a", "apiRegion": "Mars"}, "settings.apiRegion"),
        ("mixpanel", {"project_token": "a", "api_region": "Mars"}, "settings.api_region"),
    ],
    ids=["both-names", "region-twice", "bad-segment-value", "bad-value"],
)  # fmt: skip
def test_a_setting_twice_or_wrong_is_refused_naming_it(
    type_id: str, settings: dict[str, Any], path: str
) -> None:
    with pytest.raises(DestinationConfigError) as caught:
        compile_destination({"id": "d", "type": type_id, "settings": settings})
    assert caught.value.path == path, caught.value


def test_every_native_destination_declares_segments_names() -> None:
    for type_id in BUILTIN:
        cls: type[Destination] = load(type_id)
        assert cls.segment_types, type_id


def test_the_classic_webhooks_settings_as_segment_stores_them() -> None:
    """`hooks: [{hook, headers: [{key, value}]}]` (each URL its own headers, an empty row as
    Segment's form leaves one), the older `globalHook`, and `sharedSecret`."""
    from sluice.destinations.base import Mapped

    settings = {
        "globalHook": "https://old.example.com/hook",
        "hooks": [
            {"hook": "https://a.example.com/in", "headers": [{"key": "X-Team", "value": "a"}]},
            {"hook": "https://b.example.com/in", "headers": [{"key": "", "value": ""}]},
            {"hook": "", "headers": []},
        ],
        "sharedSecret": "",
    }
    config = compile_destination({"id": "d", "type": "Webhooks", "settings": settings})
    destination = config.destination
    event = {"type": "track", "event": "E", "messageId": "m-1"}
    requests = destination.build("send", [Mapped("m-1", event, event)])
    assert [(r.url, r.headers.get("X-Team")) for r in requests] == [
        ("https://a.example.com/in", "a"),
        ("https://b.example.com/in", None),
        ("https://old.example.com/hook", None),
    ]
    assert all("X-Signature" not in r.headers for r in requests)  # "" is no secret
    with pytest.raises(DestinationConfigError) as caught:
        compile_destination({"id": "d", "type": "webhooks",
                             "settings": {"hooks": [{"url": "x"}]}})  # fmt: skip
    assert caught.value.path == "settings.hooks[0]", caught.value
