"""Mixpanel, sending what Segment's "Mixpanel (Actions)" destination sends.

Facts come from segmentio/action-destinations, `packages/destination-actions/src/destinations/
mixpanel/`: `index.ts` (settings, presets), `trackEvent/index.ts` and `trackEvent/functions.ts`,
`mixpanel-properties.ts` (default mappings), `identifyUser/index.ts`, `groupIdentifyUser/index.ts`,
`alias/index.ts`, `common/utils.ts` (browser detection, import credential, multistatus handling)
and their `__tests__`; error bodies from Mixpanel's Import API docs.

- Track Event: `POST /import?strict=1`, JSON array of `{event, properties}`, HTTP Basic with the
  API secret (or the project token when there is no secret) as user name; `time` in epoch ms,
  `$insert_id` from `messageId`, `$source: "segment"`. Up to 2000 events per request.
- Identify User: `POST /track` form `data={"event": "$identify", ...}` when there is an
  anonymous id, then `POST /engage` form `data={"$token", "$distinct_id", "$ip", "$set"}`.
- Group Identify User: `POST /groups` form `data={"$token", "$group_key", "$group_id", "$set"}`.
- Alias: `POST /track` form `data={"event": "$create_alias", ...}` (no preset, as in Segment).
"""

from __future__ import annotations

import base64
import re
import secrets
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
)
from sluice.spec.timestamps import parse_ms

USER_AGENT = "Segment (Actions)"
REGION_HOSTS = {
    "US": "https://api.mixpanel.com",
    "EU": "https://api-eu.mixpanel.com",
    "IN": "https://api-in.mixpanel.com",
}
FORM_HEADERS = {
    "content-type": "application/x-www-form-urlencoded;charset=UTF-8",
    "user-agent": USER_AGENT,
}
MAX_EVENTS = 2000  # per /import request
MAX_BYTES = 2_000_000  # Mixpanel now takes 10 MB; 2 MB keeps requests quick to retry
_encode = msgspec.json.encode


class MixpanelSettings(DestinationSettings, kw_only=True, forbid_unknown_fields=True):
    project_token: str
    api_secret: str = ""  # Segment: "Secret Key"; without it /import authenticates by token
    # Segment's "Data Residency" values carry a flag ("EU 🇪🇺"); both spellings are accepted.
    api_region: Literal["US", "EU", "IN", "US 🇺🇸", "EU 🇪🇺", "IN 🇮🇳"] = "US"
    source_name: str | None = None  # sent as `segment_source_name` when set
    strict_mode: Literal["1", "0"] = "1"

    def __repr__(self) -> str:
        return f"MixpanelSettings(api_region={self.api_region!r}, endpoint={self.endpoint!r}, ***)"


def _paths(**fields: str) -> dict[str, Any]:
    return {name: {"@path": f"$.{path}"} for name, path in fields.items()}


def _coalesce(first: str, then: str) -> dict[str, Any]:
    return {"@if": {"exists": {"@path": first}, "then": {"@path": first}, "else": {"@path": then}}}


# fmt: off
TRACK_MAPPING: dict[str, Any] = {
    **_paths(event="event"),
    "distinct_id": _coalesce("$.userId", "$.anonymousId"),
    **_paths(group_id="context.groupId", insert_id="messageId", time="timestamp",
             app_name="context.app.name", app_namespace="context.app.namespace",
             app_build="context.app.build", app_version="context.app.version",
             os_name="context.os.name", os_version="context.os.version",
             device_id="context.device.id", device_type="context.device.type",
             device_name="context.device.name", device_manufacturer="context.device.manufacturer",
             device_model="context.device.model", bluetooth="context.network.bluetooth",
             carrier="context.network.carrier", cellular="context.network.cellular",
             wifi="context.network.wifi", country="context.location.country",
             region="context.location.region", language="context.locale",
             library_name="context.library.name", library_version="context.library.version",
             ip="context.ip", url="context.page.url",
             # Segment's defaults read the density for all three screen fields.
             screen_width="context.screen.density", screen_height="context.screen.density",
             screen_density="context.screen.density", referrer="context.page.referrer",
             userAgent="context.userAgent", event_properties="properties",
             user_properties="traits"),
    "idfa": _coalesce("$.context.device.advertisingId", "$.context.device.idfa"),
    "utm_properties": _paths(utm_source="context.campaign.source",
                             utm_medium="context.campaign.medium",
                             utm_campaign="context.campaign.name",
                             utm_term="context.campaign.term",
                             utm_content="context.campaign.content"),
    "enable_batching": True,
}
# fmt: on
IDENTIFY_MAPPING = _paths(ip="context.ip", user_id="userId", anonymous_id="anonymousId")
IDENTIFY_MAPPING["traits"] = {"@path": "$.traits"}
GROUP_MAPPING = _paths(group_id="groupId", traits="traits")  # group_key has no default
ALIAS_MAPPING = {
    "alias": _coalesce("$.userId", "$.anonymousId"),
    **_paths(distinct_id="previousId"),
}
VIEWED = {"event": {"@template": "Viewed {{name}}"}}

