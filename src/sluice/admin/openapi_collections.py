"""The OpenAPI paths of the admin API's three collections: sources, destinations, warehouses.

Each has the same operations (list, create, get, replace, patch, delete; enable and disable for
sources and destinations), built from one template with example bodies per kind: kept apart
from the document's other paths (`openapi.py`) as the one place that template lives.
"""

from __future__ import annotations

from typing import Any

from sluice.admin.openapi_operations import _operation, _path_param, _responses
from sluice.admin.openapi_schemas import ID_REGEX, Schema, json_content, object_schema, ref

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
