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
from typing import Annotated, Any, ClassVar

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
    # Headers of one URL only, on top of `headers` (Segment's settings give each hook its own).
    url_headers: dict[str, dict[str, str]] = msgspec.field(default_factory=dict)
    shared_secret: str | None = None

    def __post_init__(self) -> None:
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"urls: {url!r} is not an http(s) URL")
        if not self.urls and not self.endpoint:
            raise ValueError("urls: at least one webhook URL is required")
        unknown = sorted(set(self.url_headers) - set(self.urls))
        if unknown:
            raise ValueError(f"url_headers: {unknown[0]!r} is not one of the urls")

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
        for url in urls:
            own = settings.url_headers.get(url)
            sent = merge_headers(headers, own) if own else headers
            requests.append(OutRequest("POST", url, sent, body, ids))
    return requests


def from_segment_hooks(settings: dict[str, Any]) -> dict[str, Any]:
    """Segment's classic settings read as Sluice's: `hooks: [{hook, headers: [{key, value}]}]`
    become `urls` and `url_headers` (empty header rows dropped, as Segment's form leaves one),
    and the older single `globalHook` a URL too."""
    hooks = settings.pop("hooks", None)
    global_hook = settings.pop("globalHook", None)
    if hooks is None and global_hook is None:
        return settings
    if "urls" in settings:
        raise msgspec.ValidationError(
            "`hooks` (Segment's name) and `urls` are the same setting: give one - at `$.hooks`"
        )
    urls: list[str] = []
    url_headers: dict[str, dict[str, str]] = {}
    for index, hook in enumerate(hooks or []):
        if not isinstance(hook, Mapping) or not isinstance(hook.get("hook"), str):
            raise msgspec.ValidationError(
                f"Expected `{{hook: URL, headers: [...]}}` - at `$.hooks[{index}]`"
            )
        url = hook["hook"].strip()
        if not url:
            continue
        urls.append(url)
        rows = [r for r in hook.get("headers") or [] if isinstance(r, Mapping) and r.get("key")]
        if rows:
            url_headers[url] = {str(r["key"]): str(r.get("value", "")) for r in rows}
    if isinstance(global_hook, str) and global_hook.strip() and global_hook.strip() not in urls:
        urls.append(global_hook.strip())
    settings["urls"] = urls
    if url_headers:
        settings["url_headers"] = url_headers
    return settings


class Webhook(Destination):
    """Webhooks (classic): the whole message to each configured URL."""

    id: ClassVar[str] = "webhook"
    name: ClassVar[str] = "Webhooks"
    segment_types: ClassVar[Sequence[str]] = ("webhooks", "54521fdc25e721e32a72ef04")
    segment_settings: ClassVar[Mapping[str, str]] = {"sharedSecret": "shared_secret"}
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

    @classmethod
    def sluice_settings(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        return from_segment_hooks(super().sluice_settings(raw))