# fmt: off
# Segment's getBrowser: the first pattern found (case-sensitive but for BlackBerry) names it,
# and getBrowserVersion reads the dotted version after the browser's prefix.
_BROWSERS = [
    (r"^(?=.* OPR/)(?=.*Mini)", "Opera Mini"), (" OPR/", "Opera"),
    ("(?i)BlackBerry|PlayBook|BB10", "BlackBerry"),
    ("IEMobile|WPDesktop", "Internet Explorer Mobile"),
    ("SamsungBrowser/", "Samsung Internet"), ("Edge|Edg/", "Microsoft Edge"),
    ("FBIOS", "Facebook Mobile"), ("Chrome", "Chrome"), ("CriOS", "Chrome iOS"),
    ("UCWEB|UCBrowser", "UC Browser"), ("FxiOS", "Firefox iOS"),
    ("^(?=.*Safari)(?=.*iPhone)", "Mobile Safari"), ("Safari", "Safari"),
    ("Android", "Android Mobile"), ("Konqueror", "Konqueror"), ("Firefox", "Firefox"),
    ("MSIE|Trident/", "Internet Explorer"), ("Gecko", "Mozilla"),
]
_BROWSER_VERSIONS = {
    "Internet Explorer Mobile": "rv:", "Microsoft Edge": "Edge?/", "Chrome": "Chrome/",
    "Chrome iOS": "CriOS/", "UC Browser": "(?:UCBrowser|UCWEB)/", "Safari": "Version/",
    "Mobile Safari": "Version/", "Opera": "(?:Opera|OPR)/", "Firefox": "Firefox/",
    "Firefox iOS": "FxiOS/", "Konqueror": "Konqueror:", "BlackBerry": "BlackBerry ",
    "Android Mobile": r"android\s", "Samsung Internet": "SamsungBrowser/",
    "Internet Explorer": "(?:rv:|MSIE )", "Mozilla": "rv:",
}
# fmt: on


def browser(ua: str) -> tuple[str, str | None]:
    """Segment's `getBrowser` and `getBrowserVersion` (case-sensitive, as in the original)."""
    name = next((name for pattern, name in _BROWSERS if re.search(pattern, ua)), "")
    prefix = _BROWSER_VERSIONS.get(name)
    found = re.search(prefix + r"(\d+(?:\.\d+)+)", ua) if prefix else None
    return name, found[1] if found else None


# Mixpanel's reserved property <- the payload field it comes from (Segment's getEventProperties).
# fmt: off
_RESERVED = {
    "ip": "ip", "id": "distinct_id", "distinct_id": "distinct_id",
    "$app_build_number": "app_build", "$app_version_string": "app_version",
    "$app_namespace": "app_namespace", "$app_name": "app_name",
    "$bluetooth_enabled": "bluetooth", "$cellular_enabled": "cellular", "$carrier": "carrier",
    "$current_url": "url", "$device": "device_name", "$device_id": "device_id",
    "$device_type": "device_type", "$device_name": "device_name", "$group_id": "group_id",
    "$ios_ifa": "idfa", "$lib_version": "library_version", "$locale": "language",
    "$manufacturer": "device_manufacturer", "$model": "device_model", "$os": "os_name",
    "$os_version": "os_version", "$referrer": "referrer", "$screen_height": "screen_height",
    "$screen_width": "screen_width", "$screen_density": "screen_density",
    "$wifi_enabled": "wifi", "mp_country_code": "country",
}
# fmt: on
_UTM = ("utm_campaign", "utm_content", "utm_medium", "utm_source", "utm_term")


