"""The schemas of the admin API's OpenAPI document: the objects its requests and answers hold.

Here: what every schema is written with (`ref`, `object_schema`, the common types), and the
workspace objects' schemas, which are not written by hand: they come from the workspace's own
Structs (msgspec), the types `sluice apply` checks files with, so the document cannot drift from
the rules. The rest is written by hand, next to the functions that build those answers
(`inspection`, `delivery.trace`, `replays`, `catalog`): in `openapi_route_schemas`,
`openapi_stats_schema` and `openapi_privacy`.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from sluice.admin.replays import MAX_TIME_MS, REPLAY_ID
from sluice.workspace.model import Workspace
from sluice.workspace.model_types import ID_PATTERN

Schema = dict[str, Any]

# Python's `\Z` (end of text) is `$` in the ECMA-262 dialect JSON Schema uses.
ID_REGEX = ID_PATTERN.replace("\\Z", "$")
REPLAY_ID_REGEX = "^" + REPLAY_ID.pattern.replace("\\Z", "$")


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: Schema, example: Any = None) -> Schema:
    media: Schema = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"application/json": media}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def object_schema(
    properties: Schema, *, optional: tuple[str, ...] = (), extra: bool = False
) -> Schema:
    """An object whose properties are all present except `optional` ones."""
    schema: Schema = {"type": "object", "properties": properties}
    required = [name for name in properties if name not in optional]
    if required:
        schema["required"] = required
    if not extra:
        schema["additionalProperties"] = False
    return schema


INT: Schema = {"type": "integer"}
STR: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "description": "UTC, `YYYY-MM-DDTHH:MM:SS.mmmZ`"}
ANY: Schema = {"description": "Any JSON value"}
MS: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_TIME_MS}
COUNT: Schema = {"type": "integer", "minimum": 0}


# --- the workspace's own schemas -----------------------------------------------------------------
def _ecma_patterns(schema: Any) -> Any:
    """The same schema with Python's `\\Z` anchors written as `$`, and no empty `required`."""
    if isinstance(schema, dict):
        result = {key: _ecma_patterns(value) for key, value in schema.items()}
        if isinstance(result.get("pattern"), str):
            result["pattern"] = result["pattern"].replace("\\Z", "$")
        if result.get("required") == []:
            del result["required"]
        return result
    if isinstance(schema, list):
        return [_ecma_patterns(item) for item in schema]
    return schema


def workspace_schemas() -> dict[str, Schema]:
    _, components = msgspec.json.schema_components(
        [Workspace], ref_template="#/components/schemas/{name}"
    )
    schemas: dict[str, Schema] = _ecma_patterns(components)
    for name in ("Source", "Destination", "Warehouse"):
        # PUT takes the id from the path; PATCH takes any subset of the fields.
        replace = copy.deepcopy(schemas[name])
        replace["required"] = [f for f in replace.get("required", []) if f != "id"]
        if not replace["required"]:
            del replace["required"]
        replace["title"] = f"{name}Replace"
        schemas[f"{name}Replace"] = replace
        patch = copy.deepcopy(schemas[name])
        patch.pop("required", None)
        patch["title"] = f"{name}Patch"
        for field in patch["properties"].values():
            field.pop("default", None)  # a field left out of a patch keeps its value
        schemas[f"{name}Patch"] = patch
    return schemas
