"""What a destination is: data about itself, its actions, and how mapped events become requests.

A destination declares itself as data (STYLE.md): `id` (stable, used in workspace files),
`name` (the display name the `integrations` object uses, e.g. "Google Analytics 4"), a `Settings`
Struct (with an `endpoint` so tests and proxies can redirect it), its actions and the default
mappings (presets) Segment's Actions destination of the same name ships. The delivery engine does
routing, mapping, batching, retries and parking; a destination only turns mapped payloads into
HTTP requests and, where its API reports per-event errors, says which events failed.

Every destination is Actions-style. A classic destination (the Webhook) is one action whose
default mapping is the whole event (`{"@path": "$"}`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

import msgspec

from sluice.errors import SluiceError

DEFAULT_TIMEOUT_S = 10.0


class DestinationSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every destination's settings; `endpoint` overrides the API's base URL."""

    endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class Mapped:
    """One event after its mapping: what the action's request builder works from."""

    message_id: str
    payload: Any  # the mapping's output (usually a dict)
    event: Mapping[str, Any]  # the (filtered) event it came from


@dataclass(frozen=True, slots=True)
class OutRequest:
    """One HTTP request to a destination, and which events it carries (in order)."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    message_ids: Sequence[str]


@dataclass(frozen=True, slots=True)
class Response:
    """What the destination answered (status 0 = no answer: timeout or connection error)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    error: str | None = None  # timeout / connection error text when status is 0
    # The request that was really made, when code the destination runs made it (`runs_code`):
    # what trace and parked entries record instead of the request the engine built.
    sent: OutRequest | None = None


class InvalidPayload(SluiceError, ValueError):
    """A mapped event this destination cannot send (missing or malformed fields): parked."""


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PARK = "park"


@dataclass(frozen=True, slots=True)
class EventFailure:
    """Why one event of a request failed, when the destination says so per event."""

    verdict: Verdict  # RETRY or PARK
    reason: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a request went: a verdict for the whole request, or per event for the failures.

    `failures` lists only events that failed; events of the request not in it were delivered
    (when `verdict` is DELIVERED) or share the request's verdict.
    """

    verdict: Verdict
    reason: str
    retry_after_s: float | None = None
    failures: Mapping[str, EventFailure] = field(default_factory=dict)


EGRESS_DENIED = "egress_denied"  # delivery/egress.py: a request the egress policy refused

# Statuses the Actions framework retries (core/errors.ts), plus 0 for timeouts/connection errors.
RETRYABLE_STATUSES = frozenset({0, 408, 423, 429, 500, 598, 599, *range(502, 512)})


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def default_outcome(response: Response) -> Outcome:
    """2xx delivered; 408, 423, 429, 5xx, timeouts and connection errors retry; other 4xx park."""
    status = response.status
    if 200 <= status < 300:
        return Outcome(Verdict.DELIVERED, f"HTTP {status}")
    reason = f"HTTP {status}" if status else (response.error or "no response")
    if status == 0 and EGRESS_DENIED in reason:  # a policy, not an outage: retrying won't help
        return Outcome(Verdict.PARK, reason)
    if status in RETRYABLE_STATUSES or status >= 500:
        return Outcome(Verdict.RETRY, reason, retry_after_seconds(response.headers))
    return Outcome(Verdict.PARK, reason)


def require(payload: Mapping[str, Any], *fields: str) -> None:
    """Refuse a mapped payload missing fields the action needs, as Segment's schema check does
    (ajv's messages, one per missing field in the definition's order, joined)."""
    missing = [name for name in fields if payload.get(name) is None]
    if missing:
        raise InvalidPayload(
            " ".join(f"The root value is missing the required field '{n}'." for n in missing)
        )


BuildRequests = Callable[[Any, Sequence[Mapped]], list[OutRequest]]


@dataclass(frozen=True, slots=True)
class Action:
    """One thing a destination can do with an event (e.g. Amplitude "Log Event").

    `build(destination, mapped)` turns a batch of mapped events (at most `max_batch` of them,
    at most `max_batch_bytes` of mapped JSON) into requests; it raises `InvalidPayload` when a
    mapped event cannot be sent at all. `max_batch` 1 means one request per event.
    """

    id: str
    title: str
    build: BuildRequests
    max_batch: int = 1
    max_batch_bytes: int = 500_000


@dataclass(frozen=True, slots=True)
class Preset:
    """A default mapping, as Segment's Actions destination of the same name ships it."""

    name: str
    action: str
    trigger: str  # FQL subset, e.g. 'type = "track"'
    mapping: Mapping[str, Any]


