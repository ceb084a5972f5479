"""The Transformations page in a real Chromium against `sluice serve`: create a transformation
through the form (a refused one first, with its field named and the values kept), see it listed,
find it in `sluice export`, and watch the next event arrive renamed in the log; then set a PII
rule and delete the transformation."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import yaml
from ui_kit import StartServer, chromium, create_admin, shoot, signed_in_page, sluice_cli

from server import WRITE_KEY, SluiceServer, wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


def stored_event_name(server: SluiceServer, message_id: str) -> str | None:
    found = server.store.find_events(message_id)
    return str(json.loads(found[0].payload)["event"]) if found else None


def test_create_a_transformation_in_the_browser(
    browser: Browser, start_server: StartServer
) -> None:
    server = start_server({"SLUICE_WORKERS": "1"})
    create_admin(server.data_dir)
    with signed_in_page(browser, server.base_url) as page:
        page.click("nav >> text=Transformations")
        page.wait_for_url("**/transformations")
        assert page.locator("p.empty").first.inner_text() == "No transformations yet."
        page.click("text=New transformation")
        page.fill("input[name=id]", "fix-order")
        page.fill("input[name=name]", "Fix misnamed order_completed")
        page.select_option("select[name=source]", "web")
        page.select_option("select[name=type]", "rename_event")
        page.fill("input[name=event]", "order_completed")
        page.click("text=Create transformation")
        # Refused as `sluice apply` refuses it: the field named, the form kept, nothing saved.
        assert page.locator("p.error[role=alert]").inner_text() == (
            "new_event_name: A rename_event transformation needs `new_event_name`"
        )
        assert page.locator("input[name=new_event_name]").get_attribute("aria-invalid") == "true"
        assert page.locator("input[name=event]").input_value() == "order_completed"
        page.fill("input[name=new_event_name]", "Order Completed")
        page.click("text=Create transformation")
        page.wait_for_url("**/transformations")
        assert page.locator(".flash").inner_text() == "Transformation fix-order created."
        row = page.locator("table.transformations tbody tr")
        assert row.count() == 1
        assert "Fix misnamed order_completed" in row.inner_text()
        assert "event → Order Completed" in row.inner_text()
        shoot(page, "transformations")

        exported = sluice_cli(server.data_dir, "export")
        assert exported.returncode == 0, exported.stderr
        (t,) = yaml.safe_load(exported.stdout)["transformations"]
        assert t == {"id": "fix-order", "source": "web", "type": "rename_event",
                     "name": "Fix misnamed order_completed", "event": "order_completed",
                     "new_event_name": "Order Completed"}  # fmt: skip

        # The collector picks the change up: the next event is stored renamed.
        def sent_and_renamed() -> bool:
            message_id = f"ui-{uuid.uuid4()}"
            res = server.post("/v1/track", {"event": "order_completed", "userId": "u1",
                                            "messageId": message_id}, key=WRITE_KEY)  # fmt: skip
            assert res.status == 200
            return stored_event_name(server, message_id) == "Order Completed"

        wait_for(sent_and_renamed, timeout=20, what="an event stored renamed")

        # Edited: the form shows what is stored, the id stays.
        page.click("table.transformations >> text=Fix misnamed order_completed")
        assert page.locator("input[name=id]").get_attribute("readonly") is not None
        assert page.locator("input[name=new_event_name]").input_value() == "Order Completed"
        page.fill("input[name=new_event_name]", "Order Done")
        page.click("button:has-text('Save')")
        assert page.locator(".flash").inner_text() == "Transformation fix-order saved."
        assert "event → Order Done" in row.inner_text()

        # A PII rule for a source, then the transformation deleted.
        page.select_option("select[name=target]", "source:web")
        page.select_option("select[name=red]", "block")
        page.click("text=Save rule")
        assert page.locator(".flash").inner_text() == "PII rule for source web saved."
        assert "source web (at ingest)" in page.locator("table.pii-rules").inner_text()
        page.click("table.transformations >> text=Delete")
        assert page.locator(".flash").inner_text() == "Transformation fix-order deleted."
        exported = yaml.safe_load(sluice_cli(server.data_dir, "export").stdout)
        assert "transformations" not in exported
        assert exported["privacy"] == {"pii": {"sources": {"web": {"red": "block"}}}}
