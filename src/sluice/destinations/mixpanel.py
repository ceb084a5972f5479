"""Mixpanel, sending what Segment's "Mixpanel (Actions)" destination sends.

A port of `@segment/action-destinations` 3.497.0, `destinations/mixpanel/`: `index.ts`
(settings, presets), the six actions' `index.ts`, `trackEvent/functions.ts`,
`mixpanel-properties.ts` and `common/utils.ts`; checked request by request against that code
by the differential suite (tests/bridge/conformance/native.py). Payloads are first cleaned and
validated as Segment's runtime does (mixpanel_schema.py, with the fields of
mixpanel_fields.py); events are built by mixpanel_events.py.

- Track Event / Track Purchase: `POST /import?strict=1`, a JSON array of `{event, properties}`,
  HTTP Basic with the API secret as user name. Mappings with `enable_batching: true` send their
  events together (`batch_size` per request), others one per request. Track Purchase adds a
  "Product Purchased" event per product.
- Identify User: `POST /track` form `data={"event": "$identify", ...}` when there is an
  anonymous id, then `POST /engage` form `data={"$token", "$distinct_id", "$ip", "$set"}`.
- Group Identify User: `POST /groups` form `data={"$token", "$group_key", "$group_id", "$set"}`.
- Alias: `POST /track` form `data={"event": "$create_alias", ...}` (no preset, as in Segment).
- Increment Properties: `POST /engage` form `data={"$token", "$distinct_id", "$ip", "$add"}`
  (no preset, as in Segment).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import quote_plus

import msgspec

from sluice.destinations.base import (
    Action,
    Destination,
    DestinationSettings,
    EventFailure,
    InvalidPayload,
    Mapped,
    Outcome,
    OutRequest,
    Preset,
    Response,
    Verdict,
    default_outcome,
)
from sluice.destinations.mixpanel_events import (
    browser,
    defined,
    purchase_events,
    track_events,
    truthy,
)
from sluice.destinations.mixpanel_fields import (
    ALIAS_FIELDS,
    GROUP_FIELDS,
    IDENTIFY_FIELDS,
    PURCHASE_FIELDS,
    SCHEMAS,
    TRACK_FIELDS,
)
from sluice.destinations.mixpanel_schema import GONE, clean, defaults, js_to_number
from sluice.mapping.directives import js_string

__all__ = ["ALIAS_MAPPING", "Mixpanel", "MixpanelSettings", "browser", "profile_set"]

USER_AGENT = "Segment (Actions)"
REGION_HOSTS = {
    "US": "https://api.mixpanel.com",
    "EU": "https://api-eu.mixpanel.com",
    "IN": "https://api-in.mixpanel.com",
}
# The GDPR/CCPA API (v3) is on the app's hosts, not the ingestion ones.
DELETION_HOSTS = {
    "US": "https://mixpanel.com",
    "EU": "https://eu.mixpanel.com",
    "IN": "https://in.mixpanel.com",
}
DELETION_PATH = "/api/app/data-deletions/v3.0/"
MAX_DELETION_IDS = 2000  # distinct ids per deletion request
FORM_HEADERS = {
    "content-type": "application/x-www-form-urlencoded;charset=UTF-8",
    "user-agent": USER_AGENT,
}
MAX_EVENTS = 2000  # Mixpanel's limit per /import request
MAX_BYTES = 2_000_000  # Mixpanel now takes 10 MB; 2 MB keeps requests quick to retry
MAX_INCREMENTS = 20
_encode = msgspec.json.encode


class MixpanelSettings(DestinationSettings, kw_only=True, forbid_unknown_fields=True):
    project_token: str
    api_secret: str = ""  # Segment: "Secret Key"; without it /import authenticates by token
    # Segment's "Data Residency" values carry a flag ("EU 🇪🇺"); both spellings are accepted.
    api_region: Literal["US", "EU", "IN", "US 🇺🇸", "EU 🇪🇺", "IN 🇮🇳"] = "US"
    source_name: str | None = None  # sent as `segment_source_name` when set
    strict_mode: Literal["1", "0"] = "1"
    # The GDPR OAuth token of a project owner or admin (Mixpanel: Profile & Preferences, Data &
    # Privacy): only deletions use it (docs/privacy-targets.md).
    gdpr_api_token: str = ""

    def __repr__(self) -> str:
        return f"MixpanelSettings(api_region={self.api_region!r}, endpoint={self.endpoint!r}, ***)"


TRACK_MAPPING = defaults(TRACK_FIELDS)
PURCHASE_MAPPING = defaults(PURCHASE_FIELDS)
VIEWED_MAPPING = {**TRACK_MAPPING, "event": {"@template": "Viewed {{name}}"}}
IDENTIFY_MAPPING = defaults(IDENTIFY_FIELDS)
GROUP_MAPPING = defaults(GROUP_FIELDS)
ALIAS_MAPPING = defaults(ALIAS_FIELDS)


@dataclass(frozen=True, slots=True)
class ImportRequest(OutRequest):
    """An /import request; `owners[i]` is the index in `message_ids` of the event whose
    payload made Mixpanel event `i` (a Track Purchase payload makes several)."""

    owners: tuple[int, ...] = ()


def _payload(m: Mapped, action: str, *, batch: bool = False) -> dict[str, Any]:
    """The payload Segment's `perform` (or `performBatch`) would get for this mapping output."""
    return clean(m.payload, SCHEMAS[action], batch=batch)


