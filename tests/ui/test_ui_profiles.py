"""The Profiles page in a real Chromium against `sluice serve`, its identity graph resolved by the
worker: anonymous browsing then a sign-up (the backend identifies the new user, then the browser
identifies its anonymous visitor as that user: a merge) shows one profile with both ids, its
traits and events and the merge explained; an identifier demoted by the user_id limit is shown
kept apart; the empty, not-found, bad-input and identity-off states say what they are."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import yaml
from playwright.sync_api import expect
from segment.analytics.client import Client
from ui_kit import StartServer, chromium, create_admin, number, shoot, signed_in_page, sluice_cli

from server import WRITE_KEY, SluiceServer, basic, wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ANON, USER, EMAIL = "anon-7f3a-91c2", "jane-42", "jane+42@example.io"
RUN = uuid.uuid4().hex[:8]
VIEWS = 20  # tracks after the sign-up: with the 5 before, two pages of events (20 a page)
failures: list[Exception] = []


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture(scope="module")
def server(start_module_server: StartServer) -> SluiceServer:
    server = start_module_server({"SLUICE_WORKERS": "1"})
    create_admin(server.data_dir)
    return server


@pytest.fixture(scope="module")
def page(browser: Browser, server: SluiceServer) -> Iterator[Page]:
    with signed_in_page(browser, server.base_url) as signed_in:
        yield signed_in


def send(server: SluiceServer, *events: dict[str, Any]) -> None:
    """As analytics.js sends: one batch to the Tracking API with the source's write key."""
    res = server.post(
        "/v1/batch", {"batch": list(events)}, key=None, headers={"authorization": basic(WRITE_KEY)}
    )
    assert res.status == 200, res.body


def resolved(server: SluiceServer, events: int) -> dict[str, Any]:
    """`sluice identity status` once the graph has read `events` events and caught up."""

    def done() -> dict[str, Any] | None:
        run = sluice_cli(server.data_dir, "identity", "status", "--json")
        assert run.returncode == 0, run.stderr
        status: dict[str, Any] = msgspec.json.decode(run.stdout)
        return status if status["events"] >= events and status["lag"] == 0 else None

    return wait_for(done, timeout=90, interval=1.0, what="the identity consumer")


def search(page: Page, server: SluiceServer, query: str) -> None:
    page.goto(f"{server.base_url}/profiles")
    page.fill("input[name=q]", query)
    page.click("#profile-search button[type=submit]")
    page.wait_for_load_state()


def test_before_any_event_the_page_says_there_are_no_profiles(
    page: Page, server: SluiceServer
) -> None:
    answer = page.goto(f"{server.base_url}/profiles")
    assert answer is not None and answer.status == 200
    expect(page.locator("nav a.active")).to_have_text("Profiles")
    expect(page.locator("#no-profiles")).to_contain_text("No profiles yet")
    assert number(page.locator("#state-profiles").inner_text()) == 0

    answer = page.goto(f"{server.base_url}/profiles?q=email:nobody@example.com")
    assert answer is not None and answer.status == 404
    expect(page.locator("#not-found")).to_contain_text("email:nobody@example.com")

    answer = page.goto(f"{server.base_url}/profiles?q=jane")
    assert answer is not None and answer.status == 400
    expect(page.get_by_role("alert")).to_contain_text("type:value")
    answer = page.goto(f"{server.base_url}/profiles/use_doesnotexist")
    assert answer is not None and answer.status == 404


