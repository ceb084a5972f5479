"""How the columnar planner reads a group's events, and proves them whole.

`CompiledReader` (the one the planner uses) reads each event once in compiled code (`_scan.c`):
every key path's value, whether the event holds a key the tree lacks, and the stage's columns
typed as sqlfit.py's SQL types them (or NULL and flagged, for Python), as Arrow columns. It
vouches only for events whose texts are already as DuckDB would write them; the others
("irregular": escapes, whitespace, numbers DuckDB rewrites, repeated keys, ...) are read by
`ListReader` and typed by that SQL (stage.py). The two agree wherever the compiled reader reads
(tests/warehouse/test_warehouse_scan.py compares them on random events and trees).

`ListReader` gives each key path's JSON text to the SQL of `sqlfit.py` (one `json_extract` of a
list of paths per event), and a boolean `ok` per event that is true only when the event has no
key the group's tree lacks (shape.py): such an event is decoded in Python, the tree grows, and
the group is read again. `ok` holds when the event's canonical JSON is exactly as long as its
known members' texts, keys, colons, commas and braces: one more key anywhere, or a repeated one,
and it is longer. A value that is an object with keys is caught apart (its keys would be
flattened into columns).

A `json_transform` struct reader was measured too: its string fields need no unquoting, but
proving the events whole from byte counts cost more than the unquoting it saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgspec
import pyarrow as pa  # type: ignore[import-untyped]

from sluice.warehouse import compiled
from sluice.warehouse.shape import OBJECT, Node, Path

_encode = msgspec.json.Encoder().encode
NO_VALUE: Final = "NULL::VARCHAR"


def pointer(path: Path) -> str:
    """A JSON pointer (RFC 6901) as DuckDB's JSON functions take it: any key, escaped."""
    return "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in path)


def key_length(key: str) -> int:
    """Bytes of a key in canonical JSON, quotes included."""
    return len(_encode(key))


class ListReader:
    """Every path's JSON text, from one `json_extract` per event."""

    def __init__(self, root: Node) -> None:
        self.root = root
        self.index = {path: i for i, path in enumerate(read_paths(root), 1)}

    def source(self, table: str) -> str:
        ptrs = ", ".join(f"'{pointer(p)}'" for p in self.index)
        columns = "".join(f", j[{i}] AS w{i}" for i in self.index.values())
        return (
            f"(SELECT *{columns} FROM (SELECT seq, message_id, payload,"
            f" json_extract(payload, [{ptrs}])::VARCHAR[] AS j FROM {table}))"
        )

    def json(self, path: Path) -> str:
        i = self.index.get(path)
        return NO_VALUE if i is None else f"w{i}"

    def text(self, path: Path) -> str:
        return f"json_extract_string({self.json(path)}, '$')"

    def ok(self) -> str:
        return length_sql(self.root, self.index, "payload")


def read_paths(root: Node) -> list[Path]:
    """The paths whose JSON text the list reader reads: every value, and objects seen empty
    or as values."""
    out: list[Path] = []

    def walk(node: Node, path: Path) -> None:
        for key, child in node.children.items():
            sub = (*path, key)
            if child.leaf or child.read_whole:
                out.append(sub)
            if OBJECT in child.kinds:
                walk(child, sub)

    walk(root, ())
    return out


def length_sql(root: Node, index: dict[Path, int], payload: str) -> str:
    """The list reader's check: the event has no key beyond `root`'s tree.

    `index` numbers the read paths (1-based), whose JSON texts are columns `w1`, `w2`, ...
    A present object of n members is 1 + Σ (key + 2 + value) bytes: 2 for
    the colon and for the comma or brace after each member. An object read whole (seen empty, or
    as a value) is checked against its own members.

    Every term is plain arithmetic on one column (`coalesce(k + strlen(w), 0)`): DuckDB runs that
    several times faster than the same sum over the list `j` with lambdas.
    """
    terms: list[str] = []  # one per member counted in the root's length
    objects: list[str] = []  # terms of present objects not read whole
    checks: list[str] = []
    wholes: set[int] = set()

    def members(node: Node, path: Path, top: bool) -> tuple[list[str], list[str]]:
        """(terms, presence SQL) of an object's members, through unread objects."""
        own: list[str] = []
        present: list[str] = []
        for key, child in node.children.items():
            sub = (*path, key)
            k = key_length(key) + 2
            if child.leaf or child.read_whole:
                i = index[sub]
                w = f"w{i}"
                present.append(f"{w} IS NOT NULL")
                (terms if top else own).append(f"coalesce({k} + strlen({w}), 0)")
                if OBJECT in child.kinds:  # read whole: its own members make its length
                    wholes.add(i)
                    inner, _ = members(child, sub, top=False)
                    expected = "1 + " + " + ".join(inner) if inner else "2"
                    whole = f"{w} = '{{}}' OR strlen({w}) = ({expected})"
                    checks.append(f"(NOT starts_with({w}, '{{') OR {whole})")
            elif OBJECT in child.kinds:
                inner, inner_present = members(child, sub, top)
                if inner_present:
                    term = f"CASE WHEN {' OR '.join(inner_present)} THEN {k + 1} ELSE 0 END"
                    (objects if top else own).append(term)
                    own.extend(inner)
                    present.extend(inner_present)
        return own, present

    members(root, (), top=True)
    expected = " + ".join(["1", *terms, *objects])
    # A value that is an object with keys would be flattened: a key the tree lacks.
    nested = [
        f"coalesce(starts_with(w{i}, '{{') AND w{i} <> '{{}}', false)"
        for i in index.values()
        if i not in wholes
    ]
    root_check = (
        f"(strlen({payload}) = ({expected})"
        f" OR strlen(json_extract({payload}, '$')::VARCHAR) = ({expected}))"
    )
    no_object = [f"NOT ({' OR '.join(nested)})"] if nested else []
    return " AND ".join([root_check, *no_object, *checks])


