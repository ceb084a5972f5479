"""Amplitude, sending what Segment's "Actions Amplitude" destination sends, byte for byte.

Facts (fields, defaults, presets, paths, bodies) come from Segment's own code,
@segment/action-destinations `dist/destinations/amplitude` (index, logEvent, logEventV2,
logPurchase, identifyUser, groupIdentifyUser, mapUser, event-schema, user-agent,
merge-user-properties, regional-endpoints) and what actions-core does before an action runs
(schema.py); per-event errors from Amplitude's HTTP V2 API docs. The modules: fields.py (the
actions' fields, whose defaults are the presets), schema.py (the payload an action sees),
actions.py (the requests), user_agent.py (the user-agent parser), wire.py (JavaScript's JSON,
forms and dates).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal

import msgspec

from sluice.destinations.amplitude import fields
from sluice.destinations.amplitude.actions import (
    build_events,
    build_group_identify,
    build_identify,
    build_map_user,
    events_of,
    payload_of,
)
from sluice.destinations.amplitude.user_agent import parse_user_agent
from sluice.destinations.base import (
    Action,
    Destination,
    DestinationSettings,
    EventFailure,
    Outcome,
    OutRequest,
    Preset,
    Response,
    Verdict,
    default_outcome,
    retry_after_seconds,
)

__all__ = [
    "GROUP_IDENTIFY_MAPPING",
    "IDENTIFY_MAPPING",
    "LOG_EVENT_MAPPING",
    "LOG_PURCHASE_MAPPING",
    "Amplitude",
    "AmplitudeSettings",
    "events_of",
    "parse_user_agent",
    "payload_of",
]

REGION_HOSTS = {
    "north_america": "https://api2.amplitude.com",
    "europe": "https://api.eu.amplitude.com",
}
# regional-endpoints.ts: every API's URL per region (`usermap` is not on api2 in North America).
URLS: Mapping[str, Mapping[str, str]] = {
    "httpapi": {"north_america": "https://api2.amplitude.com/2/httpapi",
                "europe": "https://api.eu.amplitude.com/2/httpapi"},
    "batch": {"north_america": "https://api2.amplitude.com/batch",
              "europe": "https://api.eu.amplitude.com/batch"},
    "identify": {"north_america": "https://api2.amplitude.com/identify",
                 "europe": "https://api.eu.amplitude.com/identify"},
    "groupidentify": {"north_america": "https://api2.amplitude.com/groupidentify",
                      "europe": "https://api.eu.amplitude.com/groupidentify"},
    "usermap": {"north_america": "https://api.amplitude.com/usermap",
                "europe": "https://api.eu.amplitude.com/usermap"},
}  # fmt: skip
PATHS = {"httpapi": "/2/httpapi", "batch": "/batch", "identify": "/identify",
         "groupidentify": "/groupidentify", "usermap": "/usermap"}  # fmt: skip
# The User Privacy API (v1) is on the web app's hosts, not the ingestion ones.
DELETION_HOSTS = {
    "north_america": "https://amplitude.com",
    "europe": "https://analytics.eu.amplitude.com",
}
DELETION_PATH = "/api/2/deletions/users"
MAX_DELETION_IDS = 100  # user ids per deletion request
THROTTLE_PAUSE_S = 30.0  # Amplitude's advice for a throttled device, when no Retry-After comes

LOG_EVENT_MAPPING = fields.defaults(fields.LOG_EVENT_V2)
VIEWED = {**LOG_EVENT_MAPPING, "event_type": {"@template": "Viewed {{name}}"}}
LOG_PURCHASE_MAPPING = fields.defaults(fields.LOG_PURCHASE)
IDENTIFY_MAPPING = fields.defaults(fields.IDENTIFY_USER)
# group_type and group_value have no default, which is why Segment ships no Group preset.
GROUP_IDENTIFY_MAPPING = fields.defaults(fields.GROUP_IDENTIFY_USER)
ORDER_COMPLETED = '"Order Completed"'


class AmplitudeSettings(DestinationSettings, kw_only=True, forbid_unknown_fields=True):
    api_key: str
    secret_key: str = ""  # Segment asks for it (deletions); these actions never send it
    region: Literal["north_america", "europe"] = "north_america"  # Segment: "Endpoint Region"

    def __repr__(self) -> str:
        return f"AmplitudeSettings(region={self.region!r}, endpoint={self.endpoint!r}, api_key=***)"


def rejected_indices(body: Any) -> set[int]:
    """Indices of the events a 400 names: invalid or missing fields, bad ids, silenced devices."""
    if not isinstance(body, Mapping):
        return set()
    found = {i for i in body.get("silenced_events") or [] if isinstance(i, int)}
    for key in ("invalid_fields", "missing_fields", "invalid_id_lengths"):
        for indices in (body.get(f"events_with_{key}") or {}).values():
            found.update(i for i in indices if isinstance(i, int))
    return found


class Amplitude(Destination):
    id = "amplitude"
    name = "Actions Amplitude"
    aliases = ("Amplitude",)
    segment_types = ("actions-amplitude", "Amplitude (Actions)", "5f7dd6d21ad74f3842b1fc47")
    segment_settings: ClassVar[Mapping[str, str]] = {"apiKey": "api_key", "secretKey": "secret_key"}
    Settings = AmplitudeSettings
    secret_settings = frozenset({"api_key", "secret_key"})
    settings: AmplitudeSettings
    default_endpoint = REGION_HOSTS["north_america"]

    @classmethod
    def sluice_settings(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Segment's `endpoint` setting is the region (`north_america`, `europe`); Sluice's is a
        base URL. A value that is a region is read as Segment's: a URL always has a scheme."""
        settings = super().sluice_settings(raw)
        if settings.get("endpoint") in REGION_HOSTS:
            if "region" in settings:
                raise msgspec.ValidationError(
                    "`endpoint` (Segment's region setting) and `region` are the same setting:"
                    " give one - at `$.endpoint`"
                )
            settings["region"] = settings.pop("endpoint")
        return settings

    # Segment's actions, in its definition's order; only Log Event V2 takes several events.
    actions: ClassVar[Mapping[str, Action]] = {
        "logEvent": Action("logEvent", "Log Event", build_events("logEvent")),
        "identifyUser": Action("identifyUser", "Identify User", build_identify),
        "mapUser": Action("mapUser", "Map User", build_map_user),
        "groupIdentifyUser": Action(
            "groupIdentifyUser", "Group Identify User", build_group_identify
        ),
        "logPurchase": Action("logPurchase", "Log Purchase", build_events("logPurchase")),
        "logEventV2": Action(
            "logEventV2", "Log Event V2", build_events("logEventV2"), 2000, 1_000_000
        ),
    }
    # Segment's automatic presets (its "Browser Session Tracking" is a browser plugin's).
    presets = (
        Preset("Track Calls", "logEventV2", f'type = "track" and event != {ORDER_COMPLETED}',
               LOG_EVENT_MAPPING),
        Preset("Order Completed Calls", "logPurchase",
               f'type = "track" and event = {ORDER_COMPLETED}', LOG_PURCHASE_MAPPING),
        Preset("Page Calls", "logEventV2", 'type = "page"', VIEWED),
        Preset("Screen Calls", "logEventV2", 'type = "screen"', VIEWED),
        Preset("Identify Calls", "identifyUser", 'type = "identify"', IDENTIFY_MAPPING),
    )  # fmt: skip

    def url(self, kind: str) -> str:
        """Where requests of one API (`httpapi`, `identify`, ...) go: under the `endpoint`
        setting when there is one, else the region's own URL."""
        if self.settings.endpoint:
            return self.settings.endpoint.rstrip("/") + PATHS[kind]
        return URLS[kind][self.settings.region]

    @property
    def endpoint(self) -> str:
        return (self.settings.endpoint or REGION_HOSTS[self.settings.region]).rstrip("/")

    def deletion_requests(self, requester: str, user_ids: Sequence[str]) -> list[OutRequest]:
        """Amplitude's User Privacy API: `POST /api/2/deletions/users`, HTTP Basic with the API
        key and secret key, JSON `{user_ids, requester, ignore_invalid_id}`, 100 ids a request
        (users Amplitude never saw are skipped, not an error). Under `endpoint` when set."""
        base = self.settings.endpoint or DELETION_HOSTS[self.settings.region]
        url = base.rstrip("/") + DELETION_PATH
        pair = f"{self.settings.api_key}:{self.settings.secret_key}".encode()
        headers = {
            "authorization": "Basic " + base64.b64encode(pair).decode(),
            "content-type": "application/json",
        }
        return [
            OutRequest("POST", url, headers, msgspec.json.encode(
                {"user_ids": list(chunk), "requester": requester, "ignore_invalid_id": True}
            ), [])
            for chunk in _chunks(user_ids, MAX_DELETION_IDS)
        ]  # fmt: skip

    def interpret(self, request: OutRequest, response: Response) -> Outcome:
        """A 400 rejects the whole upload: the events it names park, the others go again."""
        if response.status == 413:
            return Outcome(Verdict.RETRY, "payload_too_large")
        if response.status == 429:
            wait = retry_after_seconds(response.headers) or THROTTLE_PAUSE_S
            return Outcome(Verdict.RETRY, "HTTP 429", wait)
        ids = request.message_ids
        if response.status != 400 or len(ids) < 2:
            return default_outcome(response)
        try:
            body = msgspec.json.decode(response.body)
        except msgspec.DecodeError:
            return default_outcome(response)
        bad = sorted(i for i in rejected_indices(body) if 0 <= i < len(ids))
        if not bad:
            return default_outcome(response)
        reason = f"HTTP 400: {body.get('error') or 'event rejected'}"
        failures = {ids[i]: EventFailure(Verdict.PARK, reason) for i in bad}
        if len(bad) == len(ids):
            return Outcome(Verdict.PARK, reason, failures=failures)
        reason = f"{len(bad)} of {len(ids)} events rejected, the others are sent again"
        return Outcome(Verdict.RETRY, reason, failures=failures)


def _chunks(ids: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