def event_properties(p: Mapping[str, Any], settings: MixpanelSettings) -> dict[str, Any]:
    """Mixpanel's reserved names from the payload, then the event's own properties over them.

    Like JSON.stringify, a field the mapping did not produce is left out and a null is kept.
    """
    at = p.get("time")
    ms = (int(at) if isinstance(at, int | float) else parse_ms(at)) if at else None
    props = {out: p[key] for out, key in _RESERVED.items() if key in p}
    props["time"] = int(time.time() * 1000) if ms is None else ms
    if isinstance(ua := p.get("userAgent"), str) and ua:
        props["$browser"], version = browser(ua)
        if version is not None:
            props["$browser_version"] = version
    props["$insert_id"] = _first(p.get("insert_id"), secrets.token_hex(8))
    props["$source"] = "segment"
    if "library_name" in p:
        library = p["library_name"]
        props["mp_lib"] = f"Segment: {library}" if library else library
    props.update(_source(settings))
    utm = p.get("utm_properties") or {}
    props.update({k: utm[k] for k in _UTM if k in utm})
    return {**props, **(p.get("event_properties") or {})}


def _build_track(dest: Mixpanel, mapped: Sequence[Mapped]) -> list[OutRequest]:
    """One request for the batch; events whose mapping turns batching off go one by one."""
    s = dest.settings
    credential = s.api_secret or s.project_token
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "authorization": "Basic " + base64.b64encode(f"{credential}:".encode()).decode(),
    }
    url = f"{dest.endpoint}/import?strict={s.strict_mode}"
    batched = [m for m in mapped if m.payload.get("enable_batching")]
    groups = [batched] if batched else []
    groups += [[m] for m in mapped if not m.payload.get("enable_batching")]
    requests = []
    for group in groups:
        events = [
            {**_renamed(m.payload, event="event"), "properties": event_properties(m.payload, s)}
            for m in group
        ]
        ids = [m.message_id for m in group]
        requests.append(OutRequest("POST", url, headers, _encode(events), ids))
    return requests


def _form(dest: Mixpanel, path: str, data: dict[str, Any], message_id: str) -> OutRequest:
    body = urlencode({"data": _encode(data).decode()}).encode()
    return OutRequest("POST", dest.endpoint + path, FORM_HEADERS, body, [message_id])


def _renamed(payload: Mapping[str, Any], **names: str) -> dict[str, Any]:
    """`{new: payload[old]}` for the fields the mapping produced (undefined left out)."""
    return {new: payload[old] for new, old in names.items() if old in payload}


def _source(settings: MixpanelSettings) -> dict[str, Any]:
    return {} if settings.source_name is None else {"segment_source_name": settings.source_name}


_PROFILE = {
    "created": "$created", "email": "$email", "firstName": "$first_name",
    "lastName": "$last_name", "username": "$username", "phone": "$phone",
}  # fmt: skip


def profile_set(traits: Mapping[str, Any]) -> dict[str, Any]:
    """Traits with Segment's reserved names moved to Mixpanel's (`firstName` -> `$first_name`),
    and `$name` made from first and last name when there is no `name`."""
    out = {k: v for k, v in traits.items() if k not in _PROFILE and k != "name"}
    out.update({reserved: traits[k] for k, reserved in _PROFILE.items() if k in traits})
    first, last = traits.get("firstName"), traits.get("lastName")
    name = _first(traits.get("name"), f"{first} {last}" if first and last else None)
    if name is not None:
        out["$name"] = name
    return out


def _first(*values: Any) -> Any:
    """JavaScript's `a ?? b`."""
    return next((v for v in values if v is not None), None)


def _build_identify(dest: Mixpanel, mapped: Sequence[Mapped]) -> list[OutRequest]:
    """`$identify` links the anonymous id to the user id; `/engage` sets the profile."""
    token, requests = dest.settings.project_token, []
    for m in mapped:
        p = m.payload
        if p.get("anonymous_id"):
            properties = {
                **_renamed(p, **{"$identified_id": "user_id", "$anon_id": "anonymous_id"})
            }
            properties.update(token=token, **_source(dest.settings))
            data = {"event": "$identify", "properties": properties}
            requests.append(_form(dest, "/track", data, m.message_id))
        if isinstance(traits := p.get("traits"), Mapping) and traits:
            data = {"$token": token, **_renamed(p, **{"$distinct_id": "user_id", "$ip": "ip"})}
            data["$set"] = profile_set(traits)
            requests.append(_form(dest, "/engage", data, m.message_id))
    return requests


