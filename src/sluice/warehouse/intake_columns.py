"""A chunk of the log given column by column (store/columns.py) sorted into the planner's groups.

`intake.split` walks a `StoredEvent` per event (in C, but through seven Python objects each,
scattered in memory). A SQLite log read column by column has none to walk: its source ids,
types and event names are codes, its messageIds and payloads buffers. The same decisions are
made here on those columns with Arrow's kernels: sources kept, `integrations.Warehouses`
(a C pass over the payloads for the word, then only those decoded), tracks the log has no name
for (asked of their payload), repeated messageIds per schema (the first in log order kept), and
the groups in order of first appearance, log order within each (a stable sort). Payloads stay
in the chunk's buffer (`Gathered`): no copy, the compiled reader reads them in place.

The result is `split`'s for the same events (tests/warehouse/test_warehouse_intake_columns.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from sluice.store.columns import LogColumns
from sluice.warehouse import compiled
from sluice.warehouse.intake import Events, Gathered, Split
from sluice.warehouse.shape import ExactPlanNeeded
from sluice.warehouse.stage import event_name, wanted

_decode = msgspec.json.Decoder().decode


def split_columns(
    log: LogColumns,
    sources: frozenset[str] | set[str] | Sequence[str],
    schema_of: Callable[[str], str],
    warehouse_id: str,
) -> Split:
    """Sort the events into groups as `intake.split` does (with nothing seen before them).

    Raises `ExactPlanNeeded` where `split` does (a payload it must decode that is not JSON, a
    track without a name, and here also a messageId that is not UTF-8)."""
    out = Split()
    n = log.count
    if not n:
        return out
    seq = pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(log.seq)])
    source = pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(log.source)])
    call = pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(log.type)])
    event = pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(log.event)])
    ids = pa.Array.from_buffers(
        pa.large_string(),
        n,
        [None, pa.py_buffer(log.message_id_offsets), pa.py_buffer(log.message_id_data)],
    )
    texts = pa.Array.from_buffers(
        pa.large_binary(),
        n,
        [None, pa.py_buffer(log.payload_offsets), pa.py_buffer(log.payload_data)],
    )
    try:
        ids.validate(full=True)
    except pa.ArrowInvalid as exc:
        raise ExactPlanNeeded("a messageId is not UTF-8 text") from exc
    ids = ids.cast(pa.string())
    wanted_sources = set(sources) if sources else None
    kept_sources = [
        code for code, s in enumerate(log.sources) if wanted_sources is None or s in wanted_sources
    ]
    live = pc.is_in(source, value_set=pa.array(kept_sources, pa.int32())).to_pylist()
    skipped = live.count(False)
    for i in _mentions(log):  # payloads holding b"Warehouses" (rare)
        if not live[i]:
            continue
        try:
            msg = _decode(memoryview(log.payload_data)[_payload_span(log, i)])
        except msgspec.DecodeError as exc:
            raise ExactPlanNeeded(str(exc)) from exc
        if not wanted(msg, warehouse_id):
            live[i] = False
            skipped += 1
    names = list(log.events)
    event = _name_nameless(log, call, event, live, names, texts)
    alive = pa.array(live, pa.bool_())
    duplicates = _repeated(log, source, ids, alive, schema_of)
    alive = pc.and_(alive, pc.invert(duplicates))
    out.skipped = skipped
    out.duplicates = int(pc.sum(duplicates).as_py() or 0)
    out.aside = log.rows(pc.indices_nonzero(pc.invert(alive)).to_pylist())
    keep = pc.indices_nonzero(alive)
    if not len(keep):
        return out
    track = log.types.index("track") if "track" in log.types else -1
    # the group of each kept event: (source, call, name), the name only for tracks
    name_code = pc.if_else(pc.equal(call, track), event, -2).take(keep)
    width = len(names) + 2
    key = pc.add(
        pc.multiply(
            pc.add(
                pc.multiply(source.take(keep).cast(pa.int64()), len(log.types)), call.take(keep)
            ),
            width,
        ),
        pc.add(name_code, 2),
    )
    firsts = pc.unique(key)  # in order of first appearance
    group = pc.index_in(key, value_set=firsts)
    order = pc.sort_indices(group)  # stable: log order within a group
    sizes = pc.value_counts(group)
    counts = dict(
        zip(sizes.field("values").to_pylist(), sizes.field("counts").to_pylist(), strict=True)
    )
    at = keep.take(order).cast(pa.int32())
    seqs, message_ids = seq.take(at), ids.take(at)
    start = 0
    for g, k in enumerate(firsts.to_pylist()):
        k, code = divmod(k, width)
        source_code, call_code = divmod(k, len(log.types))
        name = None if code == 0 else names[code - 2]
        size = counts[g]
        out.parts[(log.sources[source_code], log.types[call_code], name)] = Events(
            seqs.slice(start, size),
            message_ids.slice(start, size),
            Gathered(texts, at.slice(start, size)),
        )
        start += size
    return out


def _payload_span(log: LogColumns, i: int) -> slice:
    offsets = memoryview(log.payload_offsets).cast("q")
    return slice(offsets[i], offsets[i + 1])


def _mentions(log: LogColumns) -> list[int]:
    """The events whose payload holds b"Warehouses" (C where built)."""
    grouper = compiled.group()
    if grouper is not None:
        return grouper.mentions(log.payload_offsets, log.payload_data)  # type: ignore[no-any-return]
    data = bytes(log.payload_data)
    return [i for i in range(log.count) if b"Warehouses" in data[_payload_span(log, i)]]


def _name_nameless(
    log: LogColumns,
    call: pa.Array,
    event: pa.Array,
    live: list[bool],
    names: list[str],
    texts: pa.Array,
) -> pa.Array:
    """`event` with a code for each live track the log has no name for (NULL or ""), asked of
    its payload (`names` grows); `ExactPlanNeeded` for one that has none."""
    if "track" not in log.types:
        return event
    empty = [code for code, name in enumerate(names) if not name]
    nameless = pc.and_(
        pc.equal(call, log.types.index("track")),
        pc.is_in(event, value_set=pa.array([-1, *empty], pa.int32())),
    )
    found = [i for i in pc.indices_nonzero(nameless).to_pylist() if live[i]]
    if not found:
        return event
    codes = event.to_pylist()
    for i in found:
        try:
            name = event_name(texts[i].as_py())  # ExactPlanNeeded without one
        except msgspec.DecodeError as exc:
            raise ExactPlanNeeded(str(exc)) from exc
        if name not in names:
            names.append(name)
        codes[i] = names.index(name)
    return pa.array(codes, pa.int32())


def _repeated(
    log: LogColumns,
    source: pa.Array,
    ids: pa.Array,
    alive: pa.Array,
    schema_of: Callable[[str], str],
) -> pa.Array:
    """Whether each live event repeats a messageId an earlier live event of its schema had
    (C where built: a hash set over the ids' bytes; else a group-by)."""
    schema_names = [schema_of(s) for s in log.sources]
    schemas = list(dict.fromkeys(schema_names))
    schema = pa.array([schemas.index(s) for s in schema_names], pa.int32()).take(source)
    grouper = compiled.group()
    if grouper is not None:
        counted = pc.if_else(alive, schema, pa.scalar(-1, pa.int32()))  # the dead: not counted
        flags = grouper.repeated(
            counted.buffers()[1].slice(counted.offset * 4, log.count * 4),
            log.message_id_offsets,
            log.message_id_data,
        )
        repeats = pa.Array.from_buffers(pa.uint8(), log.count, [None, pa.py_buffer(flags)])
        return pc.not_equal(repeats, 0)
    index = pa.array(range(log.count), pa.int64())
    rows = pa.table({"schema": schema, "id": ids, "index": index}).filter(alive)
    firsts = rows.group_by(["schema", "id"]).aggregate([("index", "min")])["index_min"]
    if len(firsts) == len(rows):  # nothing repeated (the usual case)
        return pa.repeat(pa.scalar(False), log.count)
    return pc.and_(alive, pc.invert(pc.is_in(index, value_set=firsts)))
