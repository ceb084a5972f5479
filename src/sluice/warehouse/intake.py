"""A piece of the log sorted into the columnar planner's groups, column-wise.

`columnar.Chunk.add` looks at each event in a Python loop (its source, `integrations.Warehouses`,
its event name, a repeated messageId, its group), then copies each group's payloads into one
Arrow buffer. The same decisions are made here without a Python loop over the events: in C
(`_group.c`: one pass finds sources, payloads mentioning `Warehouses` and nameless tracks, a
second drops and sorts), or, without a C compiler, a column at a time (`split_python`: fields
transposed at once, set operations, one stable sort). Only the rare events that need it are
looked at in Python (decoded `Warehouses` options, tracks the log has no name for), so every
decision is the one `Chunk.add` makes (tests/warehouse/test_warehouse_intake.py compares both ways).

The payloads are not copied at all: each group keeps the log's own bytes objects (`Events`),
which the compiled reader reads where they are (`_scan.read_bytes`). Joining them into Arrow
buffers cost ~0.9 s of CPU per 1,000,000 events (a 1 GB log is 1 GB of fresh pages), on the
lake's critical path; DuckDB gets a group's payloads as Arrow only when a query needs them
(`events_table`). Unlike `Chunk.add`, a piece given to the exact planner keeps all its events
(`Chunk.add` drops those before the one it cannot read).
"""

from __future__ import annotations

import array
import itertools
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

import msgspec
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from sluice.store.base import StoredEvent
from sluice.warehouse import compiled
from sluice.warehouse.shape import ExactPlanNeeded
from sluice.warehouse.stage import GroupKey, event_name, wanted

_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True, slots=True)
class Gathered:
    """Payloads left where the log's columns hold them (store/columns.py): the texts `at` of
    `texts`, a large binary array of a whole chunk. Indexed, sliced and iterated as a tuple of
    bytes; the compiled reader reads them in place (`_scan.read_gather`)."""

    texts: pa.Array  # large_binary
    at: pa.Array  # int32

    def __len__(self) -> int:
        return len(self.at)

    @overload
    def __getitem__(self, key: int) -> bytes: ...
    @overload
    def __getitem__(self, key: slice) -> Gathered: ...
    def __getitem__(self, key: int | slice) -> bytes | Gathered:
        if isinstance(key, slice):
            return Gathered(self.texts, self.at[key])
        return self.texts[self.at[key].as_py()].as_py()  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.array().to_pylist())

    def take(self, indices: Sequence[int]) -> Gathered:
        return Gathered(self.texts, self.at.take(pa.array(indices, pa.int32())))

    def array(self) -> pa.Array:
        """These payloads as their own large binary array (a copy)."""
        return self.texts.take(self.at)


Payloads = tuple[bytes, ...] | Gathered


@dataclass(frozen=True, slots=True)
class Events:
    """Some of a group's events, in log order: seqs and messageIds as Arrow arrays, payloads as
    the log's bytes objects or left in its columns (not checked to be UTF-8 yet: see
    `events_table`)."""

    seq: pa.Array  # int64
    message_id: pa.Array  # string
    payloads: Payloads

    def __len__(self) -> int:
        return len(self.payloads)


def picked(payloads: Payloads, indices: Sequence[int]) -> Payloads:
    """The payloads at `indices`."""
    if isinstance(payloads, Gathered):
        return payloads.take(indices)
    return tuple(payloads[i] for i in indices)


