"""Events of the log column by column: what a consumer that works on columns reads.

`read_after` gives a `StoredEvent` (a tuple of seven Python objects) per event, which a consumer
that hands events on as Arrow columns (the lake) only takes apart again: ~3 s of CPU per
1,000,000 events to make them here, and as much to group them. `SqliteStore.read_columns` reads
the same rows into buffers instead (store/_sqlite_read.c, without the GIL): seqs, source ids,
types and event names as codes into their few distinct texts, messageIds and payloads one after
another with their offsets. `rows` makes `StoredEvent`s back for the few events a consumer needs
as rows.
"""

from __future__ import annotations

import array
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sluice.store.base_event_store import StoredEvent

READ_KINDS = "icbccib"  # _sqlite_read's kinds for the columns of `StoredEvent`, in order


@dataclass(frozen=True, slots=True)
class LogColumns:
    """`count` events in log order. Buffers are read-only buffer-protocol objects: int64 seqs
    and receive times, int32 codes into `sources`/`types`/`events` (-1: no event name), int64
    offsets (count + 1) into the messageIds' UTF-8 bytes and into the payloads' bytes."""

    count: int
    seq: Any
    sources: list[str]
    source: Any
    types: list[str]
    type: Any
    message_id_offsets: Any
    message_id_data: Any
    events: list[str]
    event: Any
    received_at: Any
    payload_offsets: Any
    payload_data: Any

    @classmethod
    def from_reader(cls, count: int, columns: tuple[Any, ...]) -> LogColumns:
        """From `Reader.read_columns(params, READ_KINDS)`'s result, in `StoredEvent`'s order
        (seq, source_id, message_id, type, event, received_at, payload)."""
        seq, (sources, source), (ids, id_data), (types, type_), (events, event), at, body = columns
        return cls(
            count, seq, sources, source, types, type_, ids, id_data, events, event, at, *body
        )

    @classmethod
    def from_rows(cls, events: Sequence[StoredEvent]) -> LogColumns:
        """The same columns made in Python from rows (for logs held as rows: tests, benches)."""
        sources: dict[str, int] = {}
        types: dict[str, int] = {}
        names: dict[str, int] = {}

        def codes(values: Iterable[str | None], known: dict[str, int]) -> bytes:
            return array.array(
                "i", (-1 if v is None else known.setdefault(v, len(known)) for v in values)
            ).tobytes()

        def offsets(values: list[bytes]) -> bytes:
            return array.array("q", itertools.accumulate(map(len, values), initial=0)).tobytes()

        ids = [e.message_id.encode() for e in events]
        bodies = [e.payload for e in events]
        source = codes((e.source_id for e in events), sources)
        type_ = codes((e.type for e in events), types)
        event = codes((e.event for e in events), names)
        return cls(
            len(events),
            array.array("q", (e.seq for e in events)).tobytes(),
            list(sources),
            source,
            list(types),
            type_,
            offsets(ids),
            b"".join(ids),
            list(names),
            event,
            array.array("q", (e.received_at_ms for e in events)).tobytes(),
            offsets(bodies),
            b"".join(bodies),
        )

    def slice(self, start: int, stop: int) -> LogColumns:
        """Events `start` to `stop` (offsets made anew; nothing else copied)."""
        stop = max(start, min(stop, self.count))
        ids = memoryview(self.message_id_offsets).cast("q")
        body = memoryview(self.payload_offsets).cast("q")

        def part(buffer: Any, width: int) -> memoryview:
            return memoryview(buffer).cast("B")[start * width : stop * width]

        def rebased(offsets: memoryview) -> Any:
            # In Arrow, not a Python loop: a bench slices 1,000,000 offsets a load (its
            # in-memory log must cost the lake nothing, as a list of rows did).
            import pyarrow as pa  # type: ignore[import-untyped]  # not on the store's import
            import pyarrow.compute as pc  # type: ignore[import-untyped]

            part = pa.Array.from_buffers(
                pa.int64(), stop - start + 1, [None, pa.py_buffer(offsets)], offset=start
            )
            return pc.subtract(part, part[0]).buffers()[1].slice(0, (stop - start + 1) * 8)

        return LogColumns(
            stop - start,
            part(self.seq, 8),
            self.sources,
            part(self.source, 4),
            self.types,
            part(self.type, 4),
            rebased(ids),
            memoryview(self.message_id_data)[ids[start] : ids[stop]],
            self.events,
            part(self.event, 4),
            part(self.received_at, 8),
            rebased(body),
            memoryview(self.payload_data)[body[start] : body[stop]],
        )

    def __len__(self) -> int:
        return self.count

    @property
    def last_seq(self) -> int:
        return int(memoryview(self.seq).cast("q")[-1])

    def rows(self, indices: Iterable[int]) -> list[StoredEvent]:
        """The events at `indices` as `StoredEvent`s (as `read_after` gives them)."""
        seq, at = memoryview(self.seq).cast("q"), memoryview(self.received_at).cast("q")
        source, type_ = memoryview(self.source).cast("i"), memoryview(self.type).cast("i")
        event = memoryview(self.event).cast("i")
        ids, id_data = memoryview(self.message_id_offsets).cast("q"), bytes(self.message_id_data)
        body, data = memoryview(self.payload_offsets).cast("q"), memoryview(self.payload_data)
        return [
            StoredEvent(
                seq[i],
                self.sources[source[i]],
                id_data[ids[i] : ids[i + 1]].decode("utf-8", "replace"),  # as read_after
                self.types[type_[i]],
                None if event[i] < 0 else self.events[event[i]],
                at[i],
                bytes(data[body[i] : body[i + 1]]),
            )
            for i in indices
        ]
