"""The OpenAPI 3.1 document of the admin API, served at `/api/v1/openapi.json`.

Written by hand as data, next to the routes it describes (`app.py`); a test compares the two
route by route, and a schemathesis test checks the server's answers against it. The schemas of
the objects are in `openapi_schemas`.
"""

from __future__ import annotations

import functools
from typing import Any

from sluice.admin.http import MAX_SQL_INT
from sluice.admin.openapi_schemas import (
    ID_REGEX,
    REPLAY_ID_REGEX,
    STR,
    Schema,
    json_content,
    object_schema,
    other_schemas,
    ref,
    workspace_schemas,
)
from sluice.delivery.stats import DEFAULT_TIMELINE_MINUTES, MAX_TIMELINE_MINUTES

API_VERSION = "1.0.0"

_ERRORS = {
    400: "The request cannot be read: a bad query parameter, or a body that is not JSON",
    401: "No bearer token, or not a valid one",
    404: "No such object",
    409: "The request conflicts with the current state (the `code` says how)",
    422: "The change breaks a rule of the workspace; `field` names the field at fault",
}


def _responses(ok: int, description: str, schema: Schema | None, *errors: int) -> Schema:
    responses: Schema = {str(ok): {"description": description}}
    if schema is not None:
        responses[str(ok)]["content"] = json_content(schema)
    for status in (401, *errors):
        responses[str(status)] = {
            "description": _ERRORS[status],
            "content": json_content(ref("Error")),
        }
    return responses


def _operation(
    operation_id: str,
    summary: str,
    tag: str,
    responses: Schema,
    *,
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
    body_required: bool = True,
) -> Schema:
    operation: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "responses": responses,
    }
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": body_required, "content": body}
    return operation


def _path_param(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or STR,
    }


def _query(name: str, description: str, schema: Schema) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_LIMIT_SCHEMA: Schema = {"type": "integer", "minimum": 1, "maximum": 1000}


def _limit(default: int) -> Schema:
    return _query("limit", "How many, newest first", {**_LIMIT_SCHEMA, "default": default})


_BOOL_QUERY: Schema = {"type": "boolean", "default": False}


# --- paths ---------------------------------------------------------------------------------------
_COLLECTIONS = (
    ("sources", "source", "Source", "Sources"),
    ("destinations", "destination", "Destination", "Destinations"),
    ("warehouses", "warehouse", "Warehouse", "Warehouses"),
)
# Examples of valid request bodies: for people reading the document, and for schemathesis,
# which sends them before the requests it generates.
_WEBHOOK = {
    "id": "hook",
    "type": "webhook",
    "sources": ["web"],
    "settings": {"urls": ["https://example.com/events"]},
}
_EXAMPLES: dict[str, dict[str, Any]] = {
    "source": {
        "create": {"id": "web", "name": "Web site"},
        "replace": {"name": "Web site", "enabled": True},
        "patch": {"enabled": False},
    },
    "destination": {
        "create": _WEBHOOK,
        "replace": {k: v for k, v in _WEBHOOK.items() if k != "id"},
        "patch": {
            "filters": [
                {"title": "No test events", "if": "event = 'Test'", "actions": [{"type": "drop"}]}
            ]
        },
    },
    "warehouse": {
        "create": {"id": "main", "type": "duckdb", "settings": {"path": "warehouse.duckdb"}},
        "replace": {"type": "duckdb", "sources": ["web"]},
        "patch": {"sources": ["web"]},
    },
}


def _collection_paths(collection: str, kind: str, schema: str, tag: str) -> Schema:
    id_param = _path_param("id", f"The {kind}'s id", {"type": "string", "pattern": ID_REGEX})
    paths: Schema = {
        f"/{collection}": {
            "get": _operation(
                f"list_{collection}",
                f"List the {collection}",
                tag,
                _responses(
                    200,
                    f"Every {kind}, by id",
                    object_schema({collection: {"type": "array", "items": ref(schema)}}),
                ),
            ),
            "post": _operation(
                f"create_{kind}",
                f"Create a {kind} (checked as `sluice apply` checks a file)",
                tag,
                _responses(201, f"The {kind} as stored", ref(schema), 400, 409, 422),
                body=json_content(ref(schema), _EXAMPLES[kind]["create"]),
            ),
        },
        f"/{collection}/{{id}}": {
            "parameters": [id_param],
            "get": _operation(
                f"get_{kind}",
                f"Get one {kind}",
                tag,
                _responses(200, f"The {kind}", ref(schema), 404),
            ),
            "put": _operation(
                f"replace_{kind}",
                f"Replace a {kind} (fields left out take their defaults"
                + (", except write keys, which are kept" if kind == "source" else "")
                + ")",
                tag,
                _responses(200, f"The {kind} as stored", ref(schema), 400, 404, 409, 422),
                body=json_content(ref(f"{schema}Replace"), _EXAMPLES[kind]["replace"]),
            ),
            "patch": _operation(
                f"patch_{kind}",
                f"Change some top-level fields of a {kind}",
                tag,
                _responses(200, f"The {kind} as stored", ref(schema), 400, 404, 409, 422),
                body=json_content(ref(f"{schema}Patch"), _EXAMPLES[kind]["patch"]),
            ),
            "delete": _operation(
                f"delete_{kind}",
                f"Delete a {kind} (409 `in_use` while other objects refer to it)",
                tag,
                _responses(204, "Deleted", None, 404, 409),
            ),
        },
    }
    if kind in ("source", "destination"):
        for verb in ("enable", "disable"):
            paths[f"/{collection}/{{id}}/{verb}"] = {
                "parameters": [id_param],
                "post": _operation(
                    f"{verb}_{kind}",
                    f"{verb.capitalize()} a {kind}",
                    tag,
                    _responses(200, f"The {kind} as stored", ref(schema), 404, 409, 422),
                ),
            }
    return paths