# What `_scan.read` makes of a path's JSON text (OP_* in _scan.c): the text itself, as
# `json_extract_string` gives it, or a column's value as sqlfit.py's SQL types it.
RAW, STRING, TEXT_ALL, TEXT_VALUE, MOMENT_TEXT, INTEGER, FLOAT, BOOLEAN, TIMESTAMP, NONE = range(10)
PRESENT_ANY, PRESENT_VALUE = 0, 1  # sqlfit.present_sql: ids, names and moments; values
_TEXT_OPS: Final = (RAW, STRING, TEXT_ALL, TEXT_VALUE, MOMENT_TEXT)
_STRING: Final = pa.string()


@dataclass(frozen=True, slots=True)
class Output:
    """One column the compiled reader makes: `op` of the text at `path` (for a page's name,
    the property at `alt` when the top-level value is absent). When `flagged`, a value present
    (`presence`) that comes out NULL sets the row's `sluice_flag`. `arrow_type` is the
    column's type, which the op's values have (text ops: string)."""

    name: str
    op: int
    path: Path | None
    arrow_type: pa.DataType = _STRING
    alt: Path | None = None
    presence: int = PRESENT_ANY
    flagged: bool = False


class CompiledReader:
    """Every event read once in compiled code (`_scan.read`); the irregular ones, or all of them
    where `_scan` is not built (compiled.py), are left to DuckDB (`ListReader`, which has the
    same paths in the same order)."""

    def __init__(self, root: Node) -> None:
        self.root = root
        self.index = {path: i for i, path in enumerate(read_paths(root))}
        self.spec = tree_spec(root, {path: i + 1 for path, i in self.index.items()})
        self.fallback = ListReader(root)

    def tables(self, events: pa.Table, outputs: list[Output]) -> tuple[pa.Table, pa.Table]:
        """What the compiled reader read: the events' seq and message_id with the `outputs` as
        columns, `sluice_flag`, `sluice_read_ok` (no key the tree lacks) and `sluice_odd`
        (irregular: the other columns are NULL); and the irregular events themselves (seq,
        message_id, payload), for `fallback` to read (apart: DuckDB reads them alone)."""
        spec = [(o.op, o.presence, self._at(o.path), self._at(o.alt), o.flagged) for o in outputs]
        names = [o.name for o in outputs] + ["sluice_flag", "sluice_read_ok", "sluice_odd"]
        base = events.select(["seq", "message_id", "payload"])
        batches, odd_masks = [], []
        scan = compiled.scan()
        if scan is None:  # not built: every event is DuckDB's to read
            return self._empty(base, outputs, names), base
        for batch in base.to_batches():
            payload = batch.column(2)
            if payload.null_count:
                raise ValueError("an event without a payload")
            count = len(payload)
            _, offsets, data = payload.buffers()
            columns, flag, ok, odd = scan.read(
                offsets, data, payload.offset, count, self.spec, len(self.index), spec
            )
            arrays = [_array(o, b, count) for o, b in zip(outputs, columns, strict=True)]
            odd_masks.append(_bits(odd, count))
            arrays += [_bits(flag, count), _bits(ok, count), odd_masks[-1]]
            batches.append(
                pa.RecordBatch.from_arrays(
                    [*batch.columns[:2], *arrays], names=[*batch.schema.names[:2], *names]
                )
            )
        if any(mask.true_count for mask in odd_masks):
            odd_events = base.filter(pa.chunked_array(odd_masks, pa.bool_()))
        else:
            odd_events = base.slice(0, 0)
        if batches:
            return pa.Table.from_batches(batches), odd_events
        return self._empty(base, outputs, names), odd_events

    @staticmethod
    def _empty(base: pa.Table, outputs: list[Output], names: list[str]) -> pa.Table:
        schema = base.schema.remove(2)
        for o in outputs:
            schema = schema.append(pa.field(o.name, o.arrow_type))
        for name in names[len(outputs) :]:
            schema = schema.append(pa.field(name, pa.bool_()))
        return schema.empty_table()

    def _at(self, path: Path | None) -> int:
        return -1 if path is None else self.index.get(path, -1)


def _array(output: Output, buffers: tuple[bytes, ...], count: int) -> pa.Array:
    valid = pa.py_buffer(buffers[0])
    if output.op in _TEXT_OPS:
        offsets, chars = buffers[1], buffers[2]
        return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(chars), valid)
    if output.op == NONE:
        return pa.nulls(count, output.arrow_type)
    # booleans (a bitmap), integers, floats, timestamps (8 bytes a value): of the column's type
    return pa.Array.from_buffers(output.arrow_type, count, [valid, pa.py_buffer(buffers[1])])


def tree_spec(root: Node, index: dict[Path, int]) -> list[tuple[int, bool, bool, list[Any]]]:
    """The tree as `_scan.read` takes it: nodes (root first) of (column of its text or -1,
    read whole, flattened object, [(key as UTF-8, node), ...])."""
    nodes: list[tuple[int, bool, bool, list[Any]]] = [(-1, False, True, [])]

    def add(node: Node, path: Path, at: int) -> None:
        for key, child in node.children.items():
            sub = (*path, key)
            nodes.append((index.get(sub, 0) - 1, child.read_whole, OBJECT in child.kinds, []))
            nodes[at][3].append((key.encode(), len(nodes) - 1))
            add(child, sub, len(nodes) - 1)

    add(root, (), 0)
    return nodes


def _bits(bitmap: bytes, count: int) -> pa.Array:
    return pa.Array.from_buffers(pa.bool_(), count, [None, pa.py_buffer(bitmap)])


Reader = ListReader
