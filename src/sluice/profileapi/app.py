"""The Profile API's HTTP edge: Segment's routes, parameters, cursors and error bodies.

    GET /v1/spaces/<space>/collections/<users|accounts>/profiles/<type:value>/<resource>

Auth is Segment's: HTTP Basic with a Profile API token (`sluice token create --scope profile`)
as the username and no password. Admin tokens are refused here, as Profile API tokens are on the
admin API: a service that reads profiles cannot change the workspace. The token is never logged
(nothing here logs a header). Errors are Segment's `{"error": {"code", "message"}}`; every
answer has a `Request-Id` header, as Segment's do. `<space>` is the workspace's name (the
identity graph keys its tables by it), so an unknown space is a 404 like an unknown profile.

Each token may make `SLUICE_PROFILE_API_RATE_LIMIT` requests a second (100, Segment's figure;
bursts of one second's worth); past it, Segment's `429 rate_limit_error` with `Retry-After`. The
buckets are shared by every HTTP worker process (`collector/ratelimit.py`'s file), so the limit
does not grow with the number of workers. Each 429 is counted in `/metrics`
(`sluice_profile_api_rate_limited_total`, by token id) and logged once per token and minute.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sluice.admin.tokens import PROFILE, TokenVerifier
from sluice.collector.ratelimit import SharedTokenBuckets
from sluice.config import Settings
from sluice.identity.rules import ACCOUNTS, USERS, Rules
from sluice.identity.runner import workspace_rules
from sluice.identity.tables import open_identity_db
from sluice.metrics.process import ProcessMetrics
from sluice.profileapi.reads import PROFILE_PREFIXES, Page, Profile, Reader, event_time_ms
from sluice.spec.timestamps import format_ms, parse_ms
from sluice.store.base import EventStore, StoredEvent

log = logging.getLogger(__name__)

PREFIX = "/v1/spaces/"
OPENAPI_PATH = PREFIX + "openapi.json"  # the document (profileapi/openapi.py), no token needed
_PATH = re.compile(r"/v1/spaces/([^/]+)/collections/([^/]+)/profiles/([^/]+)/([^/]+)/?")
RESOURCES = ("traits", "external_ids", "events", "metadata", "links")
# Segment's page sizes: (default, maximum) per resource.
LIMITS = {"traits": (10, 200), "external_ids": (10, 100), "events": (10, 100), "links": (20, 20)}
CLASSES = ("audience", "computed_trait")
NOT_FOUND = "Profile was not found."
BUCKETS_FILE = "profileapi.buckets"
LOG_EVERY_S = 60.0


class ProfileApiError(Exception):
    def __init__(self, status: int, code: str, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after


def _invalid(message: str) -> ProfileApiError:
    return ProfileApiError(400, "validation_error", message)


class ProfileApi:
    """ASGI app for every path under `/v1/spaces/`."""

    def __init__(
        self, store: EventStore, settings: Settings, metrics: ProcessMetrics | None = None
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics  # the HTTP process's instruments (/metrics), when served
        self.verifier = TokenVerifier(store, PROFILE)
        self._reader: Reader | None = None
        self._open_lock = threading.Lock()
        self._rules: tuple[int, str, Rules] | None = None
        self._buckets: SharedTokenBuckets | None = None
        self.rate_limited = 0  # answers 429 by this process (logged once per token and minute)
        self._warned: dict[str, float] = {}

    def reader(self) -> Reader:
        """Opened on first use: a server whose Profile API is never called holds no
        connection to the identity tables."""
        with self._open_lock:
            if self._reader is None:
                db = open_identity_db(self.settings.data_dir, self.settings.database_url)
                self._reader = Reader(db, self.store)
            return self._reader

    def take(self, token_id: str) -> int:
        """0 when the token may make one more request now, else seconds to wait."""
        rate = self.settings.profile_api_rate_limit
        if rate <= 0:
            return 0
        with self._open_lock:
            if self._buckets is None:
                path = self.settings.data_dir / BUCKETS_FILE
                self._buckets = SharedTokenBuckets(path, rate, 0)
        return self._buckets.take(token_id, 1)

    def space_rules(self) -> tuple[str, Rules]:
        version = self.store.config_version()
        if self._rules is None or self._rules[0] != version:
            self._rules = (version, *workspace_rules(self.store))
        return self._rules[1], self._rules[2]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        headers = {"Request-Id": secrets.token_hex(16)}
        if request.url.path == OPENAPI_PATH and request.method in ("GET", "HEAD"):
            from sluice.profileapi.openapi import openapi_document  # it reads this module's

            document = msgspec.json.encode(openapi_document())
            await Response(document, 200, headers, "application/json")(scope, receive, send)
            return
        try:
            if request.method not in ("GET", "HEAD"):
                raise ProfileApiError(405, "invalid_request_error", "The Profile API takes GET")
            await self._authenticate(request)
            body = await asyncio.to_thread(self._answer, request)
            status = 200
        except ProfileApiError as exc:
            body, status = {"error": {"code": exc.code, "message": exc.message}}, exc.status
            if exc.status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="Sluice Profile API"'
            if exc.retry_after:
                headers["Retry-After"] = str(exc.retry_after)
        except Exception:
            log.exception("Profile API: %s %s failed", request.method, request.url.path)
            body = {"error": {"code": "internal_error", "message": "Internal error"}}
            status = 500
        response = Response(msgspec.json.encode(body), status, headers, "application/json")
        await response(scope, receive, send)

    async def _authenticate(self, request: Request) -> None:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            raise ProfileApiError(
                401, "authentication_error", "Send a Profile API token as the Basic username"
            )
        try:
            token = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            token = ""
        record = await asyncio.to_thread(self.verifier.verify, token) if token else None
        if record is None:
            raise ProfileApiError(
                401, "authentication_error", "The token is not a valid Profile API token"
            )
        wait = self.take(record.id)  # a lock held for microseconds, as the collector's
        if wait:
            self._note_limited(record.id, record.name)
            raise ProfileApiError(
                429,
                "rate_limit_error",
                f"Too many requests: this token may make"
                f" {self.settings.profile_api_rate_limit:g} requests a second"
                " (SLUICE_PROFILE_API_RATE_LIMIT)",
                retry_after=wait,
            )

    def _note_limited(self, token_id: str, name: str) -> None:
        """Count every 429; log a token's first in a minute (not one line per request)."""
        self.rate_limited += 1
        if self.metrics is not None:
            self.metrics.profile_api_rate_limited.labels(token_id).inc()
        now = time.monotonic()
        if now - self._warned.get(token_id, -LOG_EVERY_S) >= LOG_EVERY_S:
            self._warned[token_id] = now
            log.warning(
                "Profile API: token %s (%s) is over its rate limit of %g requests/s;"
                " %d requests refused by this process so far",
                token_id,
                name,
                self.settings.profile_api_rate_limit,
                self.rate_limited,
            )

    # --- routing ------------------------------------------------------------------------------
    def _answer(self, request: Request) -> dict[str, Any]:
        path: str = request.scope["path"]  # already percent-decoded (`%2B` is `+`)
        match = _PATH.fullmatch(path)
        if match is None:
            raise ProfileApiError(404, "not_found", f"No such path: {path}")
        space, collection, identifier, resource = match.groups()
        if collection not in (USERS, ACCOUNTS):
            raise ProfileApiError(
                400, "invalid_request_error", "collection must be users or accounts"
            )
        if resource not in RESOURCES:
            raise ProfileApiError(404, "not_found", f"No such resource: {resource}")
        params = Params(request, resource)
        known_space, rules = self.space_rules()
        if space != known_space:
            raise ProfileApiError(404, "not_found", f"Space {space!r} was not found.")
        reader = self.reader()
        profile = reader.find(space, collection, *_identifier(identifier, collection))
        if profile is None:
            raise ProfileApiError(404, "not_found", NOT_FOUND)
        answer: Callable[[Reader, str, Profile, Rules, Params], dict[str, Any]]
        answer = _ANSWERS[resource]
        body = answer(reader, space, profile, rules, params)
        if "cursor" in body:
            body["cursor"]["url"] = request.url.path + (
                f"?{request.url.query}" if request.url.query else ""
            )
        return body


