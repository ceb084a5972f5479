"""The OpenAPI 3.1 document of the Profile API, served at `GET /v1/spaces/openapi.json`.

A document of its own, not part of the admin API's (`admin/openapi.py`): the Profile API is
Segment's, on another base path (`/v1/spaces/`, the Tracking API's port, not `/api/v1`), with
another auth (HTTP Basic with a Profile API token, not a bearer admin token) and Segment's error
body (`{"error": {"code", "message"}}`, not the admin API's). Its page sizes, classes and sort
orders are the app's own constants, so the two cannot drift; a test checks the running server's
answers against it (schemathesis).
"""

from __future__ import annotations

import functools
from typing import Any

from sluice.profileapi.app import CLASSES, LIMITS, NOT_FOUND, RESOURCES

Schema = dict[str, Any]
STR: Schema = {"type": "string"}
TIME: Schema = {"type": "string", "format": "date-time"}
ERROR_CODES = (
    "authentication_error",
    "invalid_request_error",
    "validation_error",
    "not_found",
    "rate_limit_error",
    "internal_error",
)
_ERRORS = {
    400: "A parameter out of range or of the wrong form (`validation_error`), an identifier"
    " that is not `type:value`, a collection other than users or accounts, a `next` this API"
    " did not return (`invalid_request_error`)",
    401: "No Basic token, or not an active Profile API token (`authentication_error`)",
    404: f"No such profile ({NOT_FOUND!r}), space or resource (`not_found`)",
    429: "Over the token's rate limit (`rate_limit_error`); `Retry-After` says when to retry",
}
_SUMMARIES = {
    "traits": "A profile's traits",
    "external_ids": "A profile's external ids",
    "events": "A profile's events, newest first",
    "metadata": "A profile's metadata",
    "links": "The profiles of the other collection linked to this one (group calls)",
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: Schema, required: tuple[str, ...] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
    }


