"""A `segment:<slug>` destination: Segment's own code, run by the sidecar, behind the interface
every native destination has (destinations/base.py), so routing, filters, triggers, batching,
retries, the circuit breaker, parking and `sluice trace` are the delivery engine's as for any
other destination.

What differs is who makes the requests. A native destination turns mapped events into requests
that the engine sends; here the engine hands an *execute* (one event, or a batch for an action
with `performBatch`) to the sidecar, which runs Segment's mapping, validation and `perform`, and
every HTTP request that code makes comes back through `perform` below to the engine's own
client (same session, timeout, `delivery.base_url`). The engine sees the execute as one request
whose outcome is Segment's verdict per event (bridge/outcomes.py), and records the last real
request and response of it for trace and parked entries.

Mappings are not evaluated in Python: the event goes to Segment's code as it is, with the
subscription (`subscribe`, `partnerAction`, `mapping`) that applies. Python still evaluates the
trigger, so routing stays a pure function `sluice trace` can replay.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp
import msgspec

from sluice.bridge import location
from sluice.bridge.catalog import ActionInfo, CatalogEntry
from sluice.bridge.checks import secret_names, settings_error
from sluice.bridge.errors import SidecarDied
from sluice.bridge.outcomes import outcome_of
from sluice.bridge.proxy import FetchHandler
from sluice.bridge.results import ExecuteResult, TokenRefresh
from sluice.bridge.sidecar import Sidecar
from sluice.delivery.sender import send
from sluice.destinations.base import (
    EGRESS_DENIED,
    Action,
    Destination,
    DestinationSettings,
    Mapped,
    Outcome,
    OutRequest,
    Preset,
    Response,
    Verdict,
)
from sluice.store.base_workers import OAuthTokens

EXECUTE_METHOD = "EXECUTE"  # the engine's request for one execute (never sent over HTTP)
DEFAULT_BATCH = 100  # events per execute of an action with performBatch (Segment's default)
# A hung perform is cut after this many request timeouts (an execute may make a few requests).
EXECUTE_TIMEOUTS = 3
# Of a response to Segment's code: it reads the whole answer (trace keeps less, as for any).
BRIDGED_RESPONSE_BYTES = 8 * 1024 * 1024


class BridgedSettings(DestinationSettings):
    """The destination's settings under Segment's own names (checked against its definition
    when the destination is compiled: `settings_error`)."""

    values: dict[str, Any] = msgspec.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Subscription:
    """One mapping of the destination as Segment's code takes it."""

    action: str
    subscribe: str
    mapping: Mapping[str, Any]
    batch_size: int = 1  # > 1: Segment's `onBatch` with up to this many events

    def document(self) -> dict[str, Any]:
        return {"subscribe": self.subscribe, "partnerAction": self.action, "mapping": self.mapping}


@dataclass(frozen=True, slots=True)
class BridgedResponse(Response):
    """An execute's answer: its last real exchange, and Segment's verdict for its events."""

    outcome: Outcome | None = None


