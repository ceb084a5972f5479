"""Amplitude, sending what Segment's "Actions Amplitude" destination sends.

Facts (paths, bodies, defaults, presets) come from segmentio/action-destinations,
`packages/destination-actions/src/destinations/amplitude/`: `index.ts`, `logEventV2/index.ts`,
`identifyUser/index.ts`, `groupIdentifyUser/index.ts`, `event-schema.ts`, `user-agent.ts`,
`utm.ts`, `referrer.ts`, `merge-user-properties.ts`, `regional-endpoints.ts` and the expectations
in `__tests__/amplitude.test.ts`; per-event errors from Amplitude's HTTP V2 API docs.

- Log Event V2: `POST /2/httpapi` (or `/batch`), JSON `{api_key, events, options?}`; `time` and
  `session_id` in epoch milliseconds, `library: "segment"`, and `use_batch_endpoint` left in each
  event as Segment does. Sluice puts several events in one request (Segment sends one).
- Identify User: `POST /identify`, form `api_key` + `identification` (one JSON object).
- Group Identify User: `POST /identify` (user to group), then `POST /groupidentify`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal
from urllib.parse import urlencode

import msgspec

from sluice.destinations.base import (
    Action,
    Destination,
    DestinationSettings,
    EventFailure,
    Mapped,
    Outcome,
    OutRequest,
    Preset,
    Response,
    Verdict,
    default_outcome,
    require,
    retry_after_seconds,
)
from sluice.spec.timestamps import parse_ms

USER_AGENT = "Segment (Actions)"  # the header Segment's request client sends
REGION_HOSTS = {
    "north_america": "https://api2.amplitude.com",
    "europe": "https://api.eu.amplitude.com",
}
THROTTLE_PAUSE_S = 30.0  # Amplitude's advice for a throttled device, when no Retry-After comes
JSON_HEADERS = {"content-type": "application/json", "user-agent": USER_AGENT}
FORM_HEADERS = {
    "content-type": "application/x-www-form-urlencoded;charset=UTF-8",
    "user-agent": USER_AGENT,
}
_encode = msgspec.json.encode


class AmplitudeSettings(DestinationSettings, kw_only=True, forbid_unknown_fields=True):
    api_key: str
    secret_key: str = ""  # Segment asks for it (deletions); these actions never send it
    region: Literal["north_america", "europe"] = "north_america"  # Segment: "Endpoint Region"

    def __repr__(self) -> str:
        return f"AmplitudeSettings(region={self.region!r}, endpoint={self.endpoint!r}, api_key=***)"


def _paths(**fields: str) -> dict[str, Any]:
    return {name: {"@path": f"$.{path}"} for name, path in fields.items()}


def _coalesce(first: str, then: str) -> dict[str, Any]:
    return {"@if": {"exists": {"@path": first}, "then": {"@path": first}, "else": {"@path": then}}}


# fmt: off
_CAMPAIGN = _paths(source="context.campaign.source", medium="context.campaign.medium",
                   campaign="context.campaign.name", term="context.campaign.term",
                   content="context.campaign.content")
_AD_ID = _coalesce("$.context.device.advertisingId", "$.context.device.idfa")
_COMMON = {
    **_paths(user_id="userId"),
    "device_id": _coalesce("$.context.device.id", "$.anonymousId"),
    **_paths(app_version="context.app.version", platform="context.device.type",
             os_name="context.os.name", os_version="context.os.version",
             device_brand="context.device.brand", device_manufacturer="context.device.manufacturer",
             device_model="context.device.model", carrier="context.network.carrier",
             country="context.location.country", region="context.location.region",
             city="context.location.city", language="context.locale",
             userAgent="context.userAgent", library="context.library.name"),
    "userAgentParsing": True,
    "includeRawUserAgent": False,
    "userAgentData": _paths(model="context.userAgentData.model",
                            platformVersion="context.userAgentData.platformVersion"),
}
_REVENUE = ("price", "quantity", "revenue", "productId", "revenueType")
LOG_EVENT_MAPPING: dict[str, Any] = {
    **_COMMON,
    **_paths(event_type="event", session_id="integrations.Actions Amplitude.session_id",
             time="timestamp", event_properties="properties", user_properties="traits",
             location_lat="context.location.latitude", location_lng="context.location.longitude",
             ip="context.ip", idfv="context.device.id"),
    **{name: {"@path": f"$.properties.{name}"} for name in _REVENUE},
    "idfa": _AD_ID,
    "adid": _AD_ID,
    "products": {"@arrayPath": ["$.properties.products", {k: {"@path": k} for k in _REVENUE}]},
    "setOnce": {**_paths(initial_referrer="context.page.referrer"),
                **{f"initial_utm_{k}": v for k, v in _CAMPAIGN.items()}},
    "setAlways": {**_paths(referrer="context.page.referrer"),
                  **{f"utm_{k}": v for k, v in _CAMPAIGN.items()}},
    "use_batch_endpoint": False,
}
IDENTIFY_MAPPING: dict[str, Any] = {
    **_COMMON,
    **_paths(user_properties="traits", referrer="context.page.referrer"),
    "utm_properties": {f"utm_{k}": v for k, v in _CAMPAIGN.items()},
}
# group_type and group_value have no default, which is why Segment ships no Group preset.
GROUP_IDENTIFY_MAPPING: dict[str, Any] = {
    **_paths(user_id="userId", time="timestamp", group_properties="traits"),
    "device_id": _coalesce("$.context.device.id", "$.anonymousId"),
}
# fmt: on
VIEWED = {"event_type": {"@template": "Viewed {{name}}"}}


def epoch_ms(value: Any) -> int | None:
    """`dayjs.utc(value).valueOf()` for what events carry: numbers are epoch ms already."""
    if isinstance(value, bool):
        return None
    return int(value) if isinstance(value, int | float) else parse_ms(value)


# @amplitude/ua-parser-js, reduced to the families that matter: the OS name, the browser's major
# version (Segment sends it as `os_version`) and the device of Apple and Android phones.
# fmt: off
_OS = [("windows nt", "Windows"), (r"\(cros\s", "Chromium OS"), ("android", "Android"),
       (r"ip(?:hone|ad|od).*?os\s\w+\slike\smac", "iOS"), (r"mac\sos\sx", "Mac OS"),
       ("linux", "Linux")]
_BROWSERS = [(r"\sopr/(\d+)", "Opera"), (r"edg(?:e|ios|a)?/(\d+)", "Edge"),
             (r"samsungbrowser/(\d+)", "Samsung Browser"),
             (r"\swv\).+chrome/(\d+)", "Chrome WebView"), (r"(?:chrome|crios)/(\d+)", "Chrome"),
             (r"fxios/(\d+)", "Firefox"), (r"version/(\d+).+?mobile/\w+\ssafari", "Mobile Safari"),
             (r"version/(\d+).+?safari", "Safari"), (r"firefox/(\d+)[\w.-]*$", "Firefox")]
# fmt: on
_APPLE = {"ipad": ("iPad", "tablet"), "iphone": ("iPhone", "mobile"), "ipod": ("iPod", "mobile")}


def parse_user_agent(ua: Any, ua_data: Any) -> dict[str, Any]:
    """Segment's `parseUserAgentProperties(userAgent, userAgentData)`."""
    if not isinstance(ua, str) or not ua:
        return {}
    os_name = next((name for pattern, name in _OS if re.search(pattern, ua, re.I)), None)
    found = ((re.search(p, ua, re.I), name) for p, name in _BROWSERS)
    match, browser = next(((m, name) for m, name in found if m), (None, None))
    vendor = model = kind = None
    if m := re.search(r"\((ipad|iphone|ipod)[;\s]", ua, re.I):
        vendor, (model, kind) = "Apple", _APPLE[m[1].lower()]
    elif m := re.search(r"android[^;)]*;\s*([^;)]+?)(?:\sbuild/[^;)]*)?[;)]", ua, re.I):
        model, kind = m[1], "mobile" if "mobile" in ua.lower() else "tablet"
        vendor = "Samsung" if re.match(r"(sm|gt)-", model, re.I) else None
    data = ua_data if isinstance(ua_data, Mapping) else {}
    parsed = {
        "os_name": os_name or browser,
        "os_version": _first(data.get("platformVersion"), match and match[1]),
        "device_manufacturer": vendor,
        "device_model": _first(data.get("model"), model, os_name),
        "device_type": kind,
    }
    return {k: v for k, v in parsed.items() if v is not None}