def _query(name: str, description: str, schema: Schema) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _parameters(resource: str) -> list[Schema]:
    params: list[Schema] = []
    if resource in LIMITS:
        default, maximum = LIMITS[resource]
        params.append(
            _query(
                "limit",
                "Items per page",
                {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
            )
        )
    if resource in ("traits", "external_ids", "events"):
        params.append(_query("next", "`cursor.next` of the previous page", STR))
        what = {"traits": "trait keys", "external_ids": "id types", "events": "event names"}
        params.append(_query("include", f"Only these {what[resource]}, comma-separated", STR))
    if resource == "traits":
        params.append(_query("class", "Traits of this class", {"enum": list(CLASSES)}))
        params.append(
            _query(
                "verbose",
                "Each trait as {value, source_id, updated_at}",
                {"type": "boolean", "default": False},
            )
        )
    if resource == "events":
        params += [
            _query("exclude", "Not these event names, comma-separated", STR),
            _query("start", "Events at or after this time (their `timestamp`)", TIME),
            _query("end", "Events at or before this time", TIME),
            _query(
                "sort",
                "Newest (desc) or oldest (asc) first",
                {"enum": ["desc", "asc"], "default": "desc"},
            ),
        ]
    return params


_BODIES = {
    "traits": _obj({"traits": {"type": "object"}, "cursor": _ref("Cursor")}),
    "external_ids": _obj(
        {"data": {"type": "array", "items": _ref("ExternalId")}, "cursor": _ref("Cursor")}
    ),
    "events": _obj({"data": {"type": "array", "items": _ref("Event")}, "cursor": _ref("Cursor")}),
    "metadata": _obj({"metadata": _ref("Metadata")}),
    "links": _obj({"data": {"type": "array", "items": _ref("Link")}}),
}

_ID_REF: Schema = _obj(
    {"collection": {"enum": ["users", "accounts"]}, "type": STR, "id": STR, "encoding": STR}
)
_LINKED_ID: Schema = _obj(
    {
        "source_id": STR,
        "collection": {"enum": ["users", "accounts"]},
        "id": STR,
        "type": STR,
        "created_at": TIME,
        "encoding": STR,
    }
)
_SCHEMAS: Schema = {
    "Error": _obj({"error": _obj({"code": {"enum": list(ERROR_CODES)}, "message": STR})}),
    "Cursor": _obj(
        {
            "url": STR,
            "has_more": {"type": "boolean"},
            "next": STR,
            "limit": {"type": "integer", "minimum": 1},
        }
    ),
    "ExternalId": _obj(
        {
            "source_id": STR,
            "collection": {"enum": ["users", "accounts"]},
            "id": STR,
            "type": STR,
            "created_at": TIME,
            "encoding": STR,
            "first_message_id": STR,
        }
    ),
    "Event": _obj(
        {
            "external_ids": {"type": "array", "items": _ID_REF},
            "context": {"type": "object"},
            "type": STR,
            "message_id": STR,
            "source_id": STR,
            "timestamp": STR,
            "properties": {"type": "object"},
            "event": {"type": ["string", "null"]},
            "related": {"type": "object"},
        }
    ),
    "Metadata": _obj(
        {
            "created_at": TIME,
            "updated_at": TIME,
            "expires_at": {"type": "null"},
            "first_message_id": STR,
            "first_source_id": STR,
            "last_message_id": {"type": ["string", "null"]},
            "last_source_id": {"type": ["string", "null"]},
        }
    ),
    "Link": _obj(
        {
            "to_collection": {"enum": ["users", "accounts"]},
            # The linked profile's ids, as /external_ids lists them but without first_message_id.
            "external_ids": {"type": "array", "items": _LINKED_ID},
        }
    ),
}


def _operation(resource: str) -> Schema:
    responses: Schema = {
        "200": {
            "description": _SUMMARIES[resource],
            "content": {"application/json": {"schema": _BODIES[resource]}},
        }
    }
    for status, description in _ERRORS.items():
        responses[str(status)] = {
            "description": description,
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    operation: Schema = {
        "operationId": f"get_{resource}",
        "summary": _SUMMARIES[resource],
        "tags": ["Profiles"],
        "responses": responses,
    }
    if params := _parameters(resource):
        operation["parameters"] = params
    return operation


@functools.cache
def _document() -> Schema:
    path_params = [
        {
            "name": "space",
            "in": "path",
            "required": True,
            "schema": STR,
            "description": "The workspace's name (`workspace:` in the workspace file)",
        },
        {
            "name": "collection",
            "in": "path",
            "required": True,
            "schema": {"enum": ["users", "accounts"]},
            "description": "users or accounts",
        },
        {
            "name": "identifier",
            "in": "path",
            "required": True,
            "schema": STR,
            "description": "`type:value` (user_id:42, email:a%40b.c, group_id:acme) or a"
            " profile id (use_..., acc_...)",
        },
    ]
    paths = {
        f"/v1/spaces/{{space}}/collections/{{collection}}/profiles/{{identifier}}/{resource}": {
            "parameters": path_params,
            "get": _operation(resource),
        }
        for resource in RESOURCES
    }
    paths["/v1/spaces/openapi.json"] = {
        "get": {
            "operationId": "get_openapi",
            "summary": "This document",
            "tags": ["Profiles"],
            "security": [],
            "responses": {
                "200": {
                    "description": "The OpenAPI document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sluice Profile API",
            "version": "1.0.0",
            "description": "Segment's Profile API, read from Sluice's identity graph"
            " (docs/identity.md#profile-api).",
        },
        "servers": [{"url": "/"}],
        "security": [{"basicAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "basicAuth": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "A Profile API token (`sluice token create --scope profile`)"
                    " as the username, no password",
                }
            },
            "schemas": _SCHEMAS,
        },
    }


def openapi_document() -> Schema:
    return _document()