def _identifier(text: str, collection: str) -> tuple[str, str]:
    """`type:value` → (type, value); a profile id (`use_...`, `acc_...`) → ("", id)."""
    id_type, sep, value = text.partition(":")
    if not sep and text.startswith(PROFILE_PREFIXES[collection]):
        return "", text
    if not sep or not id_type or not value:
        raise ProfileApiError(
            400,
            "invalid_request_error",
            f"Expected <type>:<value> (e.g. user_id:abc) or a profile id, got {text!r}",
        )
    return id_type.strip().lower(), value


class Params:
    """The query parameters, checked up front so a bad one is a 400 whatever the profile."""

    def __init__(self, request: Request, resource: str) -> None:
        query = request.query_params
        self.query = query
        default, maximum = LIMITS.get(resource, (10, 100))
        raw = query.get("limit") or ""
        self.limit = default
        if raw:
            if not raw.isdigit() or not 1 <= int(raw) <= maximum:
                raise _invalid(f"limit must be an integer from 1 to {maximum}, got {raw!r}")
            self.limit = int(raw)
        self.verbose = _flag(query.get("verbose"), "verbose")
        self.include = _names(query.get("include"))
        self.exclude = _names(query.get("exclude"))
        self.next = query.get("next") or ""
        self.trait_class = query.get("class") or ""
        if self.trait_class and self.trait_class not in CLASSES:
            raise _invalid(f"class must be one of {', '.join(CLASSES)}, got {self.trait_class!r}")
        self.sort = query.get("sort") or "desc"
        if self.sort not in ("asc", "desc"):
            raise _invalid(f"sort must be asc or desc, got {self.sort!r}")
        self.start = _time(query.get("start"), "start")
        self.end = _time(query.get("end"), "end")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise _invalid("start must not be after end")

    def after(self) -> Any:
        """The decoded `next` cursor, or None on a first page."""
        if not self.next:
            return None
        try:
            padded = self.next + "=" * (-len(self.next) % 4)
            return msgspec.json.decode(base64.urlsafe_b64decode(padded))
        except (binascii.Error, ValueError, msgspec.DecodeError):
            raise ProfileApiError(
                400, "invalid_request_error", "next is not a cursor this API returned"
            ) from None


