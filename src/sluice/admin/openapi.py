"""The OpenAPI 3.1 document of the admin API, served at `/api/v1/openapi.json`.

Written by hand as data, next to the routes it describes (`app.py`); a test compares the two
route by route, and a schemathesis test checks the server's answers against it. The schemas of
the objects are in `openapi_schemas`, `openapi_route_schemas` and `openapi_stats_schema`; the
operations are built with `openapi_operations`; the collections' paths are in
`openapi_collections`, the paths of events and delivery in `openapi_observe`, the privacy
routes' in `openapi_privacy`.
"""

from __future__ import annotations

import functools
from typing import Any

from sluice.admin.openapi_collections import DOCUMENTED_COLLECTIONS, collection_paths
from sluice.admin.openapi_observe import observe_paths
from sluice.admin.openapi_operations import (
    BOOL_QUERY,
    operation_object,
    path_parameter,
    query_parameter,
    responses_object,
)
from sluice.admin.openapi_privacy import privacy_paths, privacy_schemas
from sluice.admin.openapi_route_schemas import other_schemas
from sluice.admin.openapi_schemas import (
    ID_REGEX,
    Schema,
    json_content,
    object_schema,
    ref,
    workspace_schemas,
)

API_VERSION = "1.0.0"

# --- paths ---------------------------------------------------------------------------------------
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
            "get": operation_object(
                "get_workspace",
                "The whole workspace, as `sluice export` writes it",
                "Workspace",
                {
                    **responses_object(200, "The workspace", None, 400),
                    "200": {
                        "description": "The workspace (JSON, or YAML with format=yaml)",
                        "content": _WORKSPACE_CONTENT,
                    },
                },
                parameters=[
                    query_parameter(
                        "format",
                        "json (default), or yaml: the exact text of `sluice export`",
                        {"enum": ["json", "yaml"], "default": "json"},
                    )
                ],
            ),
            "put": operation_object(
                "put_workspace",
                "Make the workspace match a document, as `sluice apply` does",
                "Workspace",
                responses_object(200, "What changed (or would)", ref("ApplyReport"), 400, 409, 422),
                parameters=[
                    query_parameter(
                        "dry_run", "Report what would change; change nothing", BOOL_QUERY
                    )
                ],
                body={
                    **json_content(ref("Workspace")),
                    "application/yaml": {"schema": ref("Workspace")},
                },
            ),
        },
        "/destination-types": {
            "get": operation_object(
                "list_destination_types",
                "The catalog: every destination type, its settings schema, actions, presets",
                "Destinations",
                responses_object(
                    200,
                    "Every type, by id",
                    object_schema(
                        {"destination_types": {"type": "array", "items": ref("DestinationType")}}
                    ),
                ),
            )
        },
        "/destination-types/{type_id}": {
            "parameters": [path_parameter("type_id", "The type's id, e.g. amplitude")],
            "get": operation_object(
                "get_destination_type",
                "One destination type",
                "Destinations",
                responses_object(200, "The type", ref("DestinationType"), 404),
            ),
        },
    }
    for collection, kind, schema, tag in DOCUMENTED_COLLECTIONS:
        paths.update(collection_paths(collection, kind, schema, tag))
    paths["/sources/{id}/rotate-write-key"] = {
        "parameters": [
            path_parameter("id", "The source's id", {"type": "string", "pattern": ID_REGEX})
        ],
        "post": operation_object(
            "rotate_write_key",
            "Give a source a new generated write key",
            "Sources",
            responses_object(
                200, "The source and its new key", ref("WriteKeyRotation"), 400, 404, 409
            ),
            parameters=[
                query_parameter(
                    "keep_old", "Keep the old keys too, for a gradual change", BOOL_QUERY
                )
            ],
        ),
    }
    paths.update(observe_paths())
    return paths


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The document (built once: it depends on nothing that changes while Sluice runs)."""
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
