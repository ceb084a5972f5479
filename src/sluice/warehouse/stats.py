"""Warehouse stats for `sluice status`: how far each warehouse has loaded, its discards, and the
event names that load into `tracks` only because their source has all its event tables."""

from __future__ import annotations

from typing import Any

from sluice.config import Settings
from sluice.store.base import EventStore
from sluice.warehouse.factory import (
    duckdb_path,
    open_backend,
    parse_warehouse_config,
    warehouse_bodies,
)

MAX_COUNTED_DISCARDS = 100_000


def warehouse_stats(settings: Settings, store: EventStore) -> dict[str, dict[str, Any]]:
    """Per warehouse: its load position, lag behind the log, discarded values; or why not."""
    log_end = store.last_seq()
    result: dict[str, dict[str, Any]] = {}
    for body in warehouse_bodies(store):
        try:
            config = parse_warehouse_config(body)
        except Exception as exc:  # a stored object that cannot be read: say so, go on
            result[f"(unreadable {len(result)})"] = {"error": str(exc)}
            continue
        if config.type == "duckdb" and not duckdb_path(config, settings.data_dir).exists():
            result[config.id] = {
                "type": config.type,
                "position": 0,
                "lag": log_end,
                "discards": 0,
                "capped_names": 0,
                "capped_events": 0,
            }
            continue
        try:
            backend = open_backend(config, settings.data_dir)
            try:
                position = backend.position(config.id)
                discards = len(backend.discards(MAX_COUNTED_DISCARDS))
                capped = backend.capped_events()
            finally:
                backend.close()
        except Exception as exc:  # e.g. DuckDB's file is locked by a load in progress
            result[config.id] = {"type": config.type, "error": str(exc)}
            continue
        result[config.id] = {
            "type": config.type,
            "position": position,
            "lag": max(log_end - position, 0),
            "discards": discards,
            # Event names with no table of their own (max_event_tables), and their tracks.
            "capped_names": len(capped),
            "capped_events": sum(c.events for c in capped),
        }
    return result
