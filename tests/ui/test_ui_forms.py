"""The settings forms the UI generates from each destination's `Settings` Struct: every
registered destination gets one, and what a form shows reads back to the same settings."""

from __future__ import annotations

from typing import Any

import pytest

from sluice.delivery.config import compile_destination
from sluice.destinations.registry import known_types, load
from sluice.ui.forms import FormError, read_settings, settings_fields

# A valid, non-default value for every setting of every built-in destination.
SETTINGS: dict[str, dict[str, Any]] = {
    "webhook": {
        "urls": ["https://a.example/hook", "https://b.example/hook"],
        "headers": {"X-Team": "growth", "Authorization": "Bearer t:k"},
        "shared_secret": "s3cret value",
    },
    "webhook-actions": {"shared_secret": "s3cret", "endpoint": "http://127.0.0.1:9"},
    "amplitude": {"api_key": "k1", "secret_key": "k2", "region": "europe"},
    "mixpanel": {
        "project_token": "tok",
        "api_secret": "sec",
        "api_region": "EU",
        "source_name": "web",
        "strict_mode": "0",
    },
    "google-analytics-4": {"api_secret": "sec", "measurement_id": "G-123"},
    "slack": {"endpoint": "http://127.0.0.1:9"},
    "posthog": {"api_key": "phc_1", "project_id": "42", "historical_migration": True},
}
KINDS = {
    ("webhook", "urls"): "lines",
    ("webhook", "headers"): "pairs",
    ("webhook", "shared_secret"): "secret",
    ("amplitude", "region"): "choice",
    ("amplitude", "api_key"): "secret",
    ("posthog", "historical_migration"): "bool",
    ("google-analytics-4", "measurement_id"): "text",
}


def test_every_registered_destination_is_covered() -> None:
    assert set(SETTINGS) == set(known_types())


@pytest.mark.parametrize("type_id", sorted(SETTINGS))
def test_what_the_form_shows_reads_back_as_the_same_settings(type_id: str) -> None:
    cls = load(type_id)
    fields = settings_fields(cls)
    settings = SETTINGS[type_id]
    assert {f.name for f in fields} >= set(settings)
    assert fields[-1].name == "endpoint" and fields[-1].advanced
    form = {f"settings.{f.name}": f.shown(settings) for f in fields}
    assert read_settings(fields, form) == settings
    compile_destination({"id": "d", "type": type_id, "settings": settings})
    for (kind_type, name), kind in KINDS.items():
        if kind_type == type_id:
            assert next(f for f in fields if f.name == name).kind == kind


@pytest.mark.parametrize("type_id", sorted(SETTINGS))
def test_an_empty_form_gives_the_defaults(type_id: str) -> None:
    fields = settings_fields(load(type_id))
    required = {f.name for f in fields if f.required}
    settings = read_settings(fields, {})
    assert set(settings) <= required  # nothing optional is written, so defaults apply


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("headers", "no colon here", "line 1: expected `Name: value`"),
        ("headers", "X-A: 1\n: nameless", "line 2: expected `Name: value`"),
    ],
    ids=["no-colon", "no-name"],
)
def test_unreadable_inputs_name_their_field(field: str, text: str, message: str) -> None:
    fields = settings_fields(load("webhook"))
    with pytest.raises(FormError) as caught:
        read_settings(fields, {f"settings.{field}": text})
    assert (caught.value.field, caught.value.message) == (field, message)