def joined(parts: Sequence[Events]) -> Events:
    """One group's pieces as one `Events`."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0].payloads
    payloads: Payloads
    if isinstance(first, Gathered) and all(
        isinstance(p.payloads, Gathered) and p.payloads.texts is first.texts for p in parts
    ):
        at = pa.concat_arrays([p.payloads.at for p in parts])  # type: ignore[union-attr]
        payloads = Gathered(first.texts, at)
    else:
        payloads = tuple(itertools.chain.from_iterable(p.payloads for p in parts))
    return Events(
        pa.concat_arrays([p.seq for p in parts]),
        pa.concat_arrays([p.message_id for p in parts]),
        payloads,
    )


def events_table(events: Events) -> pa.Table:
    """The events as the Arrow table DuckDB reads (seq, message_id, payload); `ExactPlanNeeded`
    when a payload is not UTF-8 text (the exact planner reads such events)."""
    payloads = events.payloads
    try:
        if isinstance(payloads, Gathered):  # the cast checks the UTF-8
            payload = payloads.array().cast(pa.large_string()).cast(pa.string())
        else:
            # One join and the offsets: several times faster than pyarrow converting each one.
            offsets = array.array("i", itertools.accumulate(map(len, payloads), initial=0))
            buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(payloads))]
            payload = pa.Array.from_buffers(pa.string(), len(payloads), buffers)
            payload.validate(full=True)
    except pa.ArrowInvalid as exc:
        raise ExactPlanNeeded("a payload is not UTF-8 text") from exc
    return pa.table({"seq": events.seq, "message_id": events.message_id, "payload": payload})


@dataclass(slots=True)
class Split:
    """What a piece brings to a chunk: each group's events (in log order, groups in order of
    first appearance), the events set aside, and why."""

    parts: dict[GroupKey, Events] = field(default_factory=dict)
    aside: list[StoredEvent] = field(default_factory=list)
    skipped: int = 0  # other sources, integrations.Warehouses
    duplicates: int = 0


def split(
    events: Sequence[StoredEvent],
    sources: frozenset[str] | set[str] | Sequence[str],
    schema_of: Callable[[str], str],
    warehouse_id: str,
    seen: dict[str, set[str]],
) -> Split:
    """Sort `events` into groups as `Chunk.add` does; `seen` (messageIds per schema) grows.

    Raises `ExactPlanNeeded` where `Chunk.add` gives the chunk to the exact planner (a payload
    it decodes that is not JSON, a track without a name); a payload that is not UTF-8 text is
    found when the group is read (the compiled reader leaves it to `events_table`). Compiled
    (`_group.c`) where built, else `split_python`: the same groups, events and counts.
    """
    grouper = compiled.group()
    if grouper is None:
        return split_python(events, sources, schema_of, warehouse_id, seen)
    try:
        source_ids, source_of, mentions, nameless = grouper.survey(events)
    except TypeError:  # not all StoredEvents of bytes payloads: Python decides as it can
        return split_python(events, sources, schema_of, warehouse_id, seen)
    wanted_sources = set(sources) if sources else None
    keep = bytes(wanted_sources is None or s in wanted_sources for s in source_ids)
    codes = memoryview(source_of).cast("i")
    out = Split()
    drop: list[int] = []
    for i in mentions:  # only events whose payload holds b"Warehouses" (rare)
        if not keep[codes[i]]:
            continue
        try:
            msg = _decode(events[i].payload)
        except msgspec.DecodeError as exc:
            raise ExactPlanNeeded(str(exc)) from exc
        if not wanted(msg, warehouse_id):
            drop.append(i)
    names: dict[int, str] | None = None
    for i in nameless:  # tracks the log has no name for (rare)
        if keep[codes[i]] and i not in drop:
            try:
                name = event_name(events[i].payload)  # ExactPlanNeeded without one
            except msgspec.DecodeError as exc:
                raise ExactPlanNeeded(str(exc)) from exc
            names = names or {}
            names[i] = name
    schema_names = [schema_of(s) for s in source_ids]
    schemas = list(dict.fromkeys(schema_names))
    skipped, out.duplicates, aside, keys, counts, seq, offsets, data, payloads = grouper.group(
        events,
        source_of,
        keep,
        [schemas.index(name) for name in schema_names],
        [seen.setdefault(name, set()) for name in schemas],
        drop,
        names,
    )
    out.skipped = skipped + len(drop)
    out.aside = aside
    kept = sum(counts)
    seqs = pa.Array.from_buffers(pa.int64(), kept, [None, pa.py_buffer(seq)])
    ids = pa.Array.from_buffers(
        pa.string(), kept, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    start = 0
    for key, size, texts in zip(keys, counts, payloads, strict=True):
        out.parts[key] = Events(seqs.slice(start, size), ids.slice(start, size), texts)
        start += size
    return out


def split_python(
    events: Sequence[StoredEvent],
    sources: frozenset[str] | set[str] | Sequence[str],
    schema_of: Callable[[str], str],
    warehouse_id: str,
    seen: dict[str, set[str]],
) -> Split:
    """`split` in Python, column-wise (for installs without a C compiler)."""
    seqs, source_ids, message_ids, types, names, _, payloads = zip(*events, strict=True)
    out = Split()
    drop: set[int] = set()
    if sources:
        wanted_sources = set(sources)
        drop.update(i for i, s in enumerate(source_ids) if s not in wanted_sources)
        out.skipped += len(drop)
    mentions = list(map(operator.contains, payloads, itertools.repeat(b"Warehouses")))
    if True in mentions:
        for i in itertools.compress(range(len(payloads)), mentions):
            if i in drop:
                continue
            try:
                msg = _decode(payloads[i])
            except msgspec.DecodeError as exc:
                raise ExactPlanNeeded(str(exc)) from exc
            if not wanted(msg, warehouse_id):
                drop.add(i)
                out.skipped += 1
    events_of: list[str | None] = [
        name if call == "track" else None for call, name in zip(types, names, strict=True)
    ]
    for i, name in enumerate(events_of):
        if not name and types[i] == "track" and i not in drop:
            try:
                events_of[i] = event_name(payloads[i])  # ExactPlanNeeded without one
            except msgspec.DecodeError as exc:
                raise ExactPlanNeeded(str(exc)) from exc
    out.duplicates = _drop_repeated(source_ids, message_ids, schema_of, seen, drop)
    out.aside.extend(events[i] for i in sorted(drop))
    codes: dict[GroupKey, int] = {}
    keys = zip(source_ids, types, events_of, strict=True)
    if drop:
        group_of = [
            -1 if i in drop else codes.setdefault(key, len(codes)) for i, key in enumerate(keys)
        ]
    else:
        group_of = [codes.setdefault(key, len(codes)) for key in keys]
    if not codes:
        return out
    group_ids = pa.array(group_of, pa.int32())
    if len(codes) > 1 or drop:  # group order (stable: log order within), set-aside ones first
        order = pc.sort_indices(group_ids).slice(len(drop))
        picked = order.to_pylist()  # not empty: some event has a group
        # itemgetter makes the tuple in C (half a list comprehension's CPU); of one index it
        # gives the item itself
        if len(picked) == 1:
            payloads = (payloads[picked[0]],)
        else:
            payloads = operator.itemgetter(*picked)(payloads)
        seq, message_id = pa.array(seqs).take(order), pa.array(message_ids).take(order)
        group_ids = group_ids.take(order)
    else:
        seq, message_id = pa.array(seqs, pa.int64()), pa.array(message_ids, pa.string())
    sizes = [0] * len(codes)
    for code, n in zip(*_counts(group_ids), strict=True):
        sizes[code] = n
    start = 0
    for key, code in codes.items():
        end = start + sizes[code]
        out.parts[key] = Events(
            seq.slice(start, sizes[code]), message_id.slice(start, sizes[code]), payloads[start:end]
        )
        start = end
    return out


def _drop_repeated(
    source_ids: tuple[str, ...],
    message_ids: tuple[str, ...],
    schema_of: Callable[[str], str],
    seen: dict[str, set[str]],
    drop: set[int],
) -> int:
    """Add to `drop` the events whose messageId the schema already had (in the chunk or
    earlier in the piece); returns how many. A piece without any is checked with set
    operations alone."""
    by_schema: dict[str, list[int]] = {}
    distinct = set(source_ids)
    if len(distinct) == 1:
        by_schema[schema_of(next(iter(distinct)))] = [i for i in range(len(source_ids))]
    else:
        schemas = {s: schema_of(s) for s in distinct}
        for i, s in enumerate(source_ids):
            by_schema.setdefault(schemas[s], []).append(i)
    repeated = 0
    for schema, indices in by_schema.items():
        known = seen.setdefault(schema, set())
        live = [i for i in indices if i not in drop] if drop else indices
        ids = [message_ids[i] for i in live]
        fresh = set(ids)
        if len(fresh) == len(ids) and known.isdisjoint(fresh):
            known |= fresh
            continue
        for i, message_id in zip(live, ids, strict=True):
            if message_id in known:
                drop.add(i)
                repeated += 1
            else:
                known.add(message_id)
    return repeated


def _counts(group_ids: pa.Array) -> tuple[list[int], list[int]]:
    counted = pc.value_counts(group_ids)
    return counted.field("values").to_pylist(), counted.field("counts").to_pylist()
