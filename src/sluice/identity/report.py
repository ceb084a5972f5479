"""What the identity consumer reports of itself, for `/metrics` and `sluice status`.

The graph's own counters live in its tables (identity_position), which the metrics collector
and `sluice status` do not open; the WAL checkpoints of identity.db are known only to the worker
process running the consumer. So the worker copies both into the store's unit stats (as the
archive's uploads and the bridge's sidecar do) every few seconds, and at once when checkpoints
start or stop failing: a failing checkpoint is a metric and a status line, not only a log line.
"""

from __future__ import annotations

import time
from typing import Any

from sluice.identity.consumer import read_position
from sluice.identity.tables import IdentityDb
from sluice.spec.timestamps import format_ms
from sluice.store.base_workers import UnitStats

UNIT_PREFIX = "identity:"  # + the space
REPORT_EVERY_S = 5.0  # at most, while the graph moves
HEARTBEAT_S = 60.0  # while it does not (an idle graph rewrites nothing more often)
# Checkpointer attributes that only grow: reported as counters (the difference since the last).
_COUNTED = {"checkpoints": "checkpoints", "restarts_refused": "restarts_refused",
            "failures_total": "checkpoint_failures"}  # fmt: skip


class IdentityReporter:
    """Copies a consumer's position and counters, and its checkpointer's, into unit stats."""

    def __init__(self, stats: UnitStats, db: IdentityDb) -> None:
        self.stats, self.db = stats, db
        self._last_s = -float("inf")
        self._reported = dict.fromkeys(_COUNTED, 0)
        self._failing = False
        self._graph: dict[str, int] = {}

    def report(self, space: str, force: bool = False) -> bool:
        """Report when checkpoints started or stopped failing, when the graph moved and
        `REPORT_EVERY_S` passed, every `HEARTBEAT_S`, or when `force`d; whether it did."""
        checkpointer = self.db.checkpointer
        failing = bool(checkpointer is not None and checkpointer.failures)
        since = time.monotonic() - self._last_s
        if not force and failing == self._failing and since < REPORT_EVERY_S:
            return False
        position = read_position(self.db, space)
        if position is None:
            return False
        graph = {
            "position": position.seq,
            "events": position.events,
            "merges": position.merges,
            "refused": position.refused,
            "demoted": position.demoted,
            "rebuild_needed": int(position.rebuild_needed),
        }
        moved = graph != self._graph or failing != self._failing
        if not force and not moved and since < HEARTBEAT_S:
            return False
        self._graph = graph
        set_to = {**graph, "reported_ms": int(time.time() * 1000)}
        add: dict[str, int] = {}
        if checkpointer is not None:
            for attribute, name in _COUNTED.items():
                value = int(getattr(checkpointer, attribute))
                add[name] = max(value - self._reported[attribute], 0)
                self._reported[attribute] = value
            set_to["wal_bytes"] = checkpointer.wal_bytes
            set_to["checkpoint_failing"] = int(failing)
        self.stats.record_unit_stats(UNIT_PREFIX + space, set_to["reported_ms"], add, set_to)
        self._last_s, self._failing = time.monotonic(), failing
        return True


def identity_report(stats: UnitStats, log_end: int) -> dict[str, dict[str, Any]]:
    """`sluice status --json`'s `identity`: each space's graph as its consumer last reported."""
    result: dict[str, dict[str, Any]] = {}
    for unit, state in sorted(stats.unit_stats().items()):
        if not unit.startswith(UNIT_PREFIX):
            continue
        position = state.get("position", 0)
        result[unit[len(UNIT_PREFIX) :]] = {
            "position": position,
            "lag": max(log_end - position, 0),
            "merges": state.get("merges", 0),
            "merges_refused": state.get("refused", 0),
            "ids_demoted": state.get("demoted", 0),
            "rebuild_needed": bool(state.get("rebuild_needed")),
            "wal": "checkpoint_failing" in state,  # identity.db's checkpoints (SQLite) reported
            "wal_checkpoints": state.get("checkpoints", 0),
            "wal_checkpoint_failures": state.get("checkpoint_failures", 0),
            "wal_checkpoint_failing": bool(state.get("checkpoint_failing")),
            "wal_restarts_refused": state.get("restarts_refused", 0),
            "wal_bytes": state.get("wal_bytes", 0),
            "reported_at": format_ms(state.get("reported_ms", 0)),
        }
    return result