def _import_builder(
    action: str, to_events: Callable[[Mapping[str, Any], str | None], list[dict[str, Any]]]
) -> Callable[[Mixpanel, Sequence[Mapped]], list[OutRequest]]:
    def build(dest: Mixpanel, mapped: Sequence[Mapped]) -> list[OutRequest]:
        """Batched payloads (`enable_batching: true`) go `batch_size` to a request, as
        Segment's `performBatch`; the others one per request, as its `perform`."""
        source = dest.settings.source_name
        batches: dict[int, list[tuple[Mapped, list[dict[str, Any]]]]] = {}
        groups: list[list[tuple[Mapped, list[dict[str, Any]]]]] = []
        for m in mapped:
            batch = isinstance(m.payload, dict) and m.payload.get("enable_batching") is True
            p = _payload(m, action, batch=batch)
            item = (m, to_events(p, source))
            if not batch:
                groups.append([item])
                continue
            size = p.get("batch_size")
            limit = max(1, int(size)) if isinstance(size, int | float) else MAX_EVENTS
            batches.setdefault(limit, []).append(item)
        batched = [group for limit, items in batches.items() for group in _split(items, limit)]
        return [_import_request(dest, group) for group in [*batched, *groups]]

    return build


def _split(
    items: list[tuple[Mapped, list[dict[str, Any]]]], limit: int
) -> list[list[tuple[Mapped, list[dict[str, Any]]]]]:
    """At most `limit` payloads and (unless one payload makes more) MAX_EVENTS events each."""
    groups: list[list[tuple[Mapped, list[dict[str, Any]]]]] = [[]]
    count = 0
    for item in items:
        if groups[-1] and (len(groups[-1]) >= limit or count + len(item[1]) > MAX_EVENTS):
            groups.append([])
            count = 0
        groups[-1].append(item)
        count += len(item[1])
    return groups


def _import_request(
    dest: Mixpanel, group: list[tuple[Mapped, list[dict[str, Any]]]]
) -> ImportRequest:
    s = dest.settings
    credential = s.api_secret or s.project_token
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "authorization": "Basic " + base64.b64encode(f"{credential}:".encode()).decode(),
    }
    events = [event for _, made in group for event in made]
    owners = tuple(i for i, (_, made) in enumerate(group) for _ in made)
    url = f"{dest.endpoint}/import?strict={s.strict_mode}"
    ids = [m.message_id for m, _ in group]
    return ImportRequest("POST", url, headers, _encode(events), ids, owners)


def _form(dest: Mixpanel, path: str, data: dict[str, Any], message_id: str) -> OutRequest:
    """`new URLSearchParams({data: JSON.stringify(data)})`: `*` kept, `~` escaped."""
    text = quote_plus(_encode(defined(data)).decode(), safe="*").replace("~", "%7E")
    return OutRequest("POST", dest.endpoint + path, FORM_HEADERS, f"data={text}".encode(),
                      [message_id])  # fmt: skip


def _source(settings: MixpanelSettings) -> Any:
    return GONE if settings.source_name is None else settings.source_name


def _nullish(values: Mapping[str, Any], *keys: str) -> Any:
    """`values[a] ?? values[b] ?? ...` (undefined when the last is missing)."""
    for key in keys[:-1]:
        if values.get(key) is not None:
            return values[key]
    return values.get(keys[-1], GONE)


