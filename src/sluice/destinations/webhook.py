"""The classic Webhooks destination: every message, as JSON, POSTed to up to five URLs.

What it sends, per Segment's documentation of the classic destination
(segmentio/segment-docs `src/connections/destinations/catalog/webhooks/index.md`) and requests
captured from it in public projects: `POST <url>` with the whole message as the JSON body,
`Content-Type: application/json`, `User-Agent: Segment.io/1.0`, the custom headers, and, when a
shared secret is set, `X-Signature` = hex HMAC-SHA1(secret, body). The endpoint must answer
within 5 seconds.

Several URLs: one request per URL carries the same event. Segment considers a message delivered
as soon as one webhook accepts it and does not retry the others; `any_request_delivers` tells the
delivery engine to settle the event that way (see docs/destinations/webhook.md).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Annotated, ClassVar

import msgspec

from sluice.destinations.base import (
    Action,
    Destination,
    DestinationSettings,
    Mapped,
    OutRequest,
    Preset,
)

MAX_URLS = 5
TIMEOUT_S = 5.0  # Segment: "must respond within 5 seconds"
USER_AGENT = "Segment.io/1.0"
ALL_CALL_TYPES = ("track", "identify", "page", "screen", "group", "alias")


class WebhookSettings(DestinationSettings, kw_only=True, forbid_unknown_fields=True):
    """Up to five URLs, custom headers and an optional shared secret for `X-Signature`.

    `endpoint` (the base setting) is the URL used when `urls` is empty.
    """

    urls: Annotated[list[str], msgspec.Meta(max_length=MAX_URLS)] = msgspec.field(
        default_factory=list
    )
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    shared_secret: str | None = None

    def __post_init__(self) -> None:
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"urls: {url!r} is not an http(s) URL")
        if not self.urls and not self.endpoint:
            raise ValueError("urls: at least one webhook URL is required")

    def __repr__(self) -> str:
        secret = "<redacted>" if self.shared_secret else None
        headers = f"<{len(self.headers)} headers>"
        return f"WebhookSettings(urls={self.urls!r}, headers={headers}, shared_secret={secret})"


def sign(secret: str, body: bytes) -> str:
    """`X-Signature`: the hex HMAC-SHA1 of the exact body bytes, keyed by the shared secret."""
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def merge_headers(*layers: Mapping[str, str]) -> dict[str, str]:
    """Later layers win; names compare case-insensitively, as HTTP does."""
    merged: dict[str, tuple[str, str]] = {}
    for layer in layers:
        for name, value in layer.items():
            merged[name.lower()] = (name, str(value))
    return dict(merged.values())


def _send(destination: Webhook, mapped: Sequence[Mapped]) -> list[OutRequest]:
    settings = destination.settings
    urls = settings.urls or [destination.endpoint]
    requests: list[OutRequest] = []
    for item in mapped:
        body = msgspec.json.encode(item.payload)
        base = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        headers = merge_headers(base, settings.headers)
        if settings.shared_secret:
            headers["X-Signature"] = sign(settings.shared_secret, body)
        ids = (item.message_id,)
        requests.extend(OutRequest("POST", url, headers, body, ids) for url in urls)
    return requests


class Webhook(Destination):
    """Webhooks (classic): the whole message to each configured URL."""

    id: ClassVar[str] = "webhook"
    name: ClassVar[str] = "Webhooks"
    Settings: ClassVar[type[DestinationSettings]] = WebhookSettings
    secret_settings: ClassVar[frozenset[str]] = frozenset({"shared_secret"})
    timeout_s: ClassVar[float] = TIMEOUT_S
    # The requests built for one event are alternatives: the event is delivered when any of them
    # is, and the others are then not retried (Segment: "If sending a message to any of the
    # webhooks succeed, we consider the message to be successfully processed").
    any_request_delivers: ClassVar[bool] = True
    actions: ClassVar[Mapping[str, Action]] = {
        "send": Action("send", "Send", _send, max_batch=1),
    }
    presets: ClassVar[Sequence[Preset]] = (
        Preset(
            "Send every call",
            "send",
            " or ".join(f'type = "{t}"' for t in ALL_CALL_TYPES),
            {"@path": "$"},
        ),
    )

    settings: WebhookSettings
