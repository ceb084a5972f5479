"""The schemas of the admin API's OpenAPI document: the objects its requests and answers hold.

The workspace objects' schemas are not written here: they come from the workspace's own Structs
(msgspec), the types `sluice apply` checks files with, so the document cannot drift from the
rules. The rest is written by hand, next to the functions that build those answers
(`inspection`, `delivery.trace`, `replays`, `catalog`).
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from sluice.admin.http import MAX_SQL_INT
from sluice.admin.replays import MAX_TIME_MS, REPLAY_ID
from sluice.workspace.model import ID_PATTERN, Workspace

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


def other_schemas() -> dict[str, Schema]:
    count_map: Schema = {"type": "object", "additionalProperties": INT}
    latency = object_schema({"p50": nullable(INT), "p95": nullable(INT), "p99": nullable(INT)})
    return {
        "Error": object_schema(
            {
                "code": {**STR, "description": "Stable, for programs: not_found, invalid, ..."},
                "message": {**STR, "description": "For people"},
                "field": {**STR, "description": "The field at fault, when there is one"},
            },
            optional=("field",),
        ),
        "ApplyReport": object_schema(
            {
                "changed": BOOL,
                "dry_run": BOOL,
                "created": {"type": "array", "items": STR, "description": "`kind/id`"},
                "updated": {"type": "array", "items": STR},
                "deleted": {"type": "array", "items": STR},
                "generated_keys": {
                    "type": "object",
                    "additionalProperties": nullable(STR),
                    "description": "Write keys generated for sources listed without any "
                    "(null on a dry run: a key would be generated)",
                },
            }
        ),
        "WriteKeyRotation": object_schema({"source": ref("Source"), "write_key": STR}),
        "DestinationType": object_schema(
            {
                "id": STR,
                "name": {**STR, "description": "The name the `integrations` object uses"},
                "aliases": {"type": "array", "items": STR},
                "default_endpoint": STR,
                "timeout_s": {"type": "number"},
                "settings_schema": {"type": "object", "description": "JSON Schema"},
                "actions": {
                    "type": "array",
                    "items": object_schema(
                        {"id": STR, "title": STR, "max_batch": INT, "max_batch_bytes": INT}
                    ),
                },
                "presets": {
                    "type": "array",
                    "items": object_schema(
                        {
                            "name": STR,
                            "action": STR,
                            "trigger": STR,
                            "mapping": {"type": "object"},
                        }
                    ),
                },
            }
        ),
        "Stats": object_schema(
            {
                "sources": {
                    "type": "object",
                    "additionalProperties": count_map,
                    "description": "Counters per source id: received, stored, rejected:<reason>...",
                },
                "log_end": INT,
                "destinations": {
                    "type": "object",
                    "additionalProperties": object_schema(
                        {
                            "delivered": INT,
                            "filtered": INT,
                            "filtered_by_reason": count_map,
                            "retrying": INT,
                            "waiting": {
                                **INT,
                                "description": "Events waiting behind their user's retrying one",
                            },
                            "parked": INT,
                            "parked_total": INT,
                            "latency_ms": latency,
                            "lag": nullable(INT),
                            "filter_errors": {
                                "type": "array",
                                "items": STR,
                                "description": "Filters that do not compile (drop everything)",
                            },
                            "state": object_schema(
                                {
                                    "state": {"enum": ["running", "paused", "not_started"]},
                                    "detail": {**STR, "description": "Why it is paused"},
                                    "since": nullable(INT),
                                }
                            ),
                        }
                    ),
                },
                "warehouses": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "description": (
                            "type, position, lag, discards, capped_names, capped_events; or error"
                        ),
                    },
                },
                "workers": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "description": (
                            "lane (delivery or batch), host, pid, cpu_s, rss_mib, restarts,"
                            " started_at, reported_at, units: {name: {lag}}"
                        ),
                    },
                    "description": (
                        "Live worker processes (by lease holder) and the consumers each runs"
                    ),
                },
                "bridge": {
                    "type": "object",
                    "additionalProperties": object_schema(
                        {
                            "healthy": {"type": "boolean"},
                            "node_pid": nullable(INT),
                            "rss_mib": {"type": "number"},
                            "restarts": INT,
                            "reported_at": TIME,
                        }
                    ),
                    "description": (
                        "The Node sidecar (Segment's destinations) of each worker process that"
                        " runs one, by host:pid, as it last reported"
                    ),
                },
                "archive": {
                    "type": "object",
                    "description": (
                        "storage (local or s3), where (folder, or s3://bucket/prefix at"
                        " endpoint); for s3: uploads, upload_bytes, upload_failures,"
                        " pending_files, failing (null or unavailable, credentials,"
                        " bucket_missing, checksum, error), failing_since, last_upload"
                    ),
                },
                "identity": {
                    "type": "object",
                    "additionalProperties": object_schema(
                        {
                            "position": INT,
                            "lag": INT,
                            "merges": INT,
                            "merges_refused": INT,
                            "ids_demoted": INT,
                            "rebuild_needed": {"type": "boolean"},
                            "wal": {
                                "type": "boolean",
                                "description": "identity.db's checkpoints reported (SQLite)",
                            },
                            "wal_checkpoints": INT,
                            "wal_checkpoint_failures": INT,
                            "wal_checkpoint_failing": {"type": "boolean"},
                            "wal_restarts_refused": INT,
                            "wal_bytes": INT,
                            "reported_at": TIME,
                        }
                    ),
                    "description": (
                        "Each workspace's identity graph, as its consumer last reported"
                        " (docs/identity.md#watching-it)"
                    ),
                },
                "regulations": {
                    **count_map,
                    "description": "Privacy regulations by overall status (docs/privacy.md)",
                },
                "log_reads": {
                    **object_schema({"texts_replaced": INT, "compiled_reader_failures": INT}),
                    "description": (
                        "What reads of a SQLite log met: texts not UTF-8 read with U+FFFD,"
                        " compiled readers that failed (docs/metrics.md); zeros on PostgreSQL"
                    ),
                },
            }
        ),
        "Event": object_schema(
            {
                "seq": {**INT, "description": "Position in the log"},
                "source": STR,
                "messageId": STR,
                "type": STR,
                "event": nullable(STR),
                "receivedAt": TIME,
                "payload": {"type": "object", "description": "The event as stored"},
            }
        ),
        "Trace": object_schema(
            {
                "messageId": STR,
                "found": {
                    "type": "array",
                    "items": object_schema(
                        {
                            "messageId": STR,
                            "source": STR,
                            "seq": INT,
                            "type": STR,
                            "event": nullable(STR),
                            "receivedAt": TIME,
                            "destinations": {"type": "array", "items": ref("Hop")},
                        }
                    ),
                },
            }
        ),
        "Hop": {
            **object_schema(
                {
                    "destination": STR,
                    "status": {
                        "enum": [
                            "delivered",
                            "delivered_after_resend",
                            "filtered",
                            "retrying",
                            "waiting",
                            "parked",
                            "pending",
                            "destination_disabled",
                            "not_sent",
                            "not_configured",
                        ]
                    },
                    "type": STR,
                },
                optional=("type",),
                extra=True,
            ),
            "description": "What happened at one destination; the other fields depend on status",
        },
        "Rejected": object_schema(
            {
                "id": INT,
                "source": STR,
                "reason": STR,
                "detail": STR,
                "receivedAt": TIME,
                "item": {**STR, "description": "The item as received"},
            }
        ),
        "Parked": object_schema(
            {
                "id": INT,
                "destination": STR,
                "messageId": STR,
                "parkedAt": TIME,
                "reason": STR,
                "attempts": INT,
                "state": {"enum": ["parked", "retry_requested", "resent"]},
                "request": {**ANY, "description": "The request that failed"},
                "response": {**ANY, "description": "What the destination answered"},
            }
        ),
        "RetryRequest": object_schema(
            {
                "ids": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 1, "maximum": MAX_SQL_INT},
                    "default": [],
                },
                "destination": nullable(STR),
            },
            optional=("ids", "destination"),
        ),
        "RetryResult": object_schema({"queued": INT}),
        "Retrying": object_schema(
            {
                "destination": STR,
                "messageId": STR,
                "seq": INT,
                "action": nullable(STR),
                "state": {"enum": ["retrying", "waiting"]},
                "attempts": INT,
                "firstFailure": TIME,
                "nextAttempt": {**nullable(TIME), "description": "None while waiting"},
                "lastError": STR,
                "request": {**ANY, "description": "The last request that failed"},
                "response": {**ANY, "description": "What the destination answered"},
            }
        ),
        "RetryingAction": object_schema(
            {
                "destination": nullable(STR),
                "messageIds": {"type": "array", "items": STR, "default": []},
                "all": {
                    **BOOL,
                    "default": False,
                    "description": "Every retrying event (of the destination, if given)",
                },
            },
            optional=("destination", "messageIds", "all"),
        ),
        "RetryingActionResult": object_schema({"count": INT}),
        "TimelineMinute": object_schema(
            {
                "minute": {**TIME, "description": "The minute's start, UTC"},
                "delivered": {**COUNT, "description": "Events delivered in the minute"},
                "filtered": {**COUNT, "description": "Events not sent by a rule, any reason"},
                "parked": {**COUNT, "description": "Events parked, any reason"},
                "retrying": {**COUNT, "description": "The most events retrying at once"},
            }
        ),
        "ReplayRequest": object_schema(
            {
                "destination": STR,
                "from": {
                    "anyOf": [STR, MS],
                    "description": "Start (inclusive) of receivedAt: ISO-8601 or epoch ms",
                },
                "to": {
                    "anyOf": [STR, MS],
                    "description": "End (exclusive): ISO-8601 or epoch ms",
                },
                "source": nullable(STR),
                "type": nullable(STR),
                "event": nullable(STR),
                "rate": {
                    "type": "number",
                    "minimum": 0,
                    "default": 1000,
                    "description": "Events per second; 0: no limit",
                },
                "restart": {**BOOL, "default": False},
            },
            optional=("source", "type", "event", "rate", "restart"),
        ),
        "Replay": object_schema(
            {
                "id": {"type": "string", "pattern": REPLAY_ID_REGEX},
                "destination": STR,
                "from": TIME,
                "to": TIME,
                "source": nullable(STR),
                "type": nullable(STR),
                "event": nullable(STR),
                "read": INT,
                "sent": INT,
                "filtered": INT,
                "parked": INT,
                "done": BOOL,
                "running": BOOL,
                "stopping": BOOL,
                "position": object_schema({"file": STR, "line": INT}),
                "error": nullable(STR),
            }
        ),
    }
