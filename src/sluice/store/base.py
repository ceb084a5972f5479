"""The store protocol: what every backend (SQLite on one machine, PostgreSQL beyond) provides.

The store owns three things: the event log (append-only, ordered by `seq`), the control plane
(the workspace: sources, destinations, warehouses, tracking plans) and counters. Collectors append
through `append`, consumers read the log with `read_after` from a cursor they commit with
`commit_cursor`. Backends are synchronous; async callers run them on a worker thread.

Cursor contract (so the PostgreSQL backend's concurrent writers fit it): `read_after`
only returns events whose sequence number is final, i.e. no event with a smaller `seq` can appear
later. SQLite has a single writer, so every committed `seq` is final; PostgreSQL must hold back rows
above the oldest in-flight transaction.

Each part of the protocol is a module of its own, with its record types: the log, cursors,
counters and control plane (`base_event_store.py`), delivery state (`base_delivery.py`), leases,
process reports, unit stats and OAuth tokens (`base_workers.py`), privacy (`base_privacy.py`).
`Store` composes them here.
"""

from __future__ import annotations

from typing import Protocol

from sluice.store.base_delivery import DeliveryState
from sluice.store.base_event_store import (
    AppendBatch,
    ConfigObject,
    EventStore,
    NewEvent,
    StoredEvent,
)
from sluice.store.base_privacy import Regulations
from sluice.store.base_workers import Leases, OAuthTokens, ProcessReports, UnitStats

# Re-exported: dozens of modules import these five from here (the other records and protocols
# are imported from the module that defines them).
__all__ = ["AppendBatch", "ConfigObject", "EventStore", "NewEvent", "Store", "StoredEvent"]


class Store(
    EventStore,
    DeliveryState,
    Leases,
    ProcessReports,
    UnitStats,
    OAuthTokens,
    Regulations,
    Protocol,
):
    """Everything a backend provides: the log, the control plane, delivery state and leases."""
