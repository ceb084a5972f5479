"""Log retention: drop the log's oldest events once nothing needs them any more.

An event may go when it is older than `log_retention_days` and every consumer that reads the
log has passed it: each enabled destination (its plain cursor, kept at its lowest partition's),
the archive, each warehouse loader (whose position is kept in the warehouse itself) and every
event still in a retry set (its row keeps the body, but `sluice trace` reads the log). A
consumer that has no position yet holds everything back, so a new or stuck consumer never loses
events to the trim. The store drops whole ranges
(partitions on PostgreSQL, short slices on SQLite), so the trim never holds up ingest.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sluice.archive.writer import CURSOR as ARCHIVE_CURSOR
from sluice.config import Settings
from sluice.delivery.config import DestinationConfigError, compile_destination
from sluice.delivery.partitions import cursor_name
from sluice.devicemode import is_device_mode
from sluice.errors import SluiceError
from sluice.failure_log import FailureLog
from sluice.store.base import Store
from sluice.warehouse.factory import (
    duckdb_path,
    open_backend,
    parse_warehouse_config,
    warehouse_bodies,
)

log = logging.getLogger(__name__)
RETENTION_INTERVAL_S = 60.0
DAY_MS = 86_400_000


class RetentionWaits(SluiceError):
    """A position the trim must know cannot be read now (a warehouse or the identity graph
    unreachable): nothing is trimmed this round, the log is only kept longer."""

    def __init__(self, what: str, cause: Exception) -> None:
        super().__init__(f"nothing trimmed while {what} cannot be read: {cause}")


def consumers_of(store: Store) -> list[str]:
    """The cursor names in the store whose positions bound what may be trimmed."""
    names = [ARCHIVE_CURSOR]
    for obj in store.list_config("destination"):
        if is_device_mode(obj.body):
            continue  # runs in the page: reads nothing of the log
        try:
            if not compile_destination(obj.body).enabled:
                continue
        except (DestinationConfigError, SluiceError):
            pass  # a destination that cannot be compiled still holds its events back
        names.append(cursor_name(obj.id))
    return names


def warehouse_positions(settings: Settings, store: Store) -> list[int]:
    """How far each warehouse has loaded (its position lives in the warehouse); raises
    `RetentionWaits` when one cannot be read now.

    With loads left to `sluice load` (interval 0), a warehouse that never loaded holds nothing
    back; otherwise it holds everything it has not loaded.
    """
    positions: list[int] = []
    for body in warehouse_bodies(store):
        config = None
        try:
            config = parse_warehouse_config(body)
            if config.type == "duckdb" and not duckdb_path(config, settings.data_dir).exists():
                position = 0
            else:
                backend = open_backend(config, settings.data_dir)
                try:
                    position = backend.position(config.id)
                finally:
                    backend.close()
        except Exception as exc:  # e.g. DuckDB's file is held by a load, a bucket missing
            name = f"warehouse {config.id}" if config is not None else "a warehouse"
            raise RetentionWaits(f"{name}'s position", exc) from exc
        if position or settings.warehouse_interval_s > 0:
            positions.append(position)
    return positions


def identity_position(settings: Settings, store: Store) -> int | None:
    """How far the identity graph, and Engage when it has definitions, have read (each keeps
    its position in its own tables); None when identity is off. One that fell behind holds the
    log back: trimming what it has not read would leave its profiles (or computed traits)
    without those events until a rebuild, which could not find them."""
    from sluice.engage.position import read_position as engage_position
    from sluice.engage.runner import workspace_definitions
    from sluice.identity.consumer import read_position
    from sluice.identity.runner import workspace_rules
    from sluice.identity.tables import has_table, open_identity_db

    space, rules = workspace_rules(store)
    if not rules.enabled:
        return None
    # Engage reads the log behind the graph, as far as its own position: while it has
    # definitions, it holds the log back too.
    engaged = not workspace_definitions(store)[1].empty
    db = open_identity_db(settings.data_dir, settings.database_url)
    try:
        position = read_position(db, space)
        seq = position.seq if position is not None else 0
        if engaged:
            found = engage_position(db, space) if has_table(db, "engage_position") else None
            seq = min(seq, found.seq if found is not None else 0)
    finally:
        db.close()
    return seq


def trim_once(store: Store, settings: Settings, now_ms: int | None = None) -> int:
    """Trim what retention allows now; returns the number of events dropped. Raises
    `RetentionWaits` when a warehouse's or the identity graph's position cannot be read."""
    if settings.log_retention_days <= 0:
        return 0
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    cursors = store.cursors()
    names = consumers_of(store)
    if any(name not in cursors for name in names):
        return 0  # a consumer that never committed holds everything
    positions = [cursors[name] for name in names]
    positions.extend(warehouse_positions(settings, store))
    try:
        identity = identity_position(settings, store)
    except Exception as exc:  # its database is busy or down: try next round
        raise RetentionWaits("the identity graph's position", exc) from exc
    if identity is not None:
        positions.append(identity)
    oldest_retrying = store.oldest_retrying_seq()
    if oldest_retrying is not None:  # retry-set rows keep their bodies, but trace reads the log
        positions.append(oldest_retrying - 1)
    up_to = min(positions)
    before_ms = now_ms - int(settings.log_retention_days * DAY_MS)
    return store.trim_log(up_to, before_ms)


async def run_retention(settings: Settings, store: Store) -> None:
    """What the worker runs (one worker at a time, by lease): trim every minute."""
    if settings.log_retention_days <= 0:
        return
    failures = FailureLog(log, "log retention")
    while True:
        try:
            dropped = await asyncio.to_thread(trim_once, store, settings)
        except RetentionWaits as exc:  # nothing lost: the log is kept a little longer
            failures.failed(exc, RETENTION_INTERVAL_S, level=logging.INFO)
        except Exception as exc:
            failures.failed(exc, RETENTION_INTERVAL_S, level=logging.ERROR)
        else:
            failures.succeeded()
            if dropped:
                log.info("log retention dropped %d events", dropped)
        await asyncio.sleep(RETENTION_INTERVAL_S)