def _first(*values: Any) -> Any:
    """JavaScript's `a ?? b ?? c`."""
    return next((v for v in values if v is not None), None)


def _properties(payload: Mapping[str, Any], drop: Sequence[str]) -> dict[str, Any]:
    """The payload's own fields, then the user-agent fields under them, as every action does."""
    props = {k: v for k, v in payload.items() if k not in drop}
    platform = props.get("platform")
    if isinstance(platform, str) and platform:
        platform = re.sub("ios", "iOS", platform, count=1, flags=re.I)
        props["platform"] = re.sub("android", "Android", platform, count=1, flags=re.I)
    if payload.get("library") == "analytics.js" and not props.get("platform"):
        props["platform"] = "Web"
    derived: dict[str, Any] = {}
    if payload.get("userAgentParsing"):
        derived.update(parse_user_agent(payload.get("userAgent"), payload.get("userAgentData")))
    if payload.get("includeRawUserAgent") and payload.get("userAgent") is not None:
        derived["user_agent"] = payload["userAgent"]
    return {**derived, **props}


def _min_id_length(payload: Mapping[str, Any]) -> int | None:
    n = payload.get("min_id_length")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None


_UA_KEYS = ("userAgent", "userAgentParsing", "includeRawUserAgent", "userAgentData")
_SET_KEYS = ("setOnce", "setAlways", "add")
_LOG_DROP = (*_REVENUE, *_UA_KEYS, *_SET_KEYS, "time", "session_id", "min_id_length", "library")


