"""The admin API's Starlette app: JSON REST under `/api/v1`, for what the CLI can do.

Handlers only translate HTTP: they read parameters and bodies, call the shared functions (the
workspace edits, `delivery.trace`, `inspection`, the replay manager) on a worker thread, since
the store is synchronous, and answer JSON. Every route but `/openapi.json` needs a bearer token
(`sluice token create`). `openapi.py` describes these routes; a test keeps the two in step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.admin import workspace_edits as edits
from sluice.admin.bodies import convert, decode_json
from sluice.admin.catalog import destination_type, destination_types
from sluice.admin.errors import ApiError, Invalid, NotFound
from sluice.admin.http import (
    MAX_SQL_INT,
    Handler,
    api_error_handler,
    guarded,
    http_error_handler,
    internal_error_handler,
    json_response,
    query_bool,
    query_choices,
    query_int,
    query_limit,
    query_str,
)
from sluice.admin.openapi import openapi_document
from sluice.admin.regulations import RegulationRoutes
from sluice.admin.replays import ReplayBody, ReplayManager, replay_request
from sluice.admin.tokens import TokenVerifier
from sluice.admin.workspace_edits import Collection
from sluice.config import Settings
from sluice.delivery.stats import DEFAULT_TIMELINE_MINUTES, MAX_TIMELINE_MINUTES, recent_timeline
from sluice.delivery.trace import trace_message
from sluice.inspection import (
    event_record,
    parked_record,
    rejected_record,
    retrying_record,
    status_report,
    timeline_record,
)
from sluice.store.base import Store
from sluice.store.base_event_store import EventQuery
from sluice.workspace.files import dump_workspace, workspace_data

PARKED_STATES = ("parked", "retry_requested", "resent")
DEFAULT_PARKED_STATES = ("parked", "retry_requested")  # as `sluice parked list`
DEFAULT_EVENTS = 20
DEFAULT_REJECTED = 20
DEFAULT_PARKED = 50
YAML = "application/yaml"
ParkedId = Annotated[int, msgspec.Meta(ge=1, le=MAX_SQL_INT)]


class RetryBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`POST /parked/retry`: parked ids, a destination, or both (ids of that destination)."""

    ids: list[ParkedId] = []
    destination: str | None = None


class RetryingBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`POST /retrying/retry|park`: messageIds, a destination, or `all`."""

    destination: str | None = None
    message_ids: list[str] = msgspec.field(default_factory=list, name="messageIds")
    all: bool = False

    def check(self) -> None:
        if not self.message_ids and not self.all:
            raise Invalid("Give the messageIds, or all: true", field="messageIds")


class AdminApi:
    """The handlers, sharing the store, the settings, the token check and the replays."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.verifier = TokenVerifier(store)
        self.replays = ReplayManager(settings, store)

    def routes(self) -> list[Route]:
        def route(path: str, handler: Handler, method: str) -> Route:
            return Route(path, guarded(handler, self.verifier), methods=[method])

        routes = [
            Route("/openapi.json", self.openapi, methods=["GET"]),
            route("/workspace", self.get_workspace, "GET"),
            route("/workspace", self.put_workspace, "PUT"),
            route("/destination-types", self.list_types, "GET"),
            route("/destination-types/{type_id}", self.get_type, "GET"),
        ]
        for collection in ("sources", "destinations", "warehouses"):
            routes += self._collection_routes(collection, route)
        routes += [
            route("/sources/{id}/rotate-write-key", self.rotate_write_key, "POST"),
            route("/destinations/{id}/timeline", self.timeline, "GET"),
            route("/stats", self.stats, "GET"),
            route("/events", self.events, "GET"),
            route("/events/{message_id:path}/trace", self.trace, "GET"),
            route("/rejected", self.rejected, "GET"),
            route("/parked", self.parked, "GET"),
            route("/parked/retry", self.retry_parked, "POST"),
            route("/retrying", self.retrying, "GET"),
            route("/retrying/retry", self.retry_now, "POST"),
            route("/retrying/park", self.park_retrying, "POST"),
            route("/replays", self.list_replays, "GET"),
            route("/replays", self.start_replay, "POST"),
            route("/replays/{id}", self.get_replay, "GET"),
            route("/replays/{id}/stop", self.stop_replay, "POST"),
        ]
        routes += RegulationRoutes(self.store).routes(route)
        return routes

    def _collection_routes(
        self, collection: Collection, route: Callable[[str, Handler, str], Route]
    ) -> list[Route]:
        async def list_(request: Request) -> Response:
            found = await asyncio.to_thread(edits.list_objects, self.store, collection)
            return json_response({collection: found})

        async def create(request: Request) -> Response:
            body = decode_json(await request.body())
            obj = await asyncio.to_thread(edits.create_object, self.store, collection, body)
            location = f"{request.url.path.rstrip('/')}/{obj['id']}"
            return json_response(obj, 201, {"Location": location})

        async def get(request: Request) -> Response:
            object_id = request.path_params["id"]
            obj = await asyncio.to_thread(edits.get_object, self.store, collection, object_id)
            return json_response(obj)

        async def put(request: Request) -> Response:
            body = decode_json(await request.body())
            object_id = request.path_params["id"]
            obj = await asyncio.to_thread(
                edits.replace_object, self.store, collection, object_id, body
            )
            return json_response(obj)

        async def patch(request: Request) -> Response:
            body = decode_json(await request.body())
            object_id = request.path_params["id"]
            obj = await asyncio.to_thread(
                edits.patch_object, self.store, collection, object_id, body
            )
            return json_response(obj)

        async def delete(request: Request) -> Response:
            object_id = request.path_params["id"]
            await asyncio.to_thread(edits.delete_object, self.store, collection, object_id)
            return Response(status_code=204)

        def switch(enabled: bool) -> Handler:
            async def handler(request: Request) -> Response:
                object_id = request.path_params["id"]
                obj = await asyncio.to_thread(
                    edits.set_enabled, self.store, collection, object_id, enabled
                )
                return json_response(obj)

            return handler

        base = f"/{collection}"
        routes = [
            route(base, list_, "GET"),
            route(base, create, "POST"),
            route(base + "/{id}", get, "GET"),
            route(base + "/{id}", put, "PUT"),
            route(base + "/{id}", patch, "PATCH"),
            route(base + "/{id}", delete, "DELETE"),
        ]
        if collection in ("sources", "destinations"):  # the kinds with `enabled`
            routes.append(route(base + "/{id}/enable", switch(True), "POST"))
            routes.append(route(base + "/{id}/disable", switch(False), "POST"))
        return routes

    # --- documents -------------------------------------------------------------------------
    async def openapi(self, request: Request) -> Response:
        return json_response(openapi_document())

    async def get_workspace(self, request: Request) -> Response:
        form = request.query_params.get("format", "json")
        if form not in ("json", "yaml"):
            raise ApiError(
                f"format: Expected json or yaml, got {form!r}", code="bad_parameter", field="format"
            )
        ws = await asyncio.to_thread(edits.read_workspace, self.store)
        if form == "yaml":
            return Response(dump_workspace(ws), media_type=YAML)
        return json_response(workspace_data(ws))

    async def put_workspace(self, request: Request) -> Response:
        dry_run = query_bool(request, "dry_run")
        raw = await request.body()
        if "yaml" in request.headers.get("content-type", ""):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise Invalid("The document is not UTF-8 text", field="") from None
            ws = await asyncio.to_thread(edits.check_yaml, text)
        else:
            ws = await asyncio.to_thread(edits.check_document, decode_json(raw))
        report = await asyncio.to_thread(edits.apply_document, self.store, ws, dry_run=dry_run)
        return json_response(edits.report_document(report, dry_run=dry_run))

    async def list_types(self, request: Request) -> Response:
        return json_response({"destination_types": await asyncio.to_thread(destination_types)})

    async def get_type(self, request: Request) -> Response:
        found = await asyncio.to_thread(destination_type, request.path_params["type_id"])
        return json_response(found)

    async def rotate_write_key(self, request: Request) -> Response:
        keep_old = query_bool(request, "keep_old")
        source, key = await asyncio.to_thread(
            edits.rotate_write_key, self.store, request.path_params["id"], keep_old=keep_old
        )
        return json_response({"source": source, "write_key": key})

    # --- what happened -----------------------------------------------------------------------
    async def stats(self, request: Request) -> Response:
        report = await asyncio.to_thread(status_report, self.settings, self.store)
        return json_response(report)

    async def timeline(self, request: Request) -> Response:
        minutes = query_int(request, "minutes", DEFAULT_TIMELINE_MINUTES, 1, MAX_TIMELINE_MINUTES)
        destination = request.path_params["id"]

        def read() -> list[dict[str, Any]]:
            edits.get_object(self.store, "destinations", destination)  # NotFound: a 404
            found = recent_timeline(self.store, destination, minutes)
            return [timeline_record(minute, counts) for minute, counts in found]

        return json_response(await asyncio.to_thread(read))

    async def events(self, request: Request) -> Response:
        query = EventQuery(
            limit=query_limit(request, DEFAULT_EVENTS),
            source_id=query_str(request, "source"),
            type=query_str(request, "type"),
            event=query_str(request, "event"),
            after_seq=query_int(request, "after", 0, 0, MAX_SQL_INT),
        )
        found = await asyncio.to_thread(self.store.newest, query)
        return json_response({"events": [event_record(e) for e in found]})

    async def trace(self, request: Request) -> Response:
        message_id = request.path_params["message_id"]
        found = await asyncio.to_thread(trace_message, self.store, message_id)
        if not found:
            raise NotFound(
                f"No stored event has messageId {message_id!r} (rejected or deduplicated?)"
            )
        return json_response({"messageId": message_id, "found": found})

    async def rejected(self, request: Request) -> Response:
        limit = query_limit(request, DEFAULT_REJECTED)
        found = await asyncio.to_thread(self.store.rejections, limit, query_str(request, "source"))
        return json_response({"rejected": [rejected_record(r) for r in found]})

    async def parked(self, request: Request) -> Response:
        limit = query_limit(request, DEFAULT_PARKED)
        states = query_choices(request, "state", PARKED_STATES) or list(DEFAULT_PARKED_STATES)
        destination = query_str(request, "destination")
        message_id = query_str(request, "message_id")

        def find() -> list[dict[str, Any]]:
            if message_id is None:
                found = self.store.parked(destination, states, limit)
            else:
                found = [
                    p
                    for p in self.store.parked_for_message(message_id)
                    if p.state in states and destination in (None, p.destination)
                ][:limit]
            return [parked_record(p) for p in found]

        return json_response({"parked": await asyncio.to_thread(find)})

    async def retry_parked(self, request: Request) -> Response:
        body = convert(decode_json(await request.body()), RetryBody)
        if not body.ids and body.destination is None:
            raise Invalid("Give the parked ids to retry, a destination, or both", field="ids")
        count = await asyncio.to_thread(self.store.request_parked_retry, body.destination, body.ids)
        return json_response({"queued": count})

    async def retrying(self, request: Request) -> Response:
        limit = query_limit(request, DEFAULT_PARKED)
        destination = query_str(request, "destination")
        found = await asyncio.to_thread(self.store.retrying, destination, limit)
        return json_response({"retrying": [retrying_record(d, r) for d, r in found]})

    async def retry_now(self, request: Request) -> Response:
        body = convert(decode_json(await request.body()), RetryingBody)
        body.check()
        now_ms = int(time.time() * 1000)
        count = await asyncio.to_thread(
            self.store.retry_now, body.destination, body.message_ids, now_ms=now_ms
        )
        return json_response({"count": count})

    async def park_retrying(self, request: Request) -> Response:
        body = convert(decode_json(await request.body()), RetryingBody)
        body.check()
        now_ms = int(time.time() * 1000)
        count = await asyncio.to_thread(
            self.store.park_retrying, body.destination, body.message_ids, now_ms=now_ms
        )
        return json_response({"count": count})

    # --- replays -----------------------------------------------------------------------------
    async def list_replays(self, request: Request) -> Response:
        return json_response({"replays": await asyncio.to_thread(self.replays.list)})

    async def start_replay(self, request: Request) -> Response:
        body = convert(decode_json(await request.body()), ReplayBody)
        status, started = await self.replays.start(replay_request(body))
        location = f"{request.url.path.rstrip('/')}/{status['id']}"
        return json_response(status, 202 if started else 200, {"Location": location})

    async def get_replay(self, request: Request) -> Response:
        status = await asyncio.to_thread(self.replays.status, request.path_params["id"])
        return json_response(status)

    async def stop_replay(self, request: Request) -> Response:
        status = await asyncio.to_thread(self.replays.request_stop, request.path_params["id"])
        return json_response(status, 202)


def build_admin_api(store: Store, settings: Settings) -> Starlette:
    return Starlette(
        routes=AdminApi(store, settings).routes(),
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_error_handler,
            Exception: internal_error_handler,
        },
    )
