"""The Privacy page in a real Chromium against `sluice serve` (its worker runs the deletions): the
empty states; a refused form naming its field; a SUPPRESS_WITH_DELETE made through the form,
confirmed, and followed to FINISHED with its legs, the user's events gone from the log and the
id shown nowhere; the suppression list's hash and the "check an id" box."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import expect
from ui_kit import (
    StartServer,
    chromium,
    exchange,
    number,
    shoot,
    signed_in_cookie,
    signed_in_page,
)

from server import WRITE_KEY, SluiceServer, basic, wait_for
from sluice.store.base_event_store import EventQuery

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

RUN = uuid.uuid4().hex[:8]
VICTIM, KEEPER = f"victim-{RUN}", f"keeper-{RUN}"
EVENTS = 3


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture(scope="module")
def server(start_module_server: StartServer) -> SluiceServer:
    # Archive files are finished within a second: the archive leg waits for the one holding the
    # user's newest event (docs/privacy.md).
    return start_module_server({"SLUICE_WORKERS": "1", "SLUICE_ARCHIVE_MAX_FILE_AGE_S": "1"})


@pytest.fixture(scope="module")
def cookie(server: SluiceServer) -> str:
    """An admin's session (creates the admin) for requests without a browser."""
    return signed_in_cookie("127.0.0.1", server.port, server.data_dir)


@pytest.fixture(scope="module")
def page(browser: Browser, server: SluiceServer, cookie: str) -> Iterator[Page]:
    with signed_in_page(browser, server.base_url) as signed_in:
        yield signed_in


def send(server: SluiceServer, *events: dict[str, Any]) -> None:
    res = server.post(
        "/v1/batch", {"batch": list(events)}, key=None, headers={"authorization": basic(WRITE_KEY)}
    )
    assert res.status == 200, res.body


def stored(server: SluiceServer, user: str) -> int:
    events = server.store.newest(EventQuery(limit=10_000, source_id="web"))
    return sum(1 for e in events if user.encode() in e.payload)


def submit(page: Page, kind: str, subject: str, ids: str, source: str = "") -> None:
    page.select_option("select[name=regulationType]", kind)
    page.select_option("select[name=subjectType]", subject)
    page.fill("textarea[name=subjectIds]", ids)
    page.select_option("select[name=sourceId]", source)
    page.click("form.regulation button[type=submit]")
    page.wait_for_load_state()


def test_before_any_regulation_the_page_says_so(page: Page, server: SluiceServer) -> None:
    answer = page.goto(f"{server.base_url}/privacy")
    assert answer is not None and answer.status == 200
    expect(page.locator("nav a.active")).to_have_text("Privacy")
    expect(page.locator("#no-regulations")).to_have_text("No regulations yet.")
    expect(page.locator("#no-suppressions")).to_contain_text("No user id is suppressed")
    assert number(page.locator("#suppressed-count").inner_text()) == 0
    page.select_option("#status-filter select[name=status]", "FAILED")
    page.click("#status-filter button[type=submit]")
    expect(page.locator("#no-regulations")).to_have_text("No regulation is FAILED.")
    assert page.url.endswith("/privacy?status=FAILED")
    answer = page.goto(f"{server.base_url}/privacy/regulations/reg_nope")
    assert answer is not None and answer.status == 404
    answer = page.goto(f"{server.base_url}/privacy?status=DONE")
    assert answer is not None and answer.status == 404


@pytest.mark.parametrize(
    ("kind", "subject", "ids", "field", "says"),
    [
        ("SUPPRESS_WITH_DELETE", "USER_ID", "\n  \n", "subjectIds", "at least one id"),
        ("SUPPRESS_ONLY", "ANONYMOUS_ID", "anon-1", "subjectType", "DELETE_ARCHIVE_ONLY"),
        ("DELETE_ARCHIVE_ONLY", "USER_ID", "u-1", "regulationType", "source-scoped"),
    ],
)
def test_a_refused_form_names_its_field_and_creates_nothing(
    page: Page, server: SluiceServer, kind: str, subject: str, ids: str, field: str, says: str
) -> None:
    page.goto(f"{server.base_url}/privacy/new")
    with page.expect_response(lambda r: r.url.endswith("/privacy/new")) as answer:
        submit(page, kind, subject, ids)
    assert answer.value.status == 400
    expect(page.locator(f"#error-{field}")).to_contain_text(says)
    control = page.locator(f"[name={field}]")
    expect(control).to_have_attribute("aria-invalid", "true")
    expect(page.locator("select[name=regulationType]")).to_have_value(kind)  # the form is kept
    assert page.locator("#confirm").count() == 0
    assert server.store.regulations() == []


def test_the_page_and_its_forms_are_behind_sign_in_and_the_csrf_token(
    server: SluiceServer, cookie: str
) -> None:
    answer, _ = exchange("127.0.0.1", server.port, "GET", "/privacy")
    assert answer.status == 303 and answer.headers["location"].startswith("/signin")
    form = {"content-type": "application/x-www-form-urlencoded"}
    body = b"regulationType=SUPPRESS_ONLY&subjectType=USER_ID&subjectIds=u-1"
    answer, _ = exchange("127.0.0.1", server.port, "POST", "/privacy/new", body, form)
    assert answer.status == 403  # no token: refused before anything else
    headers = {**form, "cookie": cookie}
    answer, _ = exchange("127.0.0.1", server.port, "POST", "/privacy/new", body, headers)
    assert answer.status == 403, answer.body[:300]
    assert server.store.regulations() == []