def _build_group(dest: Mixpanel, mapped: Sequence[Mapped]) -> list[OutRequest]:
    requests = []
    for m in mapped:
        require(m.payload, "group_id", "traits")
        traits = m.payload["traits"]
        key = m.payload.get("group_key") or "$group_id"
        group_id = traits.get(key) or m.payload.get("group_id")  # the classic integration's rule
        data = {"$token": dest.settings.project_token, "$group_key": key, "$group_id": group_id}
        data["$set"] = traits
        requests.append(_form(dest, "/groups", data, m.message_id))
    return requests


def _build_alias(dest: Mixpanel, mapped: Sequence[Mapped]) -> list[OutRequest]:
    requests = []
    for m in mapped:
        properties = _renamed(m.payload, distinct_id="distinct_id", alias="alias")
        properties.update(token=dest.settings.project_token, **_source(dest.settings))
        data = {"event": "$create_alias", "properties": properties}
        requests.append(_form(dest, "/track", data, m.message_id))
    return requests


class Mixpanel(Destination):
    id = "mixpanel"
    name = "Mixpanel (Actions)"
    aliases = ("Mixpanel",)
    segment_types = ("actions-mixpanel", "615c7438d93d9b61b1e9e192")
    segment_settings: ClassVar[Mapping[str, str]] = {
        "projectToken": "project_token", "apiSecret": "api_secret", "apiRegion": "api_region",
        "sourceName": "source_name", "strictMode": "strict_mode",
    }  # fmt: skip
    Settings = MixpanelSettings
    secret_settings = frozenset({"project_token", "api_secret"})
    settings: MixpanelSettings
    default_endpoint = REGION_HOSTS["US"]
    actions: ClassVar[Mapping[str, Action]] = {
        "trackEvent": Action("trackEvent", "Track Event", _build_track, MAX_EVENTS, MAX_BYTES),
        "identifyUser": Action("identifyUser", "Identify User", _build_identify),
        "groupIdentifyUser": Action("groupIdentifyUser", "Group Identify User", _build_group),
        "alias": Action("alias", "Alias", _build_alias),
    }
    presets = (
        Preset("Track Calls", "trackEvent", 'type = "track"', TRACK_MAPPING),
        Preset("Page Calls", "trackEvent", 'type = "page"', {**TRACK_MAPPING, **VIEWED}),
        Preset("Screen Calls", "trackEvent", 'type = "screen"', {**TRACK_MAPPING, **VIEWED}),
        Preset("Identify Calls", "identifyUser", 'type = "identify"', IDENTIFY_MAPPING),
        Preset("Group Calls", "groupIdentifyUser", 'type = "group"', GROUP_MAPPING),
    )

    @property
    def endpoint(self) -> str:
        region = self.settings.api_region[:2]
        return (self.settings.endpoint or REGION_HOSTS[region]).rstrip("/")

    def interpret(self, request: OutRequest, response: Response) -> Outcome:
        """Strict /import names the events it refused and imports the rest; /track, /engage
        and /groups answer 200 with `0` when they refuse the data."""
        if response.status == 413:
            return Outcome(Verdict.RETRY, "payload_too_large")
        is_import = "/import?" in request.url
        if response.status == 200 and not is_import and response.body.strip() == b"0":
            return Outcome(Verdict.PARK, "Mixpanel refused the data (answered 0)")
        if response.status != 400 or not is_import:
            return default_outcome(response)
        try:
            body = msgspec.json.decode(response.body)
            records = [r for r in body.get("failed_records") or [] if isinstance(r, dict)]
        except (msgspec.DecodeError, AttributeError):
            return default_outcome(response)
        ids = request.message_ids
        failures = {
            ids[r["index"]]: EventFailure(Verdict.PARK, f"{r.get('field')}: {r.get('message')}")
            for r in records
            if isinstance(r.get("index"), int) and 0 <= r["index"] < len(ids)
        }
        if not failures:
            return default_outcome(response)
        if len(failures) == len(ids):
            return Outcome(Verdict.PARK, "every event failed validation", failures=failures)
        reason = f"{len(failures)} of {len(ids)} events failed validation, the others were imported"
        return Outcome(Verdict.DELIVERED, reason, failures=failures)
