"""The built-in mappings (webhooks/defaults.py): each compiles, and the common deliveries of
GitHub and Twilio become the Spec events Segment's templates name, with their properties."""

from __future__ import annotations

from typing import Any

import pytest

from sluice.mapping import validate
from sluice.webhooks.defaults import DEFAULTS
from sluice.webhooks.events import describe, spec_event


@pytest.mark.parametrize(
    ("provider", "kind"), [(p, k) for p, kinds in DEFAULTS.items() for k in kinds]
)
def test_every_default_is_a_valid_mapping(provider: str, kind: str) -> None:
    validate(DEFAULTS[provider][kind])


def test_a_github_pull_request_is_tracked_for_its_sender() -> None:
    payload: dict[str, Any] = {
        "action": "opened", "number": 42,
        "pull_request": {"title": "Add lake", "state": "open", "merged": False,
                         "html_url": "https://github.com/o/r/pull/42",
                         "base": {"ref": "main"}, "head": {"ref": "lake"}},
        "repository": {"full_name": "o/r"}, "sender": {"id": 1234, "login": "octo"},
    }  # fmt: skip
    headers = {"x-github-event": "pull_request", "x-github-delivery": "d-1"}
    kind, delivery = describe("github", payload, headers, b"{}")
    event = spec_event("github", payload, headers, kind, delivery, {}, "track")
    assert event is not None and (kind, delivery) == ("pull_request.opened", "d-1")
    assert event["event"] == "Pull Request Opened" and event["userId"] == 1234
    assert event["properties"] == {
        "number": 42, "title": "Add lake", "state": "open", "merged": False,
        "url": "https://github.com/o/r/pull/42", "base": "main", "head": "lake",
        "repository": "o/r", "sender": "octo",
    }  # fmt: skip


def test_a_github_push_counts_its_commits() -> None:
    payload = {"ref": "refs/heads/main", "before": "a", "after": "b", "compare": "u",
               "commits": [{"id": "1"}, {"id": "2"}], "repository": {"full_name": "o/r"},
               "sender": {"id": 7, "login": "octo"}}  # fmt: skip
    headers = {"x-github-event": "push", "x-github-delivery": "d-2"}
    event = spec_event("github", payload, headers, *describe("github", payload, headers, b""),
                       {}, "track")  # fmt: skip
    assert event is not None and event["event"] == "Push"
    assert event["properties"]["commits"] == 2 and event["properties"]["ref"] == "refs/heads/main"


def test_a_twilio_status_callback_is_a_message_event() -> None:
    form = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+15550001",
            "From": "+15550002", "AccountSid": "AC1"}  # fmt: skip
    kind, delivery = describe("twilio", form, {}, b"")
    event = spec_event("twilio", form, {}, kind, delivery, {}, "track")
    assert event is not None and event["event"] == "Message Delivered"
    assert event["properties"] == {"message_sid": "SM1", "status": "delivered", "to": "+15550001",
                                   "from": "+15550002", "account_sid": "AC1"}  # fmt: skip
    assert event["anonymousId"] == f"twilio:{delivery}" and "userId" not in event
