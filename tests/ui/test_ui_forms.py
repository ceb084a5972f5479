"""The forms of the UI: the settings forms it generates from each destination's `Settings`
Struct (every registered destination gets one, and what a form shows reads back to the same
settings), and the filter form, which refuses what delivery could not use (in a real Chromium
against `sluice serve`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
from ui_kit import StartServer, chromium, create_admin, new_context, sign_in

from sluice.delivery.config import compile_destination
from sluice.destinations.registry import known_types, load
from sluice.store.base import ConfigObject
from sluice.ui.forms import FormError, read_settings, settings_fields

if TYPE_CHECKING:
    from playwright.sync_api import Browser

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


# --- the filter form ------------------------------------------------------------------------------
HOOK: dict[str, Any] = {
    "id": "hook",
    "type": "webhook",
    "sources": ["web"],
    "settings": {"urls": ["http://127.0.0.1:9/hook"]},
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


def test_a_filter_that_does_not_compile_is_refused_and_a_stored_one_is_shown(
    browser: Browser, start_server: StartServer
) -> None:
    server = start_server()
    create_admin(server.data_dir)
    store = server.store
    store.put_config(ConfigObject("destination", "hook", msgspec.json.encode(HOOK)))

    def stored_filters() -> list[dict[str, Any]]:
        (hook,) = store.list_config("destination")
        filters: list[dict[str, Any]] = msgspec.json.decode(hook.body).get("filters", [])
        return filters

    page = new_context(browser).new_page()
    sign_in(page, server.base_url)
    rules = f"{server.base_url}/destinations/hook/rules"
    page.goto(rules)
    form = page.locator("#filter-form")
    form.locator("input[name=title]").fill("No tests")
    form.locator("input[name=if]").fill("userId = 'test")
    page.click("text=Save filter")
    # Refused as a broken trigger is: the field named, the form kept, nothing saved.
    assert page.locator("p.error[role=alert]").inner_text() == (
        'filters[0].if: unterminated string at position 9 in "userId = \'test"'
    )
    assert form.locator("input[name=if]").input_value() == "userId = 'test"
    assert page.locator(".flash").count() == 0
    assert stored_filters() == []

    # A filter stored before the check (here written straight to the store) drops every event:
    # the page says so, on the filter and for the destination.
    broken = {"title": "No tests", "if": "userId = 'test", "actions": [{"type": "drop"}]}
    body = {**HOOK, "filters": [broken]}
    store.put_config(ConfigObject("destination", "hook", msgspec.json.encode(body)))
    page.goto(rules)
    assert page.locator("#filters-dropping").inner_text() == (
        "This destination drops every event: filter #0 “No tests” has a condition that is not"
        " valid FQL. Fix or remove it."
    )
    row = page.locator("table tbody tr").first
    assert "invalid" in row.locator(".badge.bad").inner_text()
    assert row.locator(".filter-error").inner_text() == (
        'unterminated string at position 9 in "userId = \'test"'
    )

    # Fixing it through the form is accepted, and the warning goes.
    page.click("a[href='?filter=0#filter-form']")
    form.locator("input[name=if]").fill("userId = 'test'")
    page.click("text=Save filter")
    assert page.locator(".flash").inner_text() == "Filter saved."
    assert page.locator("#filters-dropping").count() == 0
    assert stored_filters() == [{**broken, "if": "userId = 'test'"}]