# The workspace as JSON, or as the YAML text `sluice export` writes and `sluice apply` reads.
_WORKSPACE_CONTENT = {
    **json_content(ref("Workspace")),
    "application/yaml": {"schema": ref("Workspace")},
}


def _paths() -> Schema:
    paths: Schema = {
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document (no token needed)",
                "tags": ["Meta"],
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": json_content({"type": "object"}),
                    }
                },
            }
        },
        "/workspace": {
            "get": _operation(
                "get_workspace",
                "The whole workspace, as `sluice export` writes it",
                "Workspace",
                {
                    **_responses(200, "The workspace", None, 400),
                    "200": {
                        "description": "The workspace (JSON, or YAML with format=yaml)",
                        "content": _WORKSPACE_CONTENT,
                    },
                },
                parameters=[
                    _query(
                        "format",
                        "json (default), or yaml: the exact text of `sluice export`",
                        {"enum": ["json", "yaml"], "default": "json"},
                    )
                ],
            ),
            "put": _operation(
                "put_workspace",
                "Make the workspace match a document, as `sluice apply` does",
                "Workspace",
                _responses(200, "What changed (or would)", ref("ApplyReport"), 400, 409, 422),
                parameters=[
                    _query("dry_run", "Report what would change; change nothing", _BOOL_QUERY)
                ],
                body={
                    **json_content(ref("Workspace")),
                    "application/yaml": {"schema": ref("Workspace")},
                },
            ),
        },
        "/destination-types": {
            "get": _operation(
                "list_destination_types",
                "The catalog: every destination type, its settings schema, actions, presets",
                "Destinations",
                _responses(
                    200,
                    "Every type, by id",
                    object_schema(
                        {"destination_types": {"type": "array", "items": ref("DestinationType")}}
                    ),
                ),
            )
        },
        "/destination-types/{type_id}": {
            "parameters": [_path_param("type_id", "The type's id, e.g. amplitude")],
            "get": _operation(
                "get_destination_type",
                "One destination type",
                "Destinations",
                _responses(200, "The type", ref("DestinationType"), 404),
            ),
        },
    }
    for collection, kind, schema, tag in _COLLECTIONS:
        paths.update(_collection_paths(collection, kind, schema, tag))
    paths["/sources/{id}/rotate-write-key"] = {
        "parameters": [
            _path_param("id", "The source's id", {"type": "string", "pattern": ID_REGEX})
        ],
        "post": _operation(
            "rotate_write_key",
            "Give a source a new generated write key",
            "Sources",
            _responses(200, "The source and its new key", ref("WriteKeyRotation"), 400, 404, 409),
            parameters=[
                _query("keep_old", "Keep the old keys too, for a gradual change", _BOOL_QUERY)
            ],
        ),
    }
    paths.update(_observe_paths())
    return paths