class Destination:
    """Base class; subclasses set the class attributes and may override `interpret`."""

    id: ClassVar[str]
    name: ClassVar[str]
    Settings: ClassVar[type[DestinationSettings]]
    actions: ClassVar[Mapping[str, Action]]
    presets: ClassVar[Sequence[Preset]]
    # Requests built for one event are alternatives (the classic Webhook's URLs): the event is
    # delivered once any of them is, and parked only when all of them fail.
    any_request_delivers: ClassVar[bool] = False
    # Other names the `integrations` object may use for this destination (e.g. the classic name).
    aliases: ClassVar[Sequence[str]] = ()
    # Segment's identifiers of the same destination (its definition's slug, `actions-amplitude`,
    # and its catalogue metadata id): a destination document may name its type by any of these,
    # by `name` or by an alias (registry.py), so a workspace written in Segment's terms applies.
    segment_types: ClassVar[Sequence[str]] = ()
    # Segment's setting names for this destination's settings (`apiKey` -> `api_key`): either
    # spelling is accepted, not both at once (`sluice_settings`).
    segment_settings: ClassVar[Mapping[str, str]] = {}
    default_endpoint: ClassVar[str] = ""
    timeout_s: ClassVar[float] = DEFAULT_TIMEOUT_S
    # Settings that are credentials: their values are redacted wherever they appear in the
    # requests and responses Sluice keeps (parked events, the retry set, `sluice trace`; see
    # delivery/exchange.py). A list or mapping setting has each of its string values redacted.
    secret_settings: ClassVar[frozenset[str]] = frozenset()
    # Mapping fields that are credentials, per action (Slack's webhook `url`, whose path is the
    # secret): the UI's request preview redacts their values as it does `secret_settings`.
    secret_fields: ClassVar[Mapping[str, frozenset[str]]] = {}
    # Requests are made by code the destination runs (Segment's, bridge/destination.py): the
    # engine calls `perform` for each request it built instead of sending it.
    runs_code: ClassVar[bool] = False
    # The destination escapes its URLs itself, as Segment's code and node-fetch do (GA4 puts
    # settings raw into the query): they are sent as built, not re-quoted by yarl.
    urls_as_built: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        settings = getattr(cls, "Settings", None)
        fields = getattr(settings, "__struct_fields__", ())
        unknown = sorted(cls.secret_settings - set(fields))
        if settings is not None and unknown:
            # A misspelt name would leave the real setting unredacted: refuse at import.
            raise TypeError(f"{cls.__name__}.secret_settings: no such setting: {unknown}")
        renamed = sorted(set(cls.segment_settings.values()) - set(fields))
        if settings is not None and renamed:
            raise TypeError(f"{cls.__name__}.segment_settings: no such setting: {renamed}")

    def __init__(self, settings: DestinationSettings) -> None:
        self.settings = settings

    @functools.cached_property
    def secret_values(self) -> tuple[str, ...]:
        """The non-empty string values of `secret_settings`, for redaction."""
        values: list[str] = []
        for name in sorted(self.secret_settings):
            value = getattr(self.settings, name, None)
            if isinstance(value, Mapping):
                value = list(value.values())
            items = value if isinstance(value, list | tuple) else [value]
            values.extend(v for v in items if isinstance(v, str) and v)
        return tuple(values)

    @classmethod
    def parse_settings(cls, raw: Mapping[str, Any]) -> DestinationSettings:
        """Settings from the workspace; raises msgspec.ValidationError naming the field as the
        document spells it (Segment's name, when that is the one given)."""
        settings = cls.sluice_settings(raw)
        try:
            return msgspec.convert(settings, cls.Settings)
        except msgspec.ValidationError as exc:
            text = str(exc)
            for segment_name, ours in cls.segment_settings.items():
                if segment_name in raw and f"`$.{ours}" in text:
                    text = text.replace(f"`$.{ours}", f"`$.{segment_name}")
                    raise msgspec.ValidationError(text) from None
            raise

    @classmethod
    def sluice_settings(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        """`raw` with Segment's setting names (`segment_settings`) renamed to Sluice's; a
        setting given under both names is refused, naming the two."""
        settings = dict(raw)
        for segment_name, ours in cls.segment_settings.items():
            if segment_name not in settings or segment_name == ours:
                continue
            if ours in settings:
                raise msgspec.ValidationError(
                    f"`{segment_name}` (Segment's name) and `{ours}` are the same setting:"
                    f" give one - at `$.{segment_name}`"
                )
            settings[ours] = settings.pop(segment_name)
        return settings

    @property
    def endpoint(self) -> str:
        """The base URL requests go to: the `endpoint` setting, or the API's own."""
        return (self.settings.endpoint or self.default_endpoint).rstrip("/")

    def build(self, action_id: str, mapped: Sequence[Mapped]) -> list[OutRequest]:
        return self.actions[action_id].build(self, mapped)

    def interpret(self, request: OutRequest, response: Response) -> Outcome:
        """How the request went; override where the API reports errors per event."""
        return default_outcome(response)

    async def perform(self, session: Any, request: OutRequest, timeout_s: float) -> Response:
        """Carry out a request of a destination that `runs_code` (others' are sent as built)."""
        raise NotImplementedError(f"{self.id} sends its requests as built")
