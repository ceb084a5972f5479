"""The OpenAPI paths of the admin API's three collections: sources, destinations, warehouses.

Each has the same operations (list, create, get, replace, patch, delete; enable and disable for
sources and destinations), built from one template with example bodies per kind: kept apart
from the document's other paths (`openapi.py`) as the one place that template lives.
"""

from __future__ import annotations

from typing import Any

from sluice.admin.openapi_operations import operation_object, path_parameter, responses_object
from sluice.admin.openapi_schemas import ID_REGEX, Schema, json_content, object_schema, ref

# Each collection with paths in the document: its path segment, the kind of object it holds, the
# object's schema and the operations' tag.
DOCUMENTED_COLLECTIONS = (
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


def collection_paths(collection: str, kind: str, schema: str, tag: str) -> Schema:
    id_param = path_parameter("id", f"The {kind}'s id", {"type": "string", "pattern": ID_REGEX})
    paths: Schema = {
        f"/{collection}": {
            "get": operation_object(
                f"list_{collection}",
                f"List the {collection}",
                tag,
                responses_object(
                    200,
                    f"Every {kind}, by id",
                    object_schema({collection: {"type": "array", "items": ref(schema)}}),
                ),
            ),
            "post": operation_object(
                f"create_{kind}",
                f"Create a {kind} (checked as `sluice apply` checks a file)",
                tag,
                responses_object(201, f"The {kind} as stored", ref(schema), 400, 409, 422),
                body=json_content(ref(schema), _EXAMPLES[kind]["create"]),
            ),
        },
        f"/{collection}/{{id}}": {
            "parameters": [id_param],
            "get": operation_object(
                f"get_{kind}",
                f"Get one {kind}",
                tag,
                responses_object(200, f"The {kind}", ref(schema), 404),
            ),
            "put": operation_object(
                f"replace_{kind}",
                f"Replace a {kind} (fields left out take their defaults"
                + (", except write keys, which are kept" if kind == "source" else "")
                + ")",
                tag,
                responses_object(200, f"The {kind} as stored", ref(schema), 400, 404, 409, 422),
                body=json_content(ref(f"{schema}Replace"), _EXAMPLES[kind]["replace"]),
            ),
            "patch": operation_object(
                f"patch_{kind}",
                f"Change some top-level fields of a {kind}",
                tag,
                responses_object(200, f"The {kind} as stored", ref(schema), 400, 404, 409, 422),
                body=json_content(ref(f"{schema}Patch"), _EXAMPLES[kind]["patch"]),
            ),
            "delete": operation_object(
                f"delete_{kind}",
                f"Delete a {kind} (409 `in_use` while other objects refer to it)",
                tag,
                responses_object(204, "Deleted", None, 404, 409),
            ),
        },
    }
    if kind in ("source", "destination"):
        for verb in ("enable", "disable"):
            paths[f"/{collection}/{{id}}/{verb}"] = {
                "parameters": [id_param],
                "post": operation_object(
                    f"{verb}_{kind}",
                    f"{verb.capitalize()} a {kind}",
                    tag,
                    responses_object(200, f"The {kind} as stored", ref(schema), 404, 409, 422),
                ),
            }
    return paths
