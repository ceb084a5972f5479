"""Consent, device-mode and the `integrations` object, as Segment routes them."""

from __future__ import annotations

from typing import Any

import pytest

from sluice.delivery.routing import (
    BUNDLED,
    CONSENT,
    INTEGRATIONS_DISABLED,
    consent_block,
    integrations_block,
)

NAMES = ("Amplitude",)


@pytest.mark.parametrize(
    ("integrations", "expected"),
    [
        (None, None),
        ({}, None),
        ({"All": True}, None),
        ({"All": False}, INTEGRATIONS_DISABLED),
        ({"All": False, "Amplitude": True}, None),
        ({"All": False, "Amplitude": {"session_id": 1}}, None),
        ({"Amplitude": False}, INTEGRATIONS_DISABLED),
        ({"All": True, "Amplitude": False}, INTEGRATIONS_DISABLED),
        ({"amplitude": False}, None),
        ({"Mixpanel": False}, None),
        ({"All": False, "Mixpanel": True}, INTEGRATIONS_DISABLED),
    ],
    ids=[
        "absent",
        "empty",
        "all-true",
        "all-false",
        "all-false-but-named",
        "options-object-enables",
        "named-false",
        "all-true-named-false",
        "names-are-case-sensitive",
        "other-destination-false",
        "only-another-destination",
    ],
)
def test_integrations_object(integrations: Any, expected: str | None) -> None:
    event: dict[str, Any] = {"type": "track"}
    if integrations is not None:
        event["integrations"] = integrations
    assert integrations_block(event, NAMES) == expected


def test_bundled_means_sent_from_the_device() -> None:
    event = {"_metadata": {"bundled": ["Segment.io", "Amplitude"], "unbundled": []}}
    assert integrations_block(event, NAMES) == BUNDLED
    event = {"_metadata": {"bundled": ["Segment.io"], "unbundled": ["Amplitude"]}}
    assert integrations_block(event, NAMES) is None


@pytest.mark.parametrize(
    ("consent", "categories", "expected"),
    [
        (None, ["C1"], None),
        ({"categoryPreferences": {"C1": True}}, ["C1"], None),
        ({"categoryPreferences": {"C1": False}}, ["C1"], CONSENT),
        ({"categoryPreferences": {}}, ["C1"], CONSENT),
        ({"categoryPreferences": {"C1": True, "C2": False}}, ["C1", "C2"], CONSENT),
        ({"categoryPreferences": {"C1": True, "C2": True}}, ["C1", "C2"], None),
        ({"categoryPreferences": {}}, [], None),
        ({"categoryPreferences": "yes"}, ["C1"], CONSENT),
    ],
    ids=[
        "no-consent-object",
        "granted",
        "refused",
        "empty-preferences-mean-no-consent",
        "needs-all-categories",
        "all-granted",
        "unmapped-destination-always-receives",
        "malformed-preferences-fail-closed",
    ],
)
def test_consent(consent: Any, categories: list[str], expected: str | None) -> None:
    event: dict[str, Any] = {"context": {} if consent is None else {"consent": consent}}
    assert consent_block(event, categories) == expected
