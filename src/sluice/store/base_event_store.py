"""The event log's part of the store protocol (`EventStore`): the log, its cursors and counters,
and the control plane, with the records they take and give.

Every other part of the protocol builds on these records (a delivery step reads `StoredEvent`s),
so they are a module of their own that the other parts import, and `base.py` composes the parts
into `Store`. The cursor contract `read_after` keeps is in base.py's docstring.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol


class NewEvent(NamedTuple):
    """One normalised event ready to append; `payload` is its JSON encoding.

    A tuple so that a backend can hand a batch of them to its driver as rows, unchanged.
    """

    source_id: str
    message_id: str
    type: str
    event: str | None
    received_at_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Rejection:
    """One item refused by validation, kept for inspection."""

    source_id: str
    reason: str
    detail: str
    received_at_ms: int
    payload: bytes


@dataclass(slots=True)
class AppendBatch:
    """What one group commit writes: events, rejected items and counter increments."""

    events: list[NewEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    counters: dict[tuple[str, str], int] = field(default_factory=dict)

    def count(self, source_id: str, name: str, n: int = 1) -> None:
        key = (source_id, name)
        self.counters[key] = self.counters.get(key, 0) + n


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Outcome of one append: events stored and events dropped as duplicates."""

    stored: int
    duplicates: int


class StoredEvent(NamedTuple):
    """One event as read back from the log (a tuple: consumers create millions of them)."""

    seq: int
    source_id: str
    message_id: str
    type: str
    event: str | None
    received_at_ms: int
    payload: bytes


# A driver's row tuple as a `StoredEvent`, all in C (`StoredEvent(*row)` runs a Python
# `__new__` a row: ~2 s of CPU per 1,000,000 rows here).
stored_event = functools.partial(tuple.__new__, StoredEvent)


@dataclass(frozen=True, slots=True)
class StoredRejection:
    id: int
    source_id: str
    reason: str
    detail: str
    received_at_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class SourceRow:
    """A source as the collector needs it: its write keys and whether it accepts events."""

    id: str
    name: str
    write_keys: tuple[str, ...]
    enabled: bool
    # A webhook source (workspace `webhook:`): its provider, secrets and mappings. Its write
    # keys are then the tokens of its hook URL, not keys for the Tracking API.
    webhook: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ConfigObject:
    """One control-plane object (a source, destination, ...) stored as a JSON document."""

    kind: str
    id: str
    body: bytes


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters for reading the newest events (CLI `sluice events`, UI debugger)."""

    limit: int = 20
    source_id: str | None = None
    type: str | None = None
    event: str | None = None
    after_seq: int = 0


class EventStore(Protocol):
    """The durable log, control plane and counters, behind one interface."""

    # --- event log -------------------------------------------------------------------------
    def append(self, batch: AppendBatch) -> AppendResult:
        """Write one group of events atomically; return only after a durable commit.

        Events whose `(source's workspace, message_id)` was seen within the dedupe window are
        dropped and counted as duplicates. Counters and rejections commit in the same transaction.
        """
        ...

    def warm_up(self) -> None:
        """Prepare what the first append would (the dedupe window's ids, on SQLite), without
        blocking other writers; the collector calls it as it starts. A no-op where nothing is
        kept in memory (PostgreSQL deduplicates in the database)."""
        ...

    def read_after(self, seq: int, limit: int) -> list[StoredEvent]:
        """Events with `seq` greater than the given one, oldest first (consumers with cursors)."""
        ...

    def newest(self, query: EventQuery) -> list[StoredEvent]:
        """The newest events matching the query, newest first."""
        ...

    def rejections(self, limit: int, source_id: str | None = None) -> list[StoredRejection]:
        """The newest rejected items, newest first."""
        ...

    def last_seq(self) -> int:
        """The highest sequence number in the log (0 when empty)."""
        ...

    # --- cursors ---------------------------------------------------------------------------
    def get_cursor(self, consumer: str) -> int: ...

    def find_cursor(self, consumer: str) -> int | None:
        """The consumer's position, or None when it never had one."""
        ...

    def commit_cursor(self, consumer: str, seq: int) -> None: ...

    # --- counters --------------------------------------------------------------------------
    def counters(self) -> dict[tuple[str, str], int]:
        """All counters as `{(source_id, name): value}`."""
        ...

    # --- control plane ---------------------------------------------------------------------
    def config_version(self) -> int:
        """A number that changes whenever the control plane changes (cheap to poll)."""
        ...

    def list_config(self, kind: str | None = None) -> list[ConfigObject]: ...

    def replace_config(self, objects: Iterable[ConfigObject]) -> None:
        """Make the control plane hold exactly these objects (one transaction)."""
        ...

    def put_config(self, obj: ConfigObject) -> None: ...

    def sources(self) -> Sequence[SourceRow]: ...

    # --- lifecycle -------------------------------------------------------------------------
    def close(self) -> None: ...