def _observe_paths() -> Schema:
    replay_id = _path_param("id", "The replay's id", {"type": "string", "pattern": REPLAY_ID_REGEX})
    return {
        "/stats": {
            "get": _operation(
                "get_stats",
                "What `sluice status --json` shows",
                "Observe",
                _responses(200, "Counters and delivery", ref("Stats")),
            )
        },
        "/destinations/{id}/timeline": {
            "parameters": [
                _path_param("id", "The destination's id", {"type": "string", "pattern": ID_REGEX})
            ],
            "get": _operation(
                "get_destination_timeline",
                "What the destination delivered, filtered, parked and retried, minute by minute",
                "Observe",
                _responses(
                    200,
                    "Every minute of the window, oldest first, the current one last "
                    "(zeros where nothing happened)",
                    {"type": "array", "items": ref("TimelineMinute")},
                    400,
                    404,
                ),
                parameters=[
                    _query(
                        "minutes",
                        "How many minutes back, the current one included (kept for 7 days)",
                        {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_TIMELINE_MINUTES,
                            "default": DEFAULT_TIMELINE_MINUTES,
                        },
                    )
                ],
            ),
        },
        "/events": {
            "get": _operation(
                "list_events",
                "The newest stored events",
                "Observe",
                _responses(
                    200,
                    "Newest first",
                    object_schema({"events": {"type": "array", "items": ref("Event")}}),
                    400,
                ),
                parameters=[
                    _query("source", "Only this source id", STR),
                    _query("type", "Only this call type (track, identify, ...)", STR),
                    _query("event", "Only track events of this name", STR),
                    _limit(20),
                    _query(
                        "after",
                        "Only events after this log position (`seq`)",
                        {"type": "integer", "minimum": 0, "maximum": MAX_SQL_INT, "default": 0},
                    ),
                ],
            )
        },
        "/events/{message_id}/trace": {
            "parameters": [_path_param("message_id", "The event's messageId")],
            "get": _operation(
                "trace_event",
                "Where one event went: what `sluice trace --json` shows",
                "Observe",
                _responses(200, "Each stored event with this messageId", ref("Trace"), 404),
            ),
        },
        "/rejected": {
            "get": _operation(
                "list_rejected",
                "Items the collector refused, and why",
                "Observe",
                _responses(
                    200,
                    "Newest first",
                    object_schema({"rejected": {"type": "array", "items": ref("Rejected")}}),
                    400,
                ),
                parameters=[_query("source", "Only this source id", STR), _limit(20)],
            )
        },
        "/parked": {
            "get": _operation(
                "list_parked",
                "Events parked after a permanent error or the retry window",
                "Parked",
                _responses(
                    200,
                    "Newest first",
                    object_schema({"parked": {"type": "array", "items": ref("Parked")}}),
                    400,
                ),
                parameters=[
                    _query("destination", "Only this destination id", STR),
                    {
                        **_query(
                            "state",
                            "Only these states (repeat it); default parked and retry_requested",
                            {
                                "type": "array",
                                "items": {"enum": ["parked", "retry_requested", "resent"]},
                            },
                        ),
                        "style": "form",
                        "explode": True,
                    },
                    _query("message_id", "Only this event", STR),
                    _limit(50),
                ],
            )
        },
        "/parked/retry": {
            "post": _operation(
                "retry_parked",
                "Send parked events again (the worker picks them up within a second)",
                "Parked",
                _responses(200, "How many were queued", ref("RetryResult"), 400, 422),
                body=json_content(ref("RetryRequest"), {"destination": "hook"}),
            )
        },
        "/retrying": {
            "get": _operation(
                "list_retrying",
                "Events whose delivery failed and will be tried again (the retry sets)",
                "Retrying",
                _responses(
                    200,
                    "By destination and log order",
                    object_schema({"retrying": {"type": "array", "items": ref("Retrying")}}),
                    400,
                ),
                parameters=[_query("destination", "Only this destination id", STR), _limit(50)],
            )
        },
        "/retrying/retry": {
            "post": _operation(
                "retry_now",
                "Make retrying events due now (the worker sends them within a second)",
                "Retrying",
                _responses(200, "How many are due now", ref("RetryingActionResult"), 400, 422),
                body=json_content(ref("RetryingAction"), {"destination": "hook", "all": True}),
            )
        },
        "/retrying/park": {
            "post": _operation(
                "park_retrying",
                "Park retrying events now (skip them); they can be sent again from parked",
                "Retrying",
                _responses(200, "How many were parked", ref("RetryingActionResult"), 400, 422),
                body=json_content(ref("RetryingAction"), {"messageIds": ["m-1"]}),
            )
        },
        "/replays": {
            "get": _operation(
                "list_replays",
                "Every replay with saved progress, the most recently active first",
                "Replays",
                _responses(
                    200,
                    "The replays",
                    object_schema({"replays": {"type": "array", "items": ref("Replay")}}),
                ),
            ),
            "post": {
                **_operation(
                    "start_replay",
                    "Replay archived events to one destination, in the background "
                    "(resumes a replay stopped before its end)",
                    "Replays",
                    _responses(202, "Started", ref("Replay"), 400, 404, 409, 422),
                    body=json_content(
                        ref("ReplayRequest"),
                        {"destination": "hook", "from": "2024-06-01", "to": "2024-06-02"},
                    ),
                ),
            },
        },
        "/replays/{id}": {
            "parameters": [replay_id],
            "get": _operation(
                "get_replay",
                "A replay's progress",
                "Replays",
                _responses(200, "The replay", ref("Replay"), 404, 409),
            ),
        },
        "/replays/{id}/stop": {
            "parameters": [replay_id],
            "post": _operation(
                "stop_replay",
                "Stop a running replay after its batch in flight",
                "Replays",
                _responses(202, "Stopping", ref("Replay"), 404, 409),
            ),
        },
    }


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The document (built once: it depends on nothing that changes while Sluice runs)."""
    from sluice.admin.openapi_privacy import privacy_paths, privacy_schemas  # uses this module

    paths = {**_paths(), **privacy_paths()}
    # Starting a replay that is complete already answers 200 with it, and starts nothing.
    paths["/replays"]["post"]["responses"]["200"] = {
        "description": "Complete already (restart it with restart: true)",
        "content": json_content(ref("Replay")),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sluice admin API",
            "version": API_VERSION,
            "description": "Configure Sluice and see what happened to events. "
            "Authenticate with `Authorization: Bearer <token>` (`sluice token create`).",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `sluice token create`",
                }
            },
            "schemas": {**workspace_schemas(), **other_schemas(), **privacy_schemas()},
        },
    }
