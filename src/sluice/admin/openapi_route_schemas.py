"""The schemas of what the admin API's routes take and answer, other than the workspace's objects
(`openapi_schemas`, from the workspace's Structs) and the privacy routes' (`openapi_privacy`).

Written by hand, next to the functions that build those answers (`inspection`, `delivery.trace`,
`replays`, `catalog`); the longest, `Stats`, is in `openapi_stats_schema`.
"""

from __future__ import annotations

from sluice.admin.http import MAX_SQL_INT
from sluice.admin.openapi_schemas import (
    ANY,
    BOOL,
    COUNT,
    INT,
    MS,
    REPLAY_ID_REGEX,
    STR,
    TIME,
    Schema,
    nullable,
    object_schema,
    ref,
)
from sluice.admin.openapi_stats_schema import stats_schema


def other_schemas() -> dict[str, Schema]:
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
        "Stats": stats_schema(),
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