class BridgedDestination(Destination):
    """Base of the classes `bridged_class` makes, one per catalogue entry."""

    entry: ClassVar[CatalogEntry]
    Settings = BridgedSettings
    runs_code: ClassVar[bool] = True

    def __init__(self, settings: DestinationSettings) -> None:
        super().__init__(settings)
        self.subscriptions: list[Subscription] = []
        self.base_url: str | None = None
        self._tokens: tuple[OAuthTokens, str] | None = None  # (store, destination id)
        self._oauth: dict[str, str] | None = None  # refreshed tokens, newer than the settings'
        self._told: Sidecar | None = None  # the sidecar given this destination's secrets

    def keep_tokens(self, store: OAuthTokens, destination_id: str) -> None:
        """Where tokens Segment's code refreshes are kept (the worker's store), and read from
        at the first execute: a restarted worker goes on with the newest token."""
        self._tokens = (store, destination_id)

    @classmethod
    def parse_settings(cls, raw: Mapping[str, Any]) -> DestinationSettings:
        problem = settings_error(cls.entry, raw)
        if problem is not None:
            path, message = problem
            raise msgspec.ValidationError(f"{message} - at `$.{path}`")
        return BridgedSettings(values=dict(raw))

    @property
    def values(self) -> dict[str, Any]:
        assert isinstance(self.settings, BridgedSettings)
        return self.settings.values

    @functools.cached_property
    def secret_values(self) -> tuple[str, ...]:
        names = secret_names(self.entry)
        found: list[str] = []
        for name, value in self.values.items():
            if name in names and isinstance(value, str) and value:
                found.append(value)
            elif name == "oauth" and isinstance(value, Mapping):
                found.extend(v for k, v in value.items() if isinstance(v, str) and v and
                             any(p in k.lower() for p in ("token", "secret")))  # fmt: skip
        return tuple(found)

    def subscribe(self, action: str, trigger: str, mapping: Mapping[str, Any]) -> int:
        """Add a subscription; returns its index (what mapped events carry)."""
        size = batch_size_of(self.entry.actions[action], mapping)
        self.subscriptions.append(Subscription(action, trigger, mapping, size))
        return len(self.subscriptions) - 1

    # --- the engine's side ----------------------------------------------------------------------
    def build(self, action_id: str, mapped: Sequence[Mapped]) -> list[OutRequest]:
        """Executes of `mapped`: per subscription, a batch of up to its batch size, or one per
        event when it does not batch (events keep their order)."""
        groups: dict[int, list[Mapped]] = {}
        for m in mapped:
            groups.setdefault(int(m.payload["subscription"]), []).append(m)
        requests = []
        url = f"segment:{self.entry.slug}/{action_id}"
        for index, group in groups.items():
            size = self.subscriptions[index].batch_size
            for start in range(0, len(group), size):
                piece = group[start : start + size]
                body = msgspec.json.encode(
                    {"subscription": index, "events": [m.payload["event"] for m in piece]}
                )
                ids = [m.message_id for m in piece]
                requests.append(OutRequest(EXECUTE_METHOD, url, {}, body, ids))
        return requests

    async def perform(
        self, session: aiohttp.ClientSession, request: OutRequest, timeout_s: float
    ) -> Response:
        """Run one execute in the sidecar, its requests sent through `session`."""
        denied: list[str] = []  # requests the egress policy refused: parked, not retried
        fetch = self.fetcher(session, timeout_s, request.message_ids, denied)
        try:
            result = await self.execute(location.sidecar(), request, fetch, timeout_s)
        except (SidecarDied, TimeoutError) as exc:
            reason = f"bridge: {exc}" if str(exc) else f"bridge: {type(exc).__name__}"
            return BridgedResponse(0, {}, b"", reason, outcome=Outcome(Verdict.RETRY, reason))
        outcome = outcome_of(result, list(request.message_ids), destination=self.entry.slug)
        if denied and outcome.verdict is Verdict.RETRY:
            outcome = Outcome(Verdict.PARK, denied[-1])
        return _response(result, outcome, request.message_ids, self._redirected)

    def fetcher(
        self,
        session: aiohttp.ClientSession,
        timeout_s: float,
        message_ids: Sequence[str] = (),
        denied: list[str] | None = None,
    ) -> FetchHandler:
        """How Segment's code's requests are sent: by the engine's client as made, to
        `delivery.base_url` when set; no answer is a network error on the JS side. Refusals of
        the egress policy are added to `denied`. Delivery and Test connection use it."""

        async def fetch(
            exec_id: str, method: str, url: str, headers: Mapping[str, str], body: bytes
        ) -> tuple[int, Mapping[str, str], bytes]:
            out = OutRequest(method, self._redirected(url), headers, body, message_ids)
            answer = await send(session, out, timeout_s, as_made=True,
                                max_bytes=BRIDGED_RESPONSE_BYTES)  # fmt: skip
            if answer.status == 0:
                error = answer.error or "no response"
                if EGRESS_DENIED in error and denied is not None:
                    denied.append(error)
                raise (TimeoutError if "timeout" in error else ConnectionError)(error)
            return answer.status, answer.headers, answer.body

        return fetch

    async def execute(
        self, sidecar: Sidecar, request: OutRequest, fetch: FetchHandler, timeout_s: float
    ) -> ExecuteResult:
        """One execute the engine built (`build`), run by `sidecar` with requests through
        `fetch`: delivery's client, or the preview's capture (ui/capture.py)."""
        if self._told is not sidecar:  # once per sidecar: what its code prints is redacted
            sidecar.remember_secrets(self.secret_values)
            self._told = sidecar
        work = msgspec.json.decode(request.body)
        subscription = self.subscriptions[work["subscription"]]
        events: list[Mapping[str, Any]] = work["events"]
        batch = subscription.batch_size > 1  # as Segment: onBatch whenever batching is on
        return await sidecar.execute(
            self.entry.slug,
            subscription.document(),
            await self.settings_now(),
            event=None if batch else events[0],
            events=events if batch else None,
            fetch=fetch,
            on_token_refresh=self._refreshed,
            timeout_s=timeout_s * EXECUTE_TIMEOUTS,
        )

    async def delete_user(
        self,
        sidecar: Sidecar,
        session: aiohttp.ClientSession,
        event: Mapping[str, Any],
        timeout_s: float,
    ) -> ExecuteResult:
        """Segment's `onDelete` for one `{userId, anonymousId}` (privacy/targets/bridged.py),
        its requests sent as deliveries' are (`fetcher`: egress policy, `delivery.base_url`)."""
        if self._told is not sidecar:
            sidecar.remember_secrets(self.secret_values)
            self._told = sidecar
        return await sidecar.delete_user(
            self.entry.slug,
            await self.settings_now(),
            event,
            fetch=self.fetcher(session, timeout_s),
            timeout_s=timeout_s * EXECUTE_TIMEOUTS,
        )

    async def settings_now(self) -> dict[str, Any]:
        """The settings, with `oauth` holding the newest tokens (refreshed ones win)."""
        if self._oauth is None and self._tokens is not None:
            store, destination_id = self._tokens
            kept = await asyncio.to_thread(store.oauth_tokens, destination_id)
            self._oauth = {}
            if kept is not None:
                access, refresh = kept
                self._oauth = {
                    "access_token": access,
                    **({"refresh_token": refresh} if refresh else {}),
                }
        if not self._oauth:
            return self.values
        oauth = {**(self.values.get("oauth") or {}), **self._oauth}
        return {**self.values, "oauth": oauth}

    async def _refreshed(self, exec_id: str, tokens: TokenRefresh) -> None:
        """Segment's refresh loop got new tokens: use them from now on, and keep them."""
        fresh = {"access_token": tokens.access_token}
        if tokens.refresh_token:
            fresh["refresh_token"] = tokens.refresh_token
        self._oauth = {**(self._oauth or {}), **fresh}
        if self._told is not None:
            self._told.remember_secrets(fresh.values())
        if self._tokens is not None:
            store, destination_id = self._tokens
            now_ms = int(time.time() * 1000)
            await asyncio.to_thread(
                store.save_oauth_tokens, destination_id, tokens.access_token,
                tokens.refresh_token, now_ms,
            )  # fmt: skip

    def interpret(self, request: OutRequest, response: Response) -> Outcome:
        if isinstance(response, BridgedResponse) and response.outcome is not None:
            return response.outcome
        return Outcome(Verdict.RETRY, response.error or "the bridge gave no verdict")

    def redirected(self, url: str) -> str:
        """Where a request Segment's code makes to `url` is sent (`delivery.base_url` applied):
        for callers outside delivery that send its requests themselves (the UI's Test
        connection)."""
        return self._redirected(url)

    def _redirected(self, url: str) -> str:
        """`delivery.base_url`: the request's scheme and host replaced, its path kept."""
        if not self.base_url:
            return url
        rest = url.split("://", 1)[-1]
        path = rest[rest.find("/") :] if "/" in rest else "/"
        return self.base_url.rstrip("/") + path


