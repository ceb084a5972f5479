"""The builders every path of the admin API's OpenAPI document is written with: an operation,
its responses (the errors each may answer, all with the `Error` schema) and its parameters.

Apart from the paths themselves (`openapi.py`, `openapi_collections.py`, `openapi_observe.py`,
`openapi_privacy.py`) so that each of those modules imports them without importing another.
"""

from __future__ import annotations

from sluice.admin.openapi_schemas import STR, Schema, json_content, ref

_ERRORS = {
    400: "The request cannot be read: a bad query parameter, or a body that is not JSON",
    401: "No bearer token, or not a valid one",
    404: "No such object",
    409: "The request conflicts with the current state (the `code` says how)",
    422: "The change breaks a rule of the workspace; `field` names the field at fault",
}


def responses_object(ok: int, description: str, schema: Schema | None, *errors: int) -> Schema:
    responses: Schema = {str(ok): {"description": description}}
    if schema is not None:
        responses[str(ok)]["content"] = json_content(schema)
    for status in (401, *errors):
        responses[str(status)] = {
            "description": _ERRORS[status],
            "content": json_content(ref("Error")),
        }
    return responses


def operation_object(
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


def path_parameter(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or STR,
    }


def query_parameter(name: str, description: str, schema: Schema) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_LIMIT_SCHEMA: Schema = {"type": "integer", "minimum": 1, "maximum": 1000}


def limit_parameter(default: int) -> Schema:
    return query_parameter("limit", "How many, newest first", {**_LIMIT_SCHEMA, "default": default})


BOOL_QUERY: Schema = {"type": "boolean", "default": False}
