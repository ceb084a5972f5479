"""Segment's destinations in the web UI: the catalogue (search, support classes, zero-config),
the settings form generated from a definition, adding one that delivers with its presets, and
"Test connection" running the definition's `testAuthentication`; in a real Chromium against a
`sluice serve` whose data dir holds the installed bridge (the real pinned package), Segment's
API played by the local recording server (`delivery.base_url`).

The form's generator is also checked over the whole installed catalogue: what each form shows
reads back to the same settings, and those compile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import pytest
import yaml
from playwright.sync_api import expect
from ui_kit import (
    StartServer,
    chromium,
    create_admin,
    new_context,
    shoot,
    sign_in,
    signed_in_page,
    sluice_cli,
)

from bridge import conftest as bridge_fixtures
from recorder import Recorder, Reply
from server import WRITE_KEY, SluiceServer, basic, seed_sources, wait_for
from sluice.bridge import location
from sluice.bridge.catalog import Catalog, CatalogEntry
from sluice.bridge.checks import settings_error
from sluice.destinations.registry import load
from sluice.ui.bridged import (
    INSTALL_NOTE,
    bridged_fields,
    condition_holds,
    segment_catalog,
    settings_from_form,
    shown_settings,
)
from sluice.ui.connection import check_connection

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

bridge_data_dir = bridge_fixtures.bridge_data_dir  # the installed bridge (tests/bridge)
T = TypeVar("T")
API_KEY = "amp-key-123456"
SECRET_KEY = "amp-secret-654321"
WAIT_S = 30.0


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.stop()


@pytest.fixture(scope="module")
def server(
    start_module_server: StartServer,
    bridge_data_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> SluiceServer:
    """A server whose data dir has the installed bridge (linked from the test cache)."""
    data_dir = tmp_path_factory.mktemp("bridged") / "data"
    seed_sources(data_dir)
    (data_dir / "bridge").symlink_to(bridge_data_dir / "bridge")
    server = start_module_server({"SLUICE_WORKERS": "1"}, data_dir=data_dir)
    create_admin(server.data_dir)
    return server


@pytest.fixture(scope="module")
def catalog(bridge_data_dir: Path) -> Catalog:
    return Catalog.for_data_dir(bridge_data_dir)


@pytest.fixture(scope="module")
def page(browser: Browser, server: SluiceServer) -> Iterator[Page]:
    with signed_in_page(browser, server.base_url) as signed_in:
        yield signed_in


def exported(server: SluiceServer) -> dict[str, Any]:
    done = sluice_cli(server.data_dir, "export")
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)  # type: ignore[no-any-return]


def destination_doc(server: SluiceServer, destination_id: str) -> dict[str, Any]:
    ws = exported(server)
    return next(d for d in ws["destinations"] if d["id"] == destination_id)


# --- the catalogue ----------------------------------------------------------------------------
def test_the_catalog_lists_segments_destinations_by_support_class_with_search(
    page: Page, server: SluiceServer, catalog: Catalog
) -> None:
    page.goto(f"{server.base_url}/destinations")
    counts = catalog.counts()
    assert counts["supported"] >= 100
    for key in ("supported", "needs_oauth", "unsupported"):
        group = page.locator(f"section[data-group={key}]")
        expect(group.locator("li")).to_have_count(counts[key])
    assert page.locator("#bridge-note").count() == 0

    # Supported and OAuth ones are links to their form; unsupported ones are greyed, no link.
    amplitude = page.locator("li[data-search*='segment:amplitude']")
    expect(amplitude.locator("a.name")).to_have_attribute("href", "/catalog/segment:amplitude")
    expect(amplitude.locator(".badge.ok")).to_have_text("zero-config")
    unsupported = catalog.of_class("unsupported")[0]
    item = page.locator(f"section[data-group=unsupported] li[data-search*='{unsupported.type}']")
    expect(item).to_have_attribute("aria-disabled", "true")
    assert item.locator("a").count() == 0
    expect(item.locator(".reason")).to_have_text(unsupported.reason)
    oauth = catalog.of_class("needs_oauth")[0]
    expect(page.locator(f"section[data-group=needs_oauth] a[href='/catalog/{oauth.type}']"))\
        .to_be_visible()  # fmt: skip

    # The search box filters by any name, native and Segment's alike, as one types.
    page.fill("#catalog-search", "braze cloud")
    visible = page.locator("[data-search]:visible")
    expect(visible).to_have_count(1)
    expect(visible.locator(".name")).to_have_text("Braze Cloud Mode (Actions)")
    expect(page.locator("section[data-group=native]")).to_be_hidden()
    page.fill("#catalog-search", "amplitude")
    expect(page.locator("[data-search]:visible a[href='/catalog/amplitude']")).to_have_count(1)
    expect(
        page.locator("[data-search]:visible a[href='/catalog/segment:amplitude']")
    ).to_have_count(1)
    shoot(page, "catalog-search")
    page.fill("#catalog-search", "no such destination at all")
    expect(page.locator("#catalog-empty")).to_be_visible()
    page.fill("#catalog-search", "")
    expect(page.locator("[data-search]:visible")).to_have_count(len(catalog.entries) + 7)


def test_without_the_bridge_the_catalog_says_how_to_install_it(
    start_server: StartServer, browser: Browser
) -> None:
    server = start_server({"SLUICE_WORKERS": "1"})
    create_admin(server.data_dir)
    context = new_context(browser)
    try:
        page = context.new_page()
        sign_in(page, server.base_url)
        page.goto(f"{server.base_url}/destinations")
        note = page.locator("#bridge-note").inner_text()
        assert "sluice bridge install" in note and "150+" in note and "Node.js 18.17+" in note
        assert page.locator("section.segment-group").count() == 0
        page.goto(f"{server.base_url}/catalog/segment:amplitude")
        assert "sluice bridge install" in page.locator("main").inner_text()
    finally:
        context.close()


def test_the_note_without_a_bridge(tmp_path: Path) -> None:
    location.use_data_dir(tmp_path)
    try:
        assert segment_catalog().note == INSTALL_NOTE and not segment_catalog().groups
    finally:
        location.use_data_dir(Path("sluice-data"))


# --- the settings form ------------------------------------------------------------------------
def test_the_form_is_generated_from_the_definition_and_refuses_naming_the_field(
    page: Page, server: SluiceServer
) -> None:
    page.goto(f"{server.base_url}/destinations")
    page.click("a[href='/catalog/segment:amplitude']")
    page.wait_for_url("**/catalog/segment:amplitude")
    expect(page.locator("h1")).to_have_text("Add Actions Amplitude")
    expect(page.locator(".segment-intro .badge.ok")).to_have_text("zero-config")
    api_key = page.locator("label", has=page.locator("input[name='settings.apiKey']"))
    assert api_key.inner_text().startswith("API Key apiKey *")  # title, name, required
    assert "Amplitude project API key" in api_key.locator("small").inner_text()  # description
    expect(page.locator("input[name='settings.apiKey']")).to_have_attribute("type", "password")
    expect(page.locator("input[name='settings.secretKey']")).to_have_attribute("type", "password")
    region = page.locator("select[name='settings.endpoint']")
    assert region.locator("option").all_inner_texts() == ["(default)", "north_america", "europe"]
    expect(region).to_have_value("north_america")  # the definition's default, filled in

    # Refused by the compile step (the browser's own `required` check switched off): the
    # message next to the field it names, nothing typed into a secret sent back.
    page.fill("input[name=id]", "amp-bad")
    page.fill("input[name='settings.secretKey']", SECRET_KEY)
    page.locator("form.settings").evaluate("form => { form.noValidate = true }")
    page.click("form.settings button[type=submit]")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("settings.apiKey")
    expect(alert).to_contain_text("needs the setting 'apiKey' (API Key)")
    expect(page.locator("input[name='settings.apiKey']")).to_have_attribute("aria-invalid", "true")
    expect(api_key.locator(".field-error")).to_contain_text("needs the setting 'apiKey'")
    assert SECRET_KEY not in page.content()
    shoot(page, "destination-segment-refused")
    assert "amp-bad" not in [d["id"] for d in exported(server).get("destinations", [])]


def test_adding_a_zero_config_destination_delivers_with_its_presets(
    page: Page, server: SluiceServer, recorder: Recorder
) -> None:
    page.goto(f"{server.base_url}/catalog/segment:amplitude")
    page.fill("input[name=id]", "amp")
    page.fill("input[name='settings.apiKey']", API_KEY)
    page.fill("input[name='settings.secretKey']", SECRET_KEY)
    page.locator("summary", has_text="Advanced").click()
    page.fill("input[name='delivery.base_url']", recorder.base_url)
    page.click("form.settings button[type=submit]")
    page.wait_for_url("**/destinations/amp")
    doc = destination_doc(server, "amp")
    assert doc["type"] == "segment:amplitude" and not doc.get("mappings")
    assert doc["settings"] == {
        "apiKey": API_KEY, "secretKey": SECRET_KEY, "endpoint": "north_america"
    }  # fmt: skip
    assert doc["delivery"] == {"base_url": recorder.base_url}

    # The page never shows a saved secret; an empty secret field keeps it.
    html = page.content()
    assert API_KEY not in html and SECRET_KEY not in html
    expect(page.locator("input[name='settings.apiKey']")).to_have_attribute(
        "placeholder", "saved: leave empty to keep it"
    )
    page.select_option("select[name='settings.endpoint']", "europe")
    page.click("form.settings button[type=submit]")
    expect(page.locator(".flash")).to_have_text("Settings saved.")
    doc = destination_doc(server, "amp")
    assert doc["settings"] == {"apiKey": API_KEY, "secretKey": SECRET_KEY, "endpoint": "europe"}
    assert doc["delivery"] == {"base_url": recorder.base_url}

    # No mapping written: the definition's automatic presets deliver.
    before = len(recorder.requests)
    event = {"type": "track", "event": "Signed Up", "userId": "u-1", "messageId": "ui-amp-1"}
    res = server.post("/v1/track", event, headers={"authorization": basic(WRITE_KEY)})
    assert res.status == 200, res.body

    def delivered() -> list[Any]:
        return [r for r in recorder.requests[before:] if r.path == "/2/httpapi"]

    (request,) = wait_for(delivered, WAIT_S, what="Amplitude's request through the bridge")
    body = request.json()
    assert body["api_key"] == API_KEY
    assert [e["event_type"] for e in body["events"]] == ["Signed Up"]


# --- Test connection --------------------------------------------------------------------------
def test_test_connection_runs_the_definitions_check_through_the_base_url(
    page: Page, server: SluiceServer, recorder: Recorder
) -> None:
    page.goto(f"{server.base_url}/destinations/amp")
    recorder.respond_with(Reply(200, {"matches": []}))
    before = len(recorder.requests)
    page.click("#test-connection")
    result = page.locator("#test-result")
    expect(result).to_contain_text("Connection works.", timeout=WAIT_S * 1000)
    expect(result).to_contain_text("Actions Amplitude accepted these settings.")
    (check,) = recorder.requests[before:]
    assert (check.method, check.path) == ("GET", "/api/2/usersearch")  # Segment's own URL path
    assert check.query == {"user": ["testUser@example.com"]}
    assert check.headers["authorization"] == basic(f"{API_KEY}:{SECRET_KEY}", colon=False)

    recorder.respond_with(Reply(401, {"error": f"Invalid API key {API_KEY}"}))
    page.click("#test-connection")
    expect(result).to_contain_text("Connection failed.", timeout=WAIT_S * 1000)
    expect(result).to_contain_text("401")
    expect(result).to_contain_text(f"GET {recorder.base_url}/api/2/usersearch")
    shoot(page, "destination-test-connection")
    html = page.content()
    assert API_KEY not in html and SECRET_KEY not in html
    recorder.respond_with(Reply())

    # The API down: the network error, named.
    recorder.stop()
    try:
        page.click("#test-connection")
        expect(result).to_contain_text("Connection failed.", timeout=WAIT_S * 1000)
    finally:
        recorder.start()


def in_thread(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` on an event loop of its own (Playwright's sync API holds this thread's)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


def test_test_connection_uses_the_refreshed_tokens_delivery_kept(
    server: SluiceServer, recorder: Recorder, bridge_data_dir: Path
) -> None:
    """Intercom (OAuth): the access token in the settings has expired and delivery refreshed
    it (kept in the store); the test runs with the kept one, as delivery would."""
    doc = {"id": "icom", "type": "segment:intercom",
           "settings": {"oauth": {"access_token": "stale-token-1", "refresh_token": "r-1"}},
           "delivery": {"base_url": recorder.base_url}}  # fmt: skip

    def answer(request: Any) -> Reply:
        if request.headers.get("authorization") == "Bearer fresh-token-1":
            return Reply(200, {"type": "admin", "id": "1"})
        return Reply(401, {"type": "error.list", "errors": [{"code": "unauthorized"}]})

    recorder.respond_with(answer)
    location.use_data_dir(bridge_data_dir)
    try:
        stale = in_thread(check_connection(doc, server.store))
        assert not stale.ok and "401" in stale.request and "stale-token-1" not in stale.message
        server.store.save_oauth_tokens("icom", "fresh-token-1", None, int(time.time() * 1000))
        fresh = in_thread(check_connection(doc, server.store))
        assert fresh.ok, fresh
        assert recorder.requests[-1].headers["authorization"] == "Bearer fresh-token-1"
        assert "fresh-token-1" not in fresh.request
    finally:
        location.use_data_dir(Path("sluice-data"))
        recorder.respond_with(Reply())


def test_no_test_button_without_test_authentication(
    page: Page, server: SluiceServer, catalog: Catalog
) -> None:
    def plain_text(entry: CatalogEntry) -> bool:
        properties = entry.auth_fields.get("properties", {})
        return all(
            properties[n].get("type") == "string" and not properties[n].get("enum")
            for n in entry.auth_fields.get("required", [])
        )

    without = next(
        e
        for e in catalog.of_class("supported")
        if not e.has_test_authentication and e.zero_config and plain_text(e)
    )
    required = without.auth_fields.get("required", [])
    settings = {name: "x-1234567" for name in required}
    page.goto(f"{server.base_url}/catalog/{without.type}")
    page.fill("input[name=id]", "no-test")
    for name in required:
        page.fill(f"[name='settings.{name}']", settings[name])
    page.click("form.settings button[type=submit]")
    page.wait_for_url("**/destinations/no-test")
    assert page.locator("#test-connection").count() == 0


# --- the generator over the whole catalogue ---------------------------------------------------
def sample_value(spec: dict[str, Any]) -> Any:
    if spec.get("enum"):
        return spec["enum"][-1]
    kind = spec.get("type")
    if kind == "boolean":
        return True
    if kind in ("number", "integer"):
        return 7
    if kind == "array":
        return ["a", "b"]
    return "value-1234"


def entries(catalog: Catalog) -> list[CatalogEntry]:
    return [e for e in catalog.entries.values() if e.support != "unsupported"]


def test_every_definitions_form_reads_back_as_the_same_settings(
    catalog: Catalog, bridge_data_dir: Path
) -> None:
    location.use_data_dir(bridge_data_dir)
    try:
        for entry in entries(catalog):
            cls = load(entry.type)
            fields = bridged_fields(entry)
            properties = entry.auth_fields.get("properties", {})
            assert [f.name for f in fields if "." not in f.name] == sorted(
                properties, key=lambda n: n not in entry.auth_fields.get("required", [])
            )
            settings = {n: sample_value(s) for n, s in properties.items()}
            assert settings_error(entry, settings) is None, entry.slug
            form = {f"settings.{f.name}": f.shown(shown_settings(cls, settings)) for f in fields}
            # A setting whose condition (`depends_on`) fails is hidden: not read back.
            applies = {
                n: v for n, v in settings.items()
                if condition_holds(entry.auth_depends_on.get(n) or {}, settings)
            }  # fmt: skip
            assert settings_from_form(cls, fields, form) == applies, entry.slug
            for f in fields:
                spec = properties.get(f.name, {})
                if spec.get("format") == "password":
                    assert f.kind == "secret", (entry.slug, f.name)
                assert f.label == (spec.get("title") or f.name) or "." in f.name
    finally:
        location.use_data_dir(Path("sluice-data"))


def test_an_oauth_destinations_tokens_are_secrets_kept_when_left_empty(
    catalog: Catalog, bridge_data_dir: Path
) -> None:
    location.use_data_dir(bridge_data_dir)
    try:
        entry = catalog.of_class("needs_oauth")[0]
        cls = load(entry.type)
        fields = bridged_fields(entry)
        kinds = {f.name: f.kind for f in fields if f.name.startswith("oauth.")}
        assert kinds["oauth.refresh_token"] == kinds["oauth.clientSecret"] == "secret"
        saved = {"oauth": {"clientId": "c-1", "clientSecret": "s-1", "refresh_token": "r-1",
                           "token_type": "Bearer"}}  # fmt: skip
        required = entry.auth_fields.get("required", [])
        form = {f"settings.{n}": "v" for n in required}
        form |= {"settings.oauth.clientId": "c-2", "settings.oauth.clientSecret": ""}
        settings = settings_from_form(cls, fields, form, saved)
        assert settings["oauth"] == {
            "clientId": "c-2", "clientSecret": "s-1", "refresh_token": "r-1",
            "token_type": "Bearer",
        }  # fmt: skip
        assert msgspec.json.encode(settings)  # a plain document
    finally:
        location.use_data_dir(Path("sluice-data"))


# --- the mappings editor ----------------------------------------------------------------------
def test_the_mappings_editor_lists_each_actions_fields_with_labels_and_defaults(
    page: Page, server: SluiceServer
) -> None:
    page.goto(f"{server.base_url}/destinations/amp/rules")
    card = page.locator("#action-fields")
    expect(card.locator("details")).to_have_count(6)  # Amplitude's six actions
    log_event = card.locator("details[data-action=logEventV2]")
    row = log_event.locator("tr", has=page.locator("code", has_text="event_type"))
    log_event.locator("summary").click()
    expect(row.locator("td").first).to_contain_text("Event Type")
    expect(row.locator("td").nth(2)).to_have_text('{"@path":"$.event"}')
    # Choosing an action in the mapping form opens its fields.
    page.select_option("#mapping-form select[name=action]", "identifyUser")
    expect(card.locator("details[data-action=identifyUser]")).to_have_attribute("open", "")
    expect(log_event).not_to_have_attribute("open", "")
    # "Start a mapping from these defaults" fills the form with every default of the action.
    log_event.locator("summary").click()
    log_event.locator("button.use-defaults").click()
    form = page.locator("#mapping-form")
    expect(form.locator("select[name=action]")).to_have_value("logEventV2")
    started = msgspec.json.decode(form.locator("textarea[name=mapping]").input_value())
    assert started["event_type"] == {"@path": "$.event"} and "user_id" in started
    expect(form.locator("input[name=name]")).to_have_value("Log Event V2")  # the action title
    expect(page.locator("#preview-result")).to_contain_text("POST", timeout=WAIT_S * 1000)


def test_a_setting_shown_under_a_condition_is_hidden_until_it_holds(
    page: Page, server: SluiceServer, catalog: Catalog
) -> None:
    """Recombee's API URI applies only with the region "custom" (its `depends_on`): hidden
    and not submitted otherwise, as in Segment's form; the condition is also said in words."""
    assert "apiUri" in catalog.entries["recombee"].auth_depends_on
    page.goto(f"{server.base_url}/catalog/segment:recombee")
    api_uri = page.locator("input[name='settings.apiUri']")
    expect(api_uri).to_be_hidden()
    page.select_option("select[name='settings.databaseRegion']", "custom")
    expect(api_uri).to_be_visible()
    holder = page.locator("label", has=api_uri)
    expect(holder.locator("small")).to_contain_text("Applies when Database Region is custom.")
    api_uri.fill("https://rapi-custom.example")
    page.select_option("select[name='settings.databaseRegion']", "us-west")
    expect(api_uri).to_be_hidden()
    page.fill("input[name=id]", "reco")
    page.fill("input[name='settings.databaseId']", "db-1")
    page.fill("input[name='settings.privateToken']", "token-1")
    page.click("form.settings button[type=submit]")
    page.wait_for_url("**/destinations/reco")
    settings = destination_doc(server, "reco")["settings"]
    assert settings["databaseRegion"] == "us-west" and "apiUri" not in settings