def _response(
    result: ExecuteResult,
    outcome: Outcome,
    message_ids: Sequence[str],
    redirected: Callable[[str], str],
) -> BridgedResponse:
    last = result.last_exchange
    if last is None:
        delivered = outcome.verdict is Verdict.DELIVERED
        error = None if delivered else outcome.reason
        return BridgedResponse(200 if delivered else 0, {}, b"", error, outcome=outcome)
    url = redirected(last.url)  # where it went
    sent = OutRequest(last.method, url, last.request_headers, last.request_body, message_ids)
    return BridgedResponse(last.status, last.response_headers, last.response_body, last.error,
                           sent, outcome=outcome)  # fmt: skip


@functools.lru_cache(maxsize=512)
def _class_for(entry_json: bytes) -> type[BridgedDestination]:
    entry = msgspec.json.decode(entry_json, type=CatalogEntry)
    actions = {
        action_id: Action(
            action_id,
            info.title,
            _unused_build,
            max_batch=max_batch_of(info),
        )
        for action_id, info in entry.actions.items()
    }
    presets = [
        Preset(p.name, p.partner_action, p.subscribe or "", p.mapping)
        for p in entry.automatic_presets()
    ]
    aliases = tuple(a for a in (entry.definition_slug, f"actions-{entry.slug}") if a)
    attributes = {
        "id": entry.type, "name": entry.name, "entry": entry, "actions": actions,
        "presets": presets, "aliases": aliases,
    }  # fmt: skip
    name = "Bridged_" + "".join(c if c.isalnum() else "_" for c in entry.slug)
    return type(name, (BridgedDestination,), attributes)


def _batch_field(info: ActionInfo) -> Mapping[str, Any]:
    properties: Mapping[str, Any] = info.fields.get("properties", {})
    return properties.get("batch_size") or {}


def max_batch_of(info: ActionInfo) -> int:
    """The most events one execute of the action may take (the engine's chunk size)."""
    if not info.has_perform_batch:
        return 1
    field = _batch_field(info)
    return int(field.get("maximum") or field.get("default") or DEFAULT_BATCH)


def batch_size_of(info: ActionInfo, mapping: Mapping[str, Any]) -> int:
    """As Segment batches: only an action with `performBatch` whose mapping turns
    `enable_batching` on, by the mapping's `batch_size` (else the field's default), within the
    field's maximum; otherwise one event per execute."""
    if not info.has_perform_batch or mapping.get("enable_batching") is not True:
        return 1
    field = _batch_field(info)
    wanted = mapping.get("batch_size")
    if not isinstance(wanted, int | float) or isinstance(wanted, bool) or wanted < 1:
        wanted = field.get("default") or DEFAULT_BATCH
    return max(1, min(int(wanted), max_batch_of(info)))


def _unused_build(destination: Any, mapped: Sequence[Mapped]) -> list[OutRequest]:
    """Actions of a bridged destination build through `BridgedDestination.build`."""
    raise NotImplementedError


def bridged_class(entry: CatalogEntry) -> type[BridgedDestination]:
    """The Destination class of one catalogue entry (made once per entry and catalogue)."""
    return _class_for(msgspec.json.encode(entry))
