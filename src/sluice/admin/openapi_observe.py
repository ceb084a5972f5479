"""The OpenAPI paths of what the admin API shows of events and delivery: stats, the events and
their trace, rejections, parked and retrying events, replays.

Kept apart from the workspace's paths (`openapi.py`, `openapi_collections.py`): these read and
act on what happened to events, not on the configuration.
"""

from __future__ import annotations

from sluice.admin.http import MAX_SQL_INT
from sluice.admin.openapi_operations import (
    limit_parameter,
    operation_object,
    path_parameter,
    query_parameter,
    responses_object,
)
from sluice.admin.openapi_schemas import (
    ID_REGEX,
    REPLAY_ID_REGEX,
    STR,
    Schema,
    json_content,
    object_schema,
    ref,
)
from sluice.delivery.stats import DEFAULT_TIMELINE_MINUTES, MAX_TIMELINE_MINUTES


def observe_paths() -> Schema:
    replay_id = path_parameter(
        "id", "The replay's id", {"type": "string", "pattern": REPLAY_ID_REGEX}
    )
    return {
        "/stats": {
            "get": operation_object(
                "get_stats",
                "What `sluice status --json` shows",
                "Observe",
                responses_object(200, "Counters and delivery", ref("Stats")),
            )
        },
        "/destinations/{id}/timeline": {
            "parameters": [
                path_parameter(
                    "id", "The destination's id", {"type": "string", "pattern": ID_REGEX}
                )
            ],
            "get": operation_object(
                "get_destination_timeline",
                "What the destination delivered, filtered, parked and retried, minute by minute",
                "Observe",
                responses_object(
                    200,
                    "Every minute of the window, oldest first, the current one last "
                    "(zeros where nothing happened)",
                    {"type": "array", "items": ref("TimelineMinute")},
                    400,
                    404,
                ),
                parameters=[
                    query_parameter(
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
            "get": operation_object(
                "list_events",
                "The newest stored events",
                "Observe",
                responses_object(
                    200,
                    "Newest first",
                    object_schema({"events": {"type": "array", "items": ref("Event")}}),
                    400,
                ),
                parameters=[
                    query_parameter("source", "Only this source id", STR),
                    query_parameter("type", "Only this call type (track, identify, ...)", STR),
                    query_parameter("event", "Only track events of this name", STR),
                    limit_parameter(20),
                    query_parameter(
                        "after",
                        "Only events after this log position (`seq`)",
                        {"type": "integer", "minimum": 0, "maximum": MAX_SQL_INT, "default": 0},
                    ),
                ],
            )
        },
        "/events/{message_id}/trace": {
            "parameters": [path_parameter("message_id", "The event's messageId")],
            "get": operation_object(
                "trace_event",
                "Where one event went: what `sluice trace --json` shows",
                "Observe",
                responses_object(200, "Each stored event with this messageId", ref("Trace"), 404),
            ),
        },
        "/rejected": {
            "get": operation_object(
                "list_rejected",
                "Items the collector refused, and why",
                "Observe",
                responses_object(
                    200,
                    "Newest first",
                    object_schema({"rejected": {"type": "array", "items": ref("Rejected")}}),
                    400,
                ),
                parameters=[
                    query_parameter("source", "Only this source id", STR),
                    limit_parameter(20),
                ],
            )
        },
        "/parked": {
            "get": operation_object(
                "list_parked",
                "Events parked after a permanent error or the retry window",
                "Parked",
                responses_object(
                    200,
                    "Newest first",
                    object_schema({"parked": {"type": "array", "items": ref("Parked")}}),
                    400,
                ),
                parameters=[
                    query_parameter("destination", "Only this destination id", STR),
                    {
                        **query_parameter(
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
                    query_parameter("message_id", "Only this event", STR),
                    limit_parameter(50),
                ],
            )
        },
        "/parked/retry": {
            "post": operation_object(
                "retry_parked",
                "Send parked events again (the worker picks them up within a second)",
                "Parked",
                responses_object(200, "How many were queued", ref("RetryResult"), 400, 422),
                body=json_content(ref("RetryRequest"), {"destination": "hook"}),
            )
        },
        "/retrying": {
            "get": operation_object(
                "list_retrying",
                "Events whose delivery failed and will be tried again (the retry sets)",
                "Retrying",
                responses_object(
                    200,
                    "By destination and log order",
                    object_schema({"retrying": {"type": "array", "items": ref("Retrying")}}),
                    400,
                ),
                parameters=[
                    query_parameter("destination", "Only this destination id", STR),
                    limit_parameter(50),
                ],
            )
        },
        "/retrying/retry": {
            "post": operation_object(
                "retry_now",
                "Make retrying events due now (the worker sends them within a second)",
                "Retrying",
                responses_object(
                    200, "How many are due now", ref("RetryingActionResult"), 400, 422
                ),
                body=json_content(ref("RetryingAction"), {"destination": "hook", "all": True}),
            )
        },
        "/retrying/park": {
            "post": operation_object(
                "park_retrying",
                "Park retrying events now (skip them); they can be sent again from parked",
                "Retrying",
                responses_object(
                    200, "How many were parked", ref("RetryingActionResult"), 400, 422
                ),
                body=json_content(ref("RetryingAction"), {"messageIds": ["m-1"]}),
            )
        },
        "/replays": {
            "get": operation_object(
                "list_replays",
                "Every replay with saved progress, the most recently active first",
                "Replays",
                responses_object(
                    200,
                    "The replays",
                    object_schema({"replays": {"type": "array", "items": ref("Replay")}}),
                ),
            ),
            "post": {
                **operation_object(
                    "start_replay",
                    "Replay archived events to one destination, in the background "
                    "(resumes a replay stopped before its end)",
                    "Replays",
                    responses_object(202, "Started", ref("Replay"), 400, 404, 409, 422),
                    body=json_content(
                        ref("ReplayRequest"),
                        {"destination": "hook", "from": "2024-06-01", "to": "2024-06-02"},
                    ),
                ),
            },
        },
        "/replays/{id}": {
            "parameters": [replay_id],
            "get": operation_object(
                "get_replay",
                "A replay's progress",
                "Replays",
                responses_object(200, "The replay", ref("Replay"), 404, 409),
            ),
        },
        "/replays/{id}/stop": {
            "parameters": [replay_id],
            "post": operation_object(
                "stop_replay",
                "Stop a running replay after its batch in flight",
                "Replays",
                responses_object(202, "Stopping", ref("Replay"), 404, 409),
            ),
        },
    }