def log_event(payload: Mapping[str, Any]) -> dict[str, Any]:
    """One Amplitude event from a Log Event V2 payload."""
    event = _properties(payload, _LOG_DROP)
    if payload.get("time") and (ms := epoch_ms(payload["time"])) is not None:
        event["time"] = ms
    session = payload.get("session_id")
    if session and (ms := int(session) if str(session).isdigit() else epoch_ms(session)):
        event["session_id"] = ms
    for operation, key in (("$setOnce", "setOnce"), ("$set", "setAlways"), ("$add", "add")):
        value = payload.get(key)
        if isinstance(value, Mapping) and any(v != "" for v in value.values()):
            event["user_properties"] = {**(event.get("user_properties") or {}), operation: value}
    return {**event, "library": "segment"}


def _build_log_event(dest: Amplitude, mapped: Sequence[Mapped]) -> list[OutRequest]:
    """Events that share an endpoint and `options` share a request."""
    groups: dict[tuple[str, int | None], list[Mapped]] = {}
    for m in mapped:
        path = "/batch" if m.payload.get("use_batch_endpoint") else "/2/httpapi"
        groups.setdefault((path, _min_id_length(m.payload)), []).append(m)
    requests = []
    for (path, min_id_length), group in groups.items():
        body: dict[str, Any] = {"api_key": dest.settings.api_key}
        body["events"] = [log_event(m.payload) for m in group]
        if min_id_length:
            body["options"] = {"min_id_length": min_id_length}
        ids = [m.message_id for m in group]
        requests.append(OutRequest("POST", dest.endpoint + path, JSON_HEADERS, _encode(body), ids))
    return requests


