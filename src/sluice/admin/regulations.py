"""The admin API's privacy routes, as Segment's Public API has them (docs/privacy.md).

POST /regulations                      a workspace regulation: {"data": {"regulateId"}}
POST /regulations/sources/{sourceId}   a source-scoped one (the source must exist)
GET  /regulations[?status=&limit=]     {"data": {"regulations": [...]}}, newest first
GET  /regulations/sources/{sourceId}   the source's regulations
GET  /regulations/{regulateId}         {"data": {"regulation": {... "targets": [...]}}}
GET  /suppressions[?limit=]            {"data": {"suppressions": [...]}}
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.admin import workspace_edits as edits
from sluice.admin.bodies import convert, decode_json
from sluice.admin.errors import ApiError, Invalid, NotFound
from sluice.admin.http import Handler, json_response, query_limit, query_str
from sluice.privacy.errors import RegulationInvalid, RegulationNotFound
from sluice.privacy.records import read_regulation, regulation_record, suppression_record
from sluice.privacy.regulation import STATUSES, RegulationRequest, create_regulation
from sluice.store.base import Store

DEFAULT_LIST = 100


class RegulationRoutes:
    def __init__(self, store: Store) -> None:
        self.store = store

    def routes(self, route: Callable[[str, Handler, str], Route]) -> list[Route]:
        return [
            route("/regulations", self.create, "POST"),
            route("/regulations", self.list, "GET"),
            route("/regulations/sources/{source_id}", self.create, "POST"),
            route("/regulations/sources/{source_id}", self.list, "GET"),
            route("/regulations/{regulate_id}", self.get, "GET"),
            route("/suppressions", self.suppressions, "GET"),
        ]

    async def create(self, request: Request) -> Response:
        body = convert(decode_json(await request.body()), RegulationRequest)
        source_id = request.path_params.get("source_id")

        def create() -> str:
            if source_id is not None:
                edits.get_object(self.store, "sources", source_id)  # NotFound: a 404
            try:
                return create_regulation(self.store, body, source_id).id
            except RegulationInvalid as exc:
                raise Invalid(exc.message, field=exc.field) from None

        regulate_id = await asyncio.to_thread(create)
        location = f"{request.url.path.split('/regulations')[0]}/regulations/{regulate_id}"
        return json_response({"data": {"regulateId": regulate_id}}, 200, {"Location": location})

    async def list(self, request: Request) -> Response:
        status = query_str(request, "status")
        if status is not None and status not in STATUSES:
            raise ApiError(
                f"status: Expected one of {', '.join(STATUSES)}, got {status!r}",
                code="bad_parameter",
                field="status",
            )
        limit = query_limit(request, DEFAULT_LIST)
        source_id = request.path_params.get("source_id")

        def read() -> list[dict[str, Any]]:
            if source_id is not None:
                edits.get_object(self.store, "sources", source_id)
            found = self.store.regulations(status=status, source_id=source_id, limit=limit)
            return [regulation_record(r) for r in found]

        return json_response({"data": {"regulations": await asyncio.to_thread(read)}})

    async def get(self, request: Request) -> Response:
        regulate_id = request.path_params["regulate_id"]
        try:
            found = await asyncio.to_thread(read_regulation, self.store, regulate_id)
        except RegulationNotFound as exc:
            raise NotFound(str(exc)) from None
        return json_response({"data": {"regulation": found}})

    async def suppressions(self, request: Request) -> Response:
        limit = query_limit(request, DEFAULT_LIST)
        found = await asyncio.to_thread(self.store.suppressions, limit)
        records = [suppression_record(*s) for s in found]
        return json_response({"data": {"suppressions": records}})
