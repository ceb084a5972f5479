"""Slack (Actions): "Post Message" to a Slack incoming-webhook URL.

What it sends, per segmentio/action-destinations
`packages/destination-actions/src/destinations/slack/` (`postToChannel/index.ts`,
`metadata.json`, `__tests__/slack.test.ts`): `POST <webhook url>` with `User-Agent: Segment
(Actions)`, `Content-Type: application/json` and the JSON `{channel, text, username, icon_url}`
(unset fields left out). The fields are `url` (required, must be a `https://…slack.com/…` URL),
`text` (required; usually a `@template` such as "{{userId}} signed up"), `channel` (without `#`),
`username` (default "Segment") and `icon_url` (default Segment's logo). Segment ships no default
subscription and no preset: every mapping names its trigger, URL and text.

Slack answers 200 `ok`, or an error status whose body is a short reason (`invalid_payload`,
`channel_not_found`, …); the reason is kept with the outcome. `endpoint`, when set, replaces the
scheme and host of the mapped URL (for tests and egress proxies).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import ClassVar

import msgspec

from sluice.destinations.base import (
    Action,
    Destination,
    DestinationSettings,
    Mapped,
    Outcome,
    OutRequest,
    Preset,
    Response,
    Verdict,
    default_outcome,
)
from sluice.destinations.webhook_actions import redirect

USER_AGENT = "Segment (Actions)"
DEFAULT_USERNAME = "Segment"
DEFAULT_ICON_URL = "https://logo.clearbit.com/segment.com"
# The URLs Segment accepts (postToChannel: isValidSlackUrl).
SLACK_URL = re.compile(r"^https://[a-zA-Z0-9.-]+\.slack.com[/a-zA-Z0-9]+$")
MAX_REASON_CHARS = 200


class SlackSettings(DestinationSettings, kw_only=True, forbid_unknown_fields=True):
    """Nothing but `endpoint`: the webhook URL is a field of each mapping, as at Segment."""


def _post_message(destination: Slack, mapped: Sequence[Mapped]) -> list[OutRequest]:
    requests = []
    for item in mapped:
        payload = item.payload if isinstance(item.payload, dict) else {}
        url = payload.get("url")
        if not isinstance(url, str) or not SLACK_URL.match(url):
            raise ValueError(f"message {item.message_id}: Invalid Slack URL {url!r}")
        text = payload.get("text")
        if text is None or text == "":
            raise ValueError(f"message {item.message_id}: `text` is required")
        body = {
            "channel": payload.get("channel"),
            "text": text,
            "username": payload.get("username", DEFAULT_USERNAME),
            "icon_url": payload.get("icon_url", DEFAULT_ICON_URL),
        }
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
        encoded = msgspec.json.encode({k: v for k, v in body.items() if v is not None})
        target = redirect(url, destination.settings.endpoint)
        requests.append(OutRequest("POST", target, headers, encoded, (item.message_id,)))
    return requests


class Slack(Destination):
    """Slack (Actions): one message per event matched by a mapping."""

    id: ClassVar[str] = "slack"
    name: ClassVar[str] = "Slack (Actions)"
    aliases: ClassVar[Sequence[str]] = ("Actions Slack",)
    segment_types: ClassVar[Sequence[str]] = ("actions-slack", "5f7dd8e302173ff732db5cc4")
    Settings: ClassVar[type[DestinationSettings]] = SlackSettings
    # No setting is a secret: the webhook URL, the credential, is a field of each mapping.
    secret_fields: ClassVar[Mapping[str, frozenset[str]]] = {"postToChannel": frozenset({"url"})}
    actions: ClassVar[Mapping[str, Action]] = {
        "postToChannel": Action("postToChannel", "Post Message", _post_message, max_batch=1),
    }
    presets: ClassVar[Sequence[Preset]] = ()

    settings: SlackSettings

    def interpret(self, request: OutRequest, response: Response) -> Outcome:
        """As usual, with Slack's one-word reason (e.g. `channel_not_found`) in the outcome."""
        outcome = default_outcome(response)
        reason = response.body[:MAX_REASON_CHARS].decode("utf-8", "replace").strip()
        if outcome.verdict is Verdict.DELIVERED or not reason:
            return outcome
        return Outcome(outcome.verdict, f"{outcome.reason}: {reason}", outcome.retry_after_s)