_PROFILE_OMIT = frozenset({"created", "createdAt", "created_at", "email", "firstName",
                           "lastName", "name", "username", "phone"})  # fmt: skip


def profile_set(traits: Mapping[str, Any]) -> dict[str, Any]:
    """Identify's `$set`: the traits but Segment's reserved ones, then those under Mixpanel's
    names (`firstName` -> `$first_name`), `$name` being `name` ?? "first last"."""
    first, last = traits.get("firstName", GONE), traits.get("lastName", GONE)
    name = traits.get("name")
    if name is None:
        name = f"{js_string(first)} {js_string(last)}" if truthy(first) and truthy(last) else GONE
    profile: dict[str, Any] = defined({
        **{k: v for k, v in traits.items() if k not in _PROFILE_OMIT},
        "$created": _nullish(traits, "created", "createdAt", "created_at"),
        "$email": traits.get("email", GONE),
        "$first_name": first,
        "$last_name": last,
        "$name": name,
        "$username": traits.get("username", GONE),
        "$phone": traits.get("phone", GONE),
    })  # fmt: skip
    return profile


def _require_token(dest: Mixpanel) -> str:
    if not dest.settings.project_token:
        raise InvalidPayload("IntegrationError: Missing project token")
    return dest.settings.project_token


def _build_identify(dest: Mixpanel, mapped: Sequence[Mapped]) -> list[OutRequest]:
    """`$identify` links the anonymous id to the user id; `/engage` sets the profile."""
    requests = []
    for m in mapped:
        p = _payload(m, "identifyUser")
        token = _require_token(dest)
        if truthy(p.get("anonymous_id")):
            properties = {
                "$identified_id": p.get("user_id", GONE),
                "$anon_id": p["anonymous_id"],
                "token": token,
                "segment_source_name": _source(dest.settings),
            }
            data = {"event": "$identify", "properties": properties}
            requests.append(_form(dest, "/track", data, m.message_id))
        traits = p.get("traits")
        if isinstance(traits, dict) and traits:
            data = {"$token": token, "$distinct_id": _nullish(p, "user_id", "anonymous_id"),
                    "$ip": p.get("ip", GONE), "$set": profile_set(traits)}  # fmt: skip
            requests.append(_form(dest, "/engage", data, m.message_id))
    return requests


def _build_group(dest: Mixpanel, mapped: Sequence[Mapped]) -> list[OutRequest]:
    """A trait named like the group key gives the group id; `name` is sent as `$name`."""
    requests = []
    for m in mapped:
        p = _payload(m, "groupIdentifyUser")
        key = p["group_key"] if truthy(p.get("group_key")) else "$group_id"
        traits: Any = p.get("traits")
        if not truthy(traits):
            raise InvalidPayload('IntegrationError: "traits" is a required field')
        group_id = traits[key] if truthy(traits.get(key)) else p.get("group_id", GONE)
        omitted = ("created", "createdAt", "created_at", "name")
        group_set = {
            **{k: v for k, v in traits.items() if k not in omitted},
            "$name": traits.get("name", GONE),
            "$created": _nullish(traits, "created", "createdAt", "created_at"),
        }
        data = {"$token": dest.settings.project_token, "$group_key": key, "$group_id": group_id,
                "$set": group_set}  # fmt: skip
        requests.append(_form(dest, "/groups", data, m.message_id))
    return requests


def _build_alias(dest: Mixpanel, mapped: Sequence[Mapped]) -> list[OutRequest]:
    requests = []
    for m in mapped:
        p = _payload(m, "alias")
        properties = {"distinct_id": p.get("distinct_id", GONE), "alias": p.get("alias", GONE),
                      "token": dest.settings.project_token,
                      "segment_source_name": _source(dest.settings)}  # fmt: skip
        data = {"event": "$create_alias", "properties": properties}
        requests.append(_form(dest, "/track", data, m.message_id))
    return requests


