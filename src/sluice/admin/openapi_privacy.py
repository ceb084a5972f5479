"""The OpenAPI entries of the privacy routes (`admin/regulations.py`): paths and schemas.

Kept apart from `openapi.py` (a module per concept); it builds its operations with
`openapi_operations`, as the document's other paths do.
"""

from __future__ import annotations

from sluice.admin import openapi_operations as doc
from sluice.admin.openapi_schemas import (
    COUNT,
    STR,
    TIME,
    Schema,
    json_content,
    nullable,
    object_schema,
    ref,
)
from sluice.admin.regulations import DEFAULT_LIST
from sluice.privacy.regulation import (
    MAX_ID_LENGTH,
    MAX_SUBJECT_IDS,
    REGULATION_TYPES,
    STATUSES,
    SUBJECT_TYPES,
)

TAG = "Privacy"
_EXAMPLE = {
    "regulationType": "SUPPRESS_WITH_DELETE",
    "subjectType": "USER_ID",
    "subjectIds": ["u1"],
}


def privacy_schemas() -> dict[str, Schema]:
    target = object_schema(
        {
            "name": {**STR, "description": "log, archive, profiles, warehouse:<id>, ..."},
            "status": {
                "type": "string",
                "enum": ["FINISHED", "FAILED", "NOT_SUPPORTED", "RETRYING"],
            },
            "detail": STR,
            "removed": COUNT,
            "updatedAt": TIME,
        }
    )
    return {
        "RegulationRequest": object_schema(
            {
                "regulationType": {"type": "string", "enum": list(REGULATION_TYPES)},
                "subjectType": {"type": "string", "enum": list(SUBJECT_TYPES)},
                "subjectIds": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_SUBJECT_IDS,
                    "items": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
                },
            }
        ),
        "RegulationCreated": object_schema({"data": object_schema({"regulateId": STR})}),
        "Regulation": object_schema(
            {
                "id": STR,
                "sourceId": nullable(STR),
                "overallStatus": {"type": "string", "enum": list(STATUSES)},
                "regulationType": {"type": "string", "enum": list(REGULATION_TYPES)},
                "subjectType": {"type": "string", "enum": list(SUBJECT_TYPES)},
                "subjectCount": COUNT,
                "detail": STR,
                "createdAt": TIME,
                "updatedAt": TIME,
                "finishedAt": nullable(TIME),
                "targets": {"type": "array", "items": target},
            },
            optional=("targets",),
        ),
        "Suppression": object_schema(
            {
                "subjectType": STR,
                "subjectHash": {**STR, "description": "SHA-256 of the user id, hex"},
                "regulateId": STR,
                "createdAt": TIME,
            }
        ),
    }


def _list(name: str, item: str) -> Schema:
    return object_schema({"data": object_schema({name: {"type": "array", "items": ref(item)}})})


def privacy_paths() -> Schema:
    source = doc.path_parameter("source_id", "A source's id")
    status = doc.query_parameter(
        "status", "Only regulations in this status", {"type": "string", "enum": list(STATUSES)}
    )
    create_responses = doc.responses_object(200, "Recorded", ref("RegulationCreated"), 400, 422)
    listed = doc.responses_object(200, "Newest first", _list("regulations", "Regulation"), 400)
    body = json_content(ref("RegulationRequest"), _EXAMPLE)
    return {
        "/regulations": {
            "post": doc.operation_object(
                "create_workspace_regulation",
                "Suppress and/or delete users' data, workspace-wide"
                " (Segment's createWorkspaceRegulation)",
                TAG,
                create_responses,
                body=body,
            ),
            "get": doc.operation_object(
                "list_regulations",
                "Regulations, newest first",
                TAG,
                listed,
                parameters=[status, doc.limit_parameter(DEFAULT_LIST)],
            ),
        },
        "/regulations/sources/{source_id}": {
            "parameters": [source],
            "post": doc.operation_object(
                "create_source_regulation",
                "A regulation scoped to one source's data (its log rows and archive files)",
                TAG,
                doc.responses_object(200, "Recorded", ref("RegulationCreated"), 400, 404, 422),
                body=body,
            ),
            "get": doc.operation_object(
                "list_source_regulations",
                "The source's regulations, newest first",
                TAG,
                doc.responses_object(
                    200, "Newest first", _list("regulations", "Regulation"), 400, 404
                ),
                parameters=[status, doc.limit_parameter(DEFAULT_LIST)],
            ),
        },
        "/regulations/{regulate_id}": {
            "parameters": [doc.path_parameter("regulate_id", "The regulation's id")],
            "get": doc.operation_object(
                "get_regulation",
                "A regulation and the status of each place its deletion reaches",
                TAG,
                doc.responses_object(
                    200,
                    "The regulation",
                    object_schema({"data": object_schema({"regulation": ref("Regulation")})}),
                    404,
                ),
            ),
        },
        "/suppressions": {
            "get": doc.operation_object(
                "list_suppressions",
                "Suppressed user ids (their events are counted and dropped at ingest)",
                TAG,
                doc.responses_object(
                    200, "Newest first", _list("suppressions", "Suppression"), 400
                ),
                parameters=[doc.limit_parameter(DEFAULT_LIST)],
            ),
        },
    }
