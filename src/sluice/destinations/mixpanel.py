"""Mixpanel, sending what Segment's "Mixpanel (Actions)" destination sends.

A port of `@segment/action-destinations` 3.497.0, `destinations/mixpanel/`: `index.ts`
(settings, presets), the six actions' `index.ts`, `trackEvent/functions.ts`,
`mixpanel-properties.ts` and `common/utils.ts`; checked request by request against that code
by the differential suite (tests/bridge/conformance/native.py). Payloads are first cleaned and
validated as Segment's runtime does (mixpanel_schema.py, with the fields of
mixpanel_fields.py); events are built by mixpanel_events.py, requests by mixpanel_requests.py.

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

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal
from urllib.parse import quote_plus

import msgspec

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
)
from sluice.destinations.mixpanel_events import browser, purchase_events, track_events
from sluice.destinations.mixpanel_fields import (
    ALIAS_FIELDS,
    GROUP_FIELDS,
    IDENTIFY_FIELDS,
    PURCHASE_FIELDS,
    TRACK_FIELDS,
)
from sluice.destinations.mixpanel_requests import (
    MAX_EVENTS,
    ImportRequest,
    build_alias,
    build_group,
    build_identify,
    build_increment,
    import_builder,
)
from sluice.destinations.mixpanel_schema import defaults

__all__ = ["ALIAS_MAPPING", "Mixpanel", "MixpanelSettings", "browser"]

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
MAX_BYTES = 2_000_000  # Mixpanel now takes 10 MB; 2 MB keeps requests quick to retry
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
                             import_builder("trackEvent", track_events), MAX_EVENTS, MAX_BYTES),
        "identifyUser": Action("identifyUser", "Identify User", build_identify),
        "groupIdentifyUser": Action("groupIdentifyUser", "Group Identify User", build_group),
        "alias": Action("alias", "Alias", build_alias),
        "trackPurchase": Action("trackPurchase", "Track Purchase",
                                import_builder("trackPurchase", purchase_events), MAX_EVENTS,
                                MAX_BYTES),
        "incrementProperties": Action("incrementProperties", "Increment Properties",
                                      build_increment),
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
