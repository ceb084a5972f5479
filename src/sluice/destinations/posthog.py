"""PostHog, sending what Segment's "Posthog" Actions destination sends.

Segment has a PostHog Actions destination (slug `actions-posthog`), so the facts come from
segmentio/action-destinations, `packages/destination-actions/src/destinations/posthog/`:
`index.ts` (settings, presets), `event/index.ts`, `identify/index.ts`, `types.ts`,
`metadata.json` and the `__tests__`; the capture API's answers from PostHog's docs.

- Track Event: `POST {endpoint}/batch/`, JSON `{api_key, historical_migration, batch: [{event,
  timestamp, properties: {...properties, $current_url | $screen_name, distinct_id,
  $process_person_profile}}]}`. Page calls become `$pageview`, screen calls `$screen`.
  `timestamp` is the event's `receivedAt` string, as given. Segment batches only when the
  mapping's `enable_batching` is on (off by default), and so does Sluice.
- Identify: `POST {endpoint}/i/v0/e/`, JSON `{event: "$identify", api_key, distinct_id,
  properties: {$set: traits}, timestamp}`, one per request.

Segment's settings `endpoint` (the project's region URL) is Sluice's `endpoint`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

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
    require,
)

USER_AGENT = "Segment (Actions)"
US_CLOUD = "https://us.i.posthog.com"  # the other region is https://eu.i.posthog.com
HEADERS = {"content-type": "application/json", "user-agent": USER_AGENT}
# The private API (deleting persons) is on the app's host, not the ingestion one.
APP_HOSTS = {
    "https://us.i.posthog.com": "https://us.posthog.com",
    "https://eu.i.posthog.com": "https://eu.posthog.com",
}
MAX_DELETION_IDS = 1000  # distinct ids per bulk deletion
MAX_BATCH = 100  # the hidden `batch_size` field's default
_encode = msgspec.json.encode


class PostHogSettings(DestinationSettings, kw_only=True, forbid_unknown_fields=True):
    api_key: str  # the project API key
    project_id: str = ""  # Segment asks for it; nothing these actions send uses it
    historical_migration: bool = False
    # A personal API key with the `person:write` scope: only deletions use it (private API).
    personal_api_key: str = ""
    geoip_disable: bool = False  # sent as `$geoip_disable: true`: PostHog skips GeoIP enrichment

    def __repr__(self) -> str:
        return f"PostHogSettings(endpoint={self.endpoint!r}, project_id={self.project_id!r}, ***)"


def _paths(**fields: str) -> dict[str, Any]:
    return {name: {"@path": f"$.{path}"} for name, path in fields.items()}


EVENT_MAPPING: dict[str, Any] = {
    "event_type": "track",
    **_paths(event_name="event", distinct_id="userId", properties="properties"),
    **_paths(current_url="context.page.url", screen_name="name"),
    "anonymous_event_capture": False,
    **_paths(timestamp="receivedAt"),
    "enable_batching": False,
    "batch_size": MAX_BATCH,
    **_paths(ip_address="context.ip"),
}
PAGE_MAPPING = {**EVENT_MAPPING, "event_type": "page", "event_name": "$pageview"}
# Segment's preset names screens `$screenview`, but the code sends `$screen` for screen events.
SCREEN_MAPPING = {**EVENT_MAPPING, "event_type": "screen", "event_name": "$screenview"}
IDENTIFY_MAPPING = _paths(
    distinct_id="userId", properties="traits", timestamp="timestamp", ip_address="context.ip"
)


def _present(payload: Mapping[str, Any], **names: str) -> dict[str, Any]:
    """`{new: payload[old]}` for the fields the mapping produced (JSON.stringify's rule)."""
    return {new: payload[old] for new, old in names.items() if old in payload}


def _js_or(value: Any) -> Any:
    """`value || undefined` of Segment's code: None (left out) for any falsy value."""
    return value if value not in (None, "", 0, False) else None


def batch_event(payload: Mapping[str, Any], geoip_disable: bool = False) -> dict[str, Any]:
    """One item of `/batch/` from a Track Event payload.

    Segment writes `$current_url`, `$screen_name`, `distinct_id` and `$process_person_profile`
    over the event's properties; one it leaves undefined removes a property of that name.
    """
    kind = payload.get("event_type")
    name = {"page": "$pageview", "screen": "$screen"}.get(str(kind))
    properties = dict(payload.get("properties") or {})
    overrides = {
        "$current_url": "current_url" if kind == "page" else None,
        "$screen_name": "screen_name" if kind == "screen" else None,
        "distinct_id": "distinct_id",
        "$process_person_profile": "anonymous_event_capture",
    }
    for key, field in overrides.items():
        if field is not None and field in payload:
            properties[key] = payload[field]
        else:
            properties.pop(key, None)
    _set_or_drop(properties, "$geoip_disable", _js_or(geoip_disable))
    _set_or_drop(properties, "$ip", _js_or(payload.get("ip_address")))
    head = {"event": name} if name else _present(payload, event="event_name")
    return {**head, **_present(payload, timestamp="timestamp"), "properties": properties}


def _set_or_drop(properties: dict[str, Any], key: str, value: Any) -> None:
    """`{...properties, key: value}` as JSON: an undefined value removes the key."""
    if value is None:
        properties.pop(key, None)
    else:
        properties[key] = value


EVENT_REQUIRED = ("event_type", "event_name", "distinct_id", "anonymous_event_capture",
                  "enable_batching")  # fmt: skip


def _build_event(dest: PostHog, mapped: Sequence[Mapped]) -> list[OutRequest]:
    """Batching events share a request, the others go one by one; an event missing a field
    Segment's definition requires (no `distinct_id`: no userId) is refused as Segment does."""
    for m in mapped:
        require(m.payload, *EVENT_REQUIRED)
    batched = [m for m in mapped if m.payload.get("enable_batching")]
    groups = ([batched] if batched else []) + [[m] for m in mapped if m not in batched]
    requests = []
    for group in groups:
        body = {
            "api_key": dest.settings.api_key,
            "historical_migration": dest.settings.historical_migration,
            "batch": [batch_event(m.payload, dest.settings.geoip_disable) for m in group],
        }
        ids = [m.message_id for m in group]
        requests.append(OutRequest("POST", f"{dest.endpoint}/batch/", HEADERS, _encode(body), ids))
    return requests


def _build_identify(dest: PostHog, mapped: Sequence[Mapped]) -> list[OutRequest]:
    requests = []
    for m in mapped:
        for name in ("distinct_id", "properties"):  # Segment refuses the call without them
            if m.payload.get(name) is None:
                raise ValueError(f"The root value is missing the required field '{name}'.")
        body = {
            "event": "$identify",
            "api_key": dest.settings.api_key,
            **_present(m.payload, distinct_id="distinct_id"),
            "properties": _identify_properties(m.payload, dest.settings.geoip_disable),
            **_present(m.payload, timestamp="timestamp"),
        }
        url = f"{dest.endpoint}/i/v0/e/"
        requests.append(OutRequest("POST", url, HEADERS, _encode(body), [m.message_id]))
    return requests


def _identify_properties(payload: Mapping[str, Any], geoip_disable: bool) -> dict[str, Any]:
    properties = _present(payload, **{"$set": "properties"})
    _set_or_drop(properties, "$geoip_disable", _js_or(geoip_disable))
    _set_or_drop(properties, "$ip", _js_or(payload.get("ip_address")))
    return properties


class PostHog(Destination):
    id = "posthog"
    name = "Posthog"  # Segment's name for the Actions destination; "PostHog" is the classic one
    aliases = ("PostHog",)
    segment_types = ("actions-posthog", "PostHog (Actions)", "68516c107fc235f3572f8a64")
    Settings = PostHogSettings
    secret_settings = frozenset({"api_key", "personal_api_key"})
    settings: PostHogSettings
    default_endpoint = US_CLOUD
    actions: ClassVar[Mapping[str, Action]] = {
        "event": Action("event", "Track Event", _build_event, MAX_BATCH),
        "identify": Action("identify", "Identify", _build_identify),
    }
    presets = (
        Preset("Track Event", "event", 'type = "track"', EVENT_MAPPING),
        Preset("Page View", "event", 'type = "page"', PAGE_MAPPING),
        Preset("Screen View", "event", 'type = "screen"', SCREEN_MAPPING),
        Preset("Identify", "identify", 'type = "identify"', IDENTIFY_MAPPING),
    )

    def deletion_requests(self, distinct_ids: Sequence[str]) -> list[OutRequest]:
        """PostHog's persons API: `POST /api/projects/<project_id>/persons/bulk_delete/`,
        `Authorization: Bearer <personal API key>`, JSON `{distinct_ids, delete_events: true}`,
        1,000 ids a request, on the app host of the `endpoint`'s cloud (us/eu.posthog.com), or
        the `endpoint` itself (self-hosted PostHog serves both)."""
        base = APP_HOSTS.get(self.endpoint, self.endpoint)
        url = f"{base}/api/projects/{self.settings.project_id}/persons/bulk_delete/"
        headers = {
            "authorization": f"Bearer {self.settings.personal_api_key}",
            "content-type": "application/json",
        }
        return [
            OutRequest("POST", url, headers, _encode(
                {"distinct_ids": list(distinct_ids[i : i + MAX_DELETION_IDS]),
                 "delete_events": True}
            ), [])
            for i in range(0, len(distinct_ids), MAX_DELETION_IDS)
        ]  # fmt: skip

    def interpret(self, request: OutRequest, response: Response) -> Outcome:
        """PostHog answers for the whole batch; a batch over its size limit goes again, smaller."""
        if response.status == 413:
            return Outcome(Verdict.RETRY, "payload_too_large")
        return default_outcome(response)
