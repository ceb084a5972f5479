"""The Protocols page in Debian's Chromium: violations per source, event, field and type with
counts and recent examples, blocked events, and the schema view (planned and seen, unplanned
and seen, planned and never seen, with the property types seen), against a real `sluice serve`
enforcing a plan on events sent over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from ui_kit import StartServer, chromium, create_admin, signed_in_page, sluice_cli

from server import SluiceServer, wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

WEB, LOOSE = "wk_ui_protocols_web_1", "wk_ui_protocols_loose_1"
ORDER = {"type": "object", "properties": {"properties": {
    "type": "object", "required": ["order_id"],
    "properties": {"order_id": {"type": "string"}, "revenue": {"type": "number"}}}}}  # fmt: skip
WORKSPACE = {
    "sources": [{"id": "web", "write_keys": [WEB]}, {"id": "loose", "write_keys": [LOOSE]}],
    "tracking_plans": [{
        "id": "shop", "sources": ["web", "loose"],
        "rules": {"events": [{"name": "Order Completed", "rules": ORDER},
                             {"name": "Cart Viewed", "rules": {}}]},
        "enforcement": {"unplanned_events": "block"},
        "source_settings": {"loose": {}},
    }],
}  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture(scope="module")
def server(start_module_server: StartServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("ui-protocols")
    (tmp / "workspace.json").write_text(json.dumps(WORKSPACE))
    data = tmp / "data"
    done = sluice_cli(data, "apply", str(tmp / "workspace.json"))
    assert done.returncode == 0, done.stderr
    server = start_module_server({"SLUICE_WORKERS": "1"}, data_dir=data)
    create_admin(server.data_dir)
    return server


def send(server: SluiceServer, key: str, message: dict[str, Any]) -> None:
    res = server.post(f"/v1/{message['type']}", message, key=key)
    assert res.status == 200, res.body


@pytest.fixture(scope="module")
def page(browser: Browser, server: SluiceServer) -> Iterator[Page]:
    order = {"type": "track", "event": "Order Completed", "userId": "u1"}
    send(
        server, WEB, {**order, "messageId": "ok-1", "properties": {"order_id": "o1", "revenue": 5}}
    )
    for i in range(3):
        send(server, WEB, {**order, "messageId": f"bad-{i}",
                           "properties": {"order_id": "o", "revenue": "five"}})  # fmt: skip
    send(server, WEB, {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "bl-1"})
    signed_up = {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "unpl-1"}
    send(server, LOOSE, {**signed_up, "properties": {"plan": "pro", "seats": 3}})
    wait_for(lambda: server.store.find_events("unpl-1") and server.store.find_events("bad-2"),
             what="the events")  # fmt: skip
    with signed_in_page(browser, server.base_url) as signed_in:
        yield signed_in


def test_violations_are_listed_with_counts_and_examples(page: Page, server: SluiceServer) -> None:
    page.goto(f"{server.base_url}/protocols")
    row = page.locator("#violations tr", has_text="properties.revenue")
    cells = row.locator("td").all_inner_texts()
    assert cells[:5] == ["web", "Order Completed", "properties.revenue", "Invalid Type", "3"]
    assert {"bad-0", "bad-1", "bad-2"} == set(cells[5].split(", "))
    assert "1 blocked source web" in page.locator("#violations").inner_text()
    row.locator("a", has_text="bad-1").click()  # an example opens the event lookup
    page.wait_for_url("**/lookup?message_id=bad-1")
    assert "received from source web" in page.locator("ol.timeline").inner_text()


def test_the_schema_view_sets_seen_events_against_the_plan(
    page: Page, server: SluiceServer
) -> None:
    page.goto(f"{server.base_url}/protocols")
    web = page.locator("#schema-web")
    assert "tracking plan shop" in web.locator("h2").inner_text()
    order = web.locator("tr", has_text="Order Completed").locator("td").all_inner_texts()
    assert order[2] == "planned"
    assert "order_id: string" in order[3] and "revenue: integer | string" in order[3]
    assert web.locator("tr.status-never-seen", has_text="Cart Viewed").count() == 1
    assert web.locator("tr", has_text="Signed Up").count() == 0  # blocked: not in the log
    loose = page.locator("#schema-loose")
    signed_up = loose.locator("tr", has_text="Signed Up").locator("td").all_inner_texts()
    assert signed_up[2] == "unplanned"
    assert signed_up[3] == "plan: string, seats: integer"
    page.locator("#violations a", has_text="web").first.click()  # one source only
    page.wait_for_url("**/protocols?source=web")
    assert page.locator("#schema-loose").count() == 0
    assert page.locator("#schema-web").count() == 1