def _build_increment(dest: Mixpanel, mapped: Sequence[Mapped]) -> list[OutRequest]:
    """`$add` of each numeric value (numbers, or text that is one); other values are skipped,
    text that is not a number refuses the event, as Segment's code does."""
    requests = []
    for m in mapped:
        p = _payload(m, "incrementProperties")
        token = _require_token(dest)
        increment = p.get("increment")
        if not isinstance(increment, dict) or not increment:
            continue
        if len(increment) > MAX_INCREMENTS:
            raise InvalidPayload(
                "PayloadValidationError: Exceeded maximum of 20 properties for increment call"
            )
        add: dict[str, Any] = {}
        for key, value in increment.items():
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                continue
            number = js_to_number(value) if isinstance(value, str) else value
            if math.isnan(number):
                raise InvalidPayload(f'IntegrationError: The key "{key}" was not numeric')
            add[key] = number
        data = {"$token": token, "$distinct_id": _nullish(p, "user_id", "anonymous_id"),
                "$ip": p.get("ip", GONE), "$add": add}  # fmt: skip
        requests.append(_form(dest, "/engage", data, m.message_id))
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
    secret_settings = frozenset({"project_token", "api_secret", "gdpr_api_token"})
    settings: MixpanelSettings
    default_endpoint = REGION_HOSTS["US"]
    # fmt: off
    actions: ClassVar[Mapping[str, Action]] = {
        "trackEvent": Action("trackEvent", "Track Event",
                             _import_builder("trackEvent", track_events), MAX_EVENTS, MAX_BYTES),
        "identifyUser": Action("identifyUser", "Identify User", _build_identify),
        "groupIdentifyUser": Action("groupIdentifyUser", "Group Identify User", _build_group),
        "alias": Action("alias", "Alias", _build_alias),
        "trackPurchase": Action("trackPurchase", "Track Purchase",
                                _import_builder("trackPurchase", purchase_events), MAX_EVENTS,
                                MAX_BYTES),
        "incrementProperties": Action("incrementProperties", "Increment Properties",
                                      _build_increment),
    }
    presets = (
        Preset("Track Calls", "trackEvent", 'type = "track" and event != "Order Completed"',
               TRACK_MAPPING),
        Preset("Order Completed Calls", "trackPurchase",
               'type = "track" and event = "Order Completed"', PURCHASE_MAPPING),
        Preset("Page Calls", "trackEvent", 'type = "page"', VIEWED_MAPPING),
        Preset("Screen Calls", "trackEvent", 'type = "screen"', VIEWED_MAPPING),
        Preset("Identify Calls", "identifyUser", 'type = "identify"', IDENTIFY_MAPPING),
        Preset("Group Calls", "groupIdentifyUser", 'type = "group"', GROUP_MAPPING),
    )
    # fmt: on

    @property
    def endpoint(self) -> str:
        region = self.settings.api_region[:2]
        return (self.settings.endpoint or REGION_HOSTS[region]).rstrip("/")

    def deletion_requests(self, distinct_ids: Sequence[str]) -> list[OutRequest]:
        """Mixpanel's GDPR API: `POST /api/app/data-deletions/v3.0/?token=<project token>`,
        `Authorization: Bearer <GDPR OAuth token>`, JSON `{distinct_ids, compliance_type:
        "GDPR"}`, 2,000 ids a request. Under `endpoint` when set."""
        region = self.settings.api_region[:2]
        base = (self.settings.endpoint or DELETION_HOSTS[region]).rstrip("/")
        url = f"{base}{DELETION_PATH}?token={quote_plus(self.settings.project_token)}"
        headers = {
            "authorization": f"Bearer {self.settings.gdpr_api_token}",
            "content-type": "application/json",
        }
        return [
            OutRequest("POST", url, headers, _encode(
                {"distinct_ids": list(distinct_ids[i : i + MAX_DELETION_IDS]),
                 "compliance_type": "GDPR"}
            ), [])
            for i in range(0, len(distinct_ids), MAX_DELETION_IDS)
        ]  # fmt: skip

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
        owners = request.owners if isinstance(request, ImportRequest) else ()
        owners = owners or tuple(range(len(ids)))
        failures = {
            ids[owners[r["index"]]]: EventFailure(
                Verdict.PARK, f"{r.get('field')}: {r.get('message')}"
            )
            for r in records
            if isinstance(r.get("index"), int) and 0 <= r["index"] < len(owners)
        }
        if not failures:
            return default_outcome(response)
        if len(failures) == len(ids):
            return Outcome(Verdict.PARK, "every event failed validation", failures=failures)
        reason = f"{len(failures)} of {len(ids)} events failed validation, the others were imported"
        return Outcome(Verdict.DELIVERED, reason, failures=failures)
