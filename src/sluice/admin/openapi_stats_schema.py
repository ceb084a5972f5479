"""The schema of the admin API's `Stats` answer (`GET /stats`): what `sluice status --json` shows.

The longest of the document's schemas, with a part for each component that reports (sources,
destinations, warehouses, workers, the bridge, the archive, identity, regulations, log reads):
kept apart from the routes' other schemas (`openapi_route_schemas`) so neither module runs long.
"""

from __future__ import annotations

from sluice.admin.openapi_schemas import INT, STR, TIME, Schema, nullable, object_schema


def stats_schema() -> Schema:
    """The `Stats` component (`other_schemas` lists it in its place)."""
    count_map: Schema = {"type": "object", "additionalProperties": INT}
    latency = object_schema({"p50": nullable(INT), "p95": nullable(INT), "p99": nullable(INT)})
    return object_schema(
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
    )