def _flag(raw: str | None, name: str) -> bool:
    if raw in (None, "", "false"):
        return False
    if raw == "true":
        return True
    raise _invalid(f"{name} must be true or false, got {raw!r}")


def _names(raw: str | None) -> list[str]:
    return [name.strip() for name in (raw or "").split(",") if name.strip()]


def _time(raw: str | None, name: str) -> int | None:
    if not raw:
        return None
    ms = parse_ms(raw)
    if ms is None:
        raise _invalid(f"{name} must be an ISO-8601 time, got {raw!r}")
    return ms


def _cursor(page: Page, limit: int) -> dict[str, Any]:
    token = ""
    if page.after is not None:
        token = base64.urlsafe_b64encode(msgspec.json.encode(page.after)).decode().rstrip("=")
    return {"url": "", "has_more": page.after is not None, "next": token, "limit": limit}


# --- one function per resource ----------------------------------------------------------------
def _traits(reader: Reader, space: str, profile: Profile, rules: Rules, p: Params) -> Any:
    if p.trait_class:  # no computed traits or audiences yet: nothing of those classes
        page = Page()
    else:
        after = p.after()
        if after is not None and not isinstance(after, str):
            raise ProfileApiError(400, "invalid_request_error", "next is not a traits cursor")
        page = reader.traits(space, profile, p.include, p.limit, after)
    traits = {
        key: {"value": value, "source_id": source, "updated_at": updated} if p.verbose else value
        for key, value, source, updated in page.items
    }
    return {"traits": traits, "cursor": _cursor(page, p.limit)}


def _external_ids(reader: Reader, space: str, profile: Profile, rules: Rules, p: Params) -> Any:
    after = p.after()
    if after is not None and not (isinstance(after, list) and len(after) == 2):
        raise ProfileApiError(400, "invalid_request_error", "next is not an external ids cursor")
    key = (str(after[0]), str(after[1])) if after is not None else None
    page = reader.external_ids(space, profile, p.include, p.limit, key)
    return {"data": page.items, "cursor": _cursor(page, p.limit)}


def _events(reader: Reader, space: str, profile: Profile, rules: Rules, p: Params) -> Any:
    after = p.after()
    if after is not None and not isinstance(after, int):
        raise ProfileApiError(400, "invalid_request_error", "next is not an events cursor")
    include, exclude = set(p.include), set(p.exclude)

    def accept(stored: StoredEvent, body: dict[str, Any]) -> bool:
        name = stored.event if stored.event is not None else body.get("name")
        if (include and name not in include) or (exclude and name in exclude):
            return False
        if p.start is None and p.end is None:
            return True
        at = event_time_ms(stored, body)
        return (p.start is None or at >= p.start) and (p.end is None or at <= p.end)

    page = reader.events(space, profile, rules, accept, p.limit, p.sort == "desc", after)
    return {"data": page.items, "cursor": _cursor(page, p.limit)}


def _metadata(reader: Reader, space: str, profile: Profile, rules: Rules, p: Params) -> Any:
    last = reader.last_event(space, profile)
    updated = max(profile.updated_ms, last.received_at_ms if last else 0)
    return {
        "metadata": {
            "created_at": format_ms(profile.created_ms),
            "updated_at": format_ms(updated),
            "expires_at": None,
            "first_message_id": profile.first_message_id,
            "first_source_id": profile.first_source_id,
            "last_message_id": last.message_id if last else None,
            "last_source_id": last.source_id if last else None,
        }
    }


def _links(reader: Reader, space: str, profile: Profile, rules: Rules, p: Params) -> Any:
    linked = reader.links(space, profile, rules, p.limit)
    data = []
    for other in linked:
        ids = reader.identities_of(space, other)
        for item in ids:
            item.pop("first_message_id", None)
        data.append({"to_collection": other.collection, "external_ids": ids})
    return {"data": data}


_ANSWERS: dict[str, Callable[[Reader, str, Profile, Rules, Params], dict[str, Any]]] = {
    "traits": _traits,
    "external_ids": _external_ids,
    "events": _events,
    "metadata": _metadata,
    "links": _links,
}