def test_anonymous_browsing_then_sign_up_is_one_profile_with_the_merge_explained(
    page: Page, server: SluiceServer
) -> None:
    # Browsing, anonymous.
    send(
        server,
        {"type": "page", "messageId": f"p1-{RUN}", "anonymousId": ANON, "name": "Pricing"},
        {"type": "track", "messageId": f"p2-{RUN}", "anonymousId": ANON,
         "event": "Product Viewed", "properties": {"sku": "K-1"}},
    )  # fmt: skip
    resolved(server, 2)
    # The sign-up: the backend identifies the new user (segment-analytics-python, no anonymous
    # id: a second profile), then the browser tells who its visitor is (merges the two).
    backend = Client(WRITE_KEY, host=server.base_url, sync_mode=True, max_retries=1,
                     on_error=lambda error, _batch: failures.append(error))  # fmt: skip
    backend.identify(USER, {"email": EMAIL, "plan": "pro"}, message_id=f"s1-{RUN}")
    assert failures == []
    resolved(server, 3)
    send(
        server,
        {"type": "identify", "messageId": f"s2-{RUN}", "anonymousId": ANON, "userId": USER,
         "traits": {"first_name": "Jane"}},
        {"type": "track", "messageId": f"s3-{RUN}", "anonymousId": ANON, "userId": USER,
         "event": "Signed Up"},
    )  # fmt: skip
    send(
        server,
        *(
            {"type": "track", "messageId": f"v{i}-{RUN}", "userId": USER, "event": "Doc Viewed",
             "properties": {"n": i}}
            for i in range(VIEWS)
        ),
    )  # fmt: skip
    resolved(server, 5 + VIEWS)

    search(page, server, f"anonymous_id:{ANON}")
    assert "/profiles/use_" in page.url
    profile_id = page.locator("#profile-id").inner_text()
    assert page.url.endswith(f"/profiles/{profile_id}")

    ids = page.locator("#external-ids tbody tr")
    rows = {tuple(r.locator("td").all_inner_texts()[:3]) for r in ids.all()}
    assert rows == {("anonymous_id", ANON, "web"), ("user_id", USER, "web"),
                    ("email", EMAIL, "web")}  # fmt: skip
    traits = {
        tuple(r.locator("td").all_inner_texts()[:3]) for r in page.locator("#traits tbody tr").all()
    }
    assert traits == {("email", f'"{EMAIL}"', "web"), ("plan", '"pro"', "web"),
                      ("first_name", '"Jane"', "web")}  # fmt: skip

    # Events: newest first, 20 a page, each linking to its lookup.
    events = page.locator("#events tbody tr")
    expect(events).to_have_count(20)
    assert events.first.locator("td").nth(5).inner_text() == f"v{VIEWS - 1}-{RUN}"
    page.click("#older-events")
    expect(events).to_have_count(5)
    assert [r.locator("td").nth(5).inner_text() for r in events.all()] == [
        f"s3-{RUN}", f"s2-{RUN}", f"s1-{RUN}", f"p2-{RUN}", f"p1-{RUN}"
    ]  # fmt: skip
    signed_up = events.nth(0)
    expect(signed_up.locator("[data-fate=joined]")).to_have_count(2)  # user_id and anonymous_id
    expect(page.locator("#older-events")).to_have_count(0)

    # The merge, explained: the backend's profile (user_id, email) joined the anonymous one,
    # by the browser's identify, which carried both the anonymous id and the user id.
    merges = page.locator("section.merge")
    expect(merges).to_have_count(1)
    merge = merges.first
    loser = merge.locator("h3 a").first.inner_text()
    assert loser.startswith("use_") and loser != profile_id
    assert merge.locator("h3 a").nth(1).inner_text() == profile_id
    why = merge.locator(".why").inner_text()
    assert f"anonymous_id={ANON}" in why and f"user_id={USER}" in why
    cause = merge.locator(".cause")
    expect(cause).to_contain_text(f"s2-{RUN}")
    expect(cause).to_contain_text("identify")
    expect(cause).to_contain_text("source web")
    carried = merge.locator(".carried [data-fate=joined]").all_inner_texts()
    assert sorted(c.strip() for c in carried) == [f"anonymous_id:{ANON}", f"user_id:{USER}"]
    expect(merge.locator(".began")).to_contain_text(f"s1-{RUN}")  # the backend's identify
    shoot(page, "profile")

    # The event's trace is one click away.
    cause.get_by_role("link", name=f"s2-{RUN}").click()
    page.wait_for_url(f"**/lookup?message_id=s2-{RUN}")
    expect(page.locator("section.hops h2")).to_contain_text("identify")

    # Every id finds the same profile; the merged profile's id leads to it, and says so.
    search(page, server, f"email:{EMAIL}")
    assert page.url.endswith(f"/profiles/{profile_id}")
    page.goto(f"{server.base_url}/profiles/{loser}")
    expect(page.locator("#profile-id")).to_have_text(profile_id)
    expect(page.locator("#merged-from")).to_contain_text(loser)


def test_an_id_demoted_by_the_user_id_limit_is_shown_kept_apart(
    page: Page, server: SluiceServer
) -> None:
    """Segment's example: a new user_id with a known email makes a new profile; the email
    stays on the profile that had it."""
    jane = sluice_cli(server.data_dir, "profiles", "show", f"user_id:{USER}", "--json")
    jane_id = msgspec.json.decode(jane.stdout)["profile_id"]
    send(
        server,
        {"type": "track", "messageId": f"b1-{RUN}", "userId": "bob-7", "event": "Shared",
         "context": {"traits": {"email": EMAIL}}},
    )  # fmt: skip
    status = resolved(server, 6 + VIEWS)
    assert status["identifiers_demoted"] >= 1

    search(page, server, "user_id:bob-7")
    row = page.locator("#events tbody tr").first
    expect(row.locator("[data-fate=joined]")).to_have_text("user_id:bob-7")
    kept = row.locator("[data-fate=elsewhere]")
    expect(kept).to_contain_text(f"email:{EMAIL}")
    expect(kept).to_contain_text("kept apart")
    expect(kept.get_by_role("link")).to_have_text(jane_id)
    expect(page.locator("#no-merges")).to_be_visible()

    page.goto(f"{server.base_url}/profiles")
    assert number(page.locator("#state-demoted").inner_text()) == status["identifiers_demoted"]
    assert number(page.locator("#state-profiles").inner_text()) == 2
    assert number(page.locator("#state-merges").inner_text()) == 1


def test_identity_off_is_said_on_the_page(page: Page, server: SluiceServer, tmp_path: Any) -> None:
    exported = sluice_cli(server.data_dir, "export")
    assert exported.returncode == 0, exported.stderr
    workspace = yaml.safe_load(exported.stdout)
    workspace["identity"] = {"enabled": False}
    path = tmp_path / "ws.yaml"
    path.write_text(yaml.safe_dump(workspace))
    applied = sluice_cli(server.data_dir, "apply", str(path))
    assert applied.returncode == 0, applied.stderr

    page.goto(f"{server.base_url}/profiles")
    expect(page.locator("#identity-off")).to_contain_text("Identity resolution is off")
    # What the graph holds is still there to read.
    search(page, server, f"user_id:{USER}")
    expect(page.locator("#identity-off")).to_be_visible()
    expect(page.locator("#external-ids tbody tr")).to_have_count(3)