def test_suppress_with_delete_through_the_form_reaches_finished(
    page: Page, server: SluiceServer
) -> None:
    send(server, *({"type": "track", "userId": VICTIM, "event": "Doc Viewed",
                    "messageId": f"v{i}-{RUN}"} for i in range(EVENTS)))  # fmt: skip
    wait_for(lambda: stored(server, VICTIM) == EVENTS, timeout=60, what="the victim's events")

    page.goto(f"{server.base_url}/privacy/new")
    submit(page, "SUPPRESS_WITH_DELETE", "USER_ID", f"{VICTIM}\n\n{VICTIM}\n")
    # A deletion is confirmed first; nothing is done before.
    expect(page.locator("#confirm")).to_contain_text("cannot be undone")
    expect(page.locator("#confirm h2")).to_contain_text("1 user(s)")  # the duplicate counts once
    assert server.store.regulations() == []
    page.click("#confirm-delete")
    page.wait_for_url(lambda url: "/privacy/regulations/reg_" in url)
    regulation_id = page.locator("#regulation-id").inner_text()
    expect(page.locator("p.flash")).to_contain_text(f"Regulation {regulation_id} created")
    # A newer event than the victim's (SQLite keeps the log's newest row until a newer exists).
    send(server, {"type": "track", "userId": KEEPER, "event": "Doc Viewed"})

    def finished() -> str | None:
        page.reload()
        status = page.locator("#overall-status").inner_text().strip()
        assert status not in ("failed", "partial success"), page.content()
        return status if status == "finished" else None

    try:
        wait_for(finished, timeout=180, interval=2.0, what="the regulation to finish")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {page.locator('main').inner_text()}") from None
    legs = {
        row.get_attribute("data-target"): row.locator("td").all_inner_texts()
        for row in page.locator("#legs tbody tr").all()
    }
    assert "log" in legs, legs
    assert all(cells[1].strip() == "finished" for cells in legs.values()), legs
    assert number(legs["log"][3]) == EVENTS
    record = server.store.regulation(regulation_id)
    assert record is not None and record.status == "FINISHED" and record.subject_ids == ()
    assert stored(server, VICTIM) == 0 and stored(server, KEEPER) == 1
    assert VICTIM not in page.content()
    shoot(page, "privacy-regulation")

    page.goto(f"{server.base_url}/privacy")
    row = page.locator(f"table.regulations tr[data-id='{regulation_id}']")
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == "SUPPRESS_WITH_DELETE" and cells[2].strip() == "1 USER_ID"
    assert cells[3].strip() == "finished" and cells[5].startswith("20") and cells[6] == "workspace"
    page.goto(f"{server.base_url}/privacy?status=RUNNING")
    expect(page.locator("#no-regulations")).to_have_text("No regulation is RUNNING.")
    page.goto(f"{server.base_url}/privacy?status=FINISHED")
    expect(page.locator(f"tr[data-id='{regulation_id}']")).to_have_count(1)
    assert VICTIM not in page.content()


def test_the_suppression_list_holds_the_hash_and_the_check_box_answers(
    page: Page, server: SluiceServer
) -> None:
    key = hashlib.sha256(VICTIM.encode()).hexdigest()
    page.goto(f"{server.base_url}/privacy")
    assert number(page.locator("#suppressed-count").inner_text()) == 1
    expect(page.locator("table.suppressions tbody tr td").first).to_have_text(key)

    page.fill("#check-form input[name=userId]", VICTIM)
    page.click("#check-form button[type=submit]")
    expect(page.locator("#check-answer")).to_contain_text("Suppressed")
    expect(page.locator("#check-answer")).to_contain_text(key)
    assert VICTIM not in page.content()  # neither echoed in the box nor in the URL
    assert "/privacy/check" in page.url and VICTIM not in page.url
    shoot(page, "privacy")

    page.fill("#check-form input[name=userId]", KEEPER)
    page.click("#check-form button[type=submit]")
    expect(page.locator("#check-answer")).to_contain_text("Not suppressed")


def test_unsuppress_needs_no_confirmation_and_empties_the_list(
    page: Page, server: SluiceServer
) -> None:
    page.goto(f"{server.base_url}/privacy/new")
    submit(page, "UNSUPPRESS", "USER_ID", VICTIM)
    page.wait_for_url(lambda url: "/privacy/regulations/reg_" in url)  # no confirmation step
    expect(page.locator("#overall-status")).to_have_text("finished")
    expect(page.locator("#no-legs")).to_contain_text("Nothing to delete")
    expect(page.locator("#regulation-detail")).to_contain_text("1 user id(s) unsuppressed")
    page.goto(f"{server.base_url}/privacy")
    assert number(page.locator("#suppressed-count").inner_text()) == 0
    expect(page.locator("#no-suppressions")).to_be_visible()
    expect(page.locator("table.regulations tbody tr")).to_have_count(2)  # newest first
    expect(page.locator("table.regulations tbody tr td:nth-child(2)").first).to_have_text(
        "UNSUPPRESS"
    )
    page.fill("#check-form input[name=userId]", VICTIM)
    page.click("#check-form button[type=submit]")
    expect(page.locator("#check-answer")).to_contain_text("Not suppressed")