def _form(dest: Amplitude, path: str, identification: Any, m: Mapped) -> OutRequest:
    # Segment also sends `options=undefined` when there are none; Sluice leaves the field out.
    fields = {"api_key": dest.settings.api_key, "identification": _encode(identification).decode()}
    if min_id_length := _min_id_length(m.payload):
        fields["options"] = _encode({"min_id_length": min_id_length}).decode()
    body = urlencode(fields).encode()
    return OutRequest("POST", dest.endpoint + path, FORM_HEADERS, body, [m.message_id])


def _user_properties(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Traits, then the UTM fields as `$set` and `initial_*` `$setOnce`, then the referrer."""
    utm, referrer = payload.get("utm_properties") or {}, payload.get("referrer")
    merged = {
        k: v
        for k, v in (payload.get("user_properties") or {}).items()
        if k not in ("utm_properties", "referrer")
    }
    parts = [(dict(utm), {f"initial_{k}": v for k, v in utm.items()})] if utm else []
    if referrer:
        parts.append(({"referrer": referrer}, {"initial_referrer": referrer}))
    for always, once in parts:
        merged["$set"] = {**(merged.get("$set") or {}), **always}
        merged["$setOnce"] = {**(merged.get("$setOnce") or {}), **once}
    return merged


_IDENTIFY_DROP = (*_UA_KEYS, "utm_properties", "referrer", "min_id_length", "library")


def _build_identify(dest: Amplitude, mapped: Sequence[Mapped]) -> list[OutRequest]:
    requests = []
    for m in mapped:
        identification = _properties(m.payload, _IDENTIFY_DROP)
        if m.payload.get("utm_properties") or m.payload.get("referrer"):
            identification["user_properties"] = _user_properties(m.payload)
        identification["library"] = "segment"
        requests.append(_form(dest, "/identify", identification, m))
    return requests


def _present(payload: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """The keys the mapping produced (JSON.stringify drops undefined, keeps null)."""
    return {k: payload[k] for k in keys if k in payload}


def _build_group_identify(dest: Amplitude, mapped: Sequence[Mapped]) -> list[OutRequest]:
    requests = []
    for m in mapped:
        p = m.payload
        require(p, "group_type", "group_value")
        group_type = "undefined" if p.get("group_type") is None else str(p["group_type"])
        association = {group_type: p.get("group_value")}
        library = _first(p.get("library"), "segment")
        at = epoch_ms(p.get("time"))
        user = {
            **_present(p, "device_id", "insert_id", "user_id"),
            "groups": association,
            "library": library,
            "time": int(time.time() * 1000) if at is None else at,
            "user_properties": association,
        }
        group = {**_present(p, "group_properties", "group_value", "group_type"), "library": library}
        requests.append(_form(dest, "/identify", [user], m))
        requests.append(_form(dest, "/groupidentify", [group], m))
    return requests


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

    actions: ClassVar[Mapping[str, Action]] = {
        "logEventV2": Action("logEventV2", "Log Event V2", _build_log_event, 2000, 1_000_000),
        "identifyUser": Action("identifyUser", "Identify User", _build_identify),
        "groupIdentifyUser": Action(
            "groupIdentifyUser", "Group Identify User", _build_group_identify
        ),
    }
    presets = (
        Preset("Track Calls", "logEventV2", 'type = "track"', LOG_EVENT_MAPPING),
        Preset("Page Calls", "logEventV2", 'type = "page"', {**LOG_EVENT_MAPPING, **VIEWED}),
        Preset("Screen Calls", "logEventV2", 'type = "screen"', {**LOG_EVENT_MAPPING, **VIEWED}),
        Preset("Identify Calls", "identifyUser", 'type = "identify"', IDENTIFY_MAPPING),
    )

    @property
    def endpoint(self) -> str:
        return (self.settings.endpoint or REGION_HOSTS[self.settings.region]).rstrip("/")

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
