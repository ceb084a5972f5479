"""Which key paths a group of events has, and the tables and columns they fill.

The columnar planner (columnar.py) never flattens events one by one. Per group of events (the
tracks of one event name, the pages, the identifies, ...) it keeps a `Node` tree of every key
path seen, learnt by decoding a few events in Python (`discover`), and checks in SQL that each
event has no other key (see `readers.length_sql`); an event that does is decoded here too and the
tree grows. `Shaper` turns a tree into the group's tables and columns, named by the same
`Flattener` the exact planner uses, and says where each column's value comes from (`Source`).

What the exact planner would do differently is not guessed at: a key with no ASCII letter or
digit, or two keys that name one column, raises `ExactPlanNeeded`, and the chunk is planned
event by event instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sluice.warehouse.flatten import STANDARD_COLUMNS, Flattener
from sluice.warehouse.naming import snakecase

# The JSON kinds a path's values can have.
STR, INT, NUM, BOOL, ARRAY, OBJECT, NULL = "str", "int", "num", "bool", "array", "object", "null"
Kinds = frozenset[str]
Path = tuple[str, ...]

# How a column's value is made from its path's JSON value (see `Source`).
VALUE = "value"  # a flattened property, trait or context field, as JSON gives it
TEXT = "text"  # ids and names: the value as text, whatever its kind (`flatten._text`)
MOMENT = "moment"  # receivedAt & co: ISO-8601 text becomes a timestamp, anything else is kept
CONST = "const"  # the same value in every row: uuid_ts, a track's event and event_text
PICK = "pick"  # a page's name/category: the top-level value as text, else the property

_KIND_OF: Final[dict[type, str]] = {
    str: STR,
    int: INT,
    float: NUM,
    bool: BOOL,
    list: ARRAY,
    dict: OBJECT,
    type(None): NULL,
}
_TRACK_COLUMNS: Final = STANDARD_COLUMNS | {"event", "event_text"}
_GROUP_COLUMNS: Final = STANDARD_COLUMNS | {"group_id"}
_STANDARD_FIELDS: Final = (
    ("messageId", "id", TEXT),
    ("anonymousId", "anonymous_id", TEXT),
    ("userId", "user_id", TEXT),
    ("receivedAt", "received_at", MOMENT),
    ("sentAt", "sent_at", MOMENT),
    ("timestamp", "timestamp", MOMENT),
    ("originalTimestamp", "original_timestamp", MOMENT),
)
CALL_TABLES: Final = {
    "track": "tracks",
    "page": "pages",
    "screen": "screens",
    "identify": "identifies",
    "group": "groups",
    "alias": "aliases",
}


class ExactPlanNeeded(Exception):
    """The chunk holds something only the exact (event by event) planner reproduces."""


@dataclass(slots=True)
class Node:
    """One key path of a group's events: the kinds its values had, and its object's keys."""

    kinds: set[str] = field(default_factory=set)
    children: dict[str, Node] = field(default_factory=dict)
    empty: bool = False  # seen as {}: then SQL reads its text, to tell {} from absent

    @property
    def leaf(self) -> bool:
        """Held something other than an object (null included): SQL reads it as a value."""
        return bool(self.kinds - {OBJECT})

    @property
    def read_whole(self) -> bool:
        """SQL reads this object's text itself (not only its keys' values)."""
        return OBJECT in self.kinds and (self.empty or self.leaf)


def discover(value: Any, node: Node) -> bool:
    """Add one decoded JSON value's key paths and kinds to `node`; whether anything was new."""
    kind = _KIND_OF.get(type(value), NUM if isinstance(value, float) else INT)
    changed = kind not in node.kinds
    node.kinds.add(kind)
    if kind == OBJECT:
        if not value and not node.empty:
            node.empty = changed = True
        for key, item in value.items():
            child = node.children.get(key)
            if child is None:
                child = node.children[key] = Node()
                changed = True
            changed = discover(item, child) or changed
    return changed


def all_paths(node: Node, path: Path = ()) -> Iterator[Path]:
    """Every key path of a tree."""
    for key, child in node.children.items():
        sub = (*path, key)
        yield sub
        yield from all_paths(child, sub)


def signature(node: Node) -> tuple[Any, ...]:
    """Everything about a tree that decides the SQL reading it (to notice it grew)."""
    return (
        frozenset(node.kinds),
        node.empty,
        tuple((k, signature(c)) for k, c in node.children.items()),
    )


@dataclass(frozen=True, slots=True)
class Source:
    """Where one column's values come from, and how (`role`, one of the constants above)."""

    role: str
    path: Path = ()
    const: Any = None
    alt: Path = ()  # PICK: the property used when the top-level value is absent


@dataclass(slots=True)
class Layout:
    """One table a group writes: its columns in row order (each may stay empty)."""

    table: str
    columns: dict[str, Source]
    upsert: bool = False
    # An event table: its standard columns take the types of `tracks`, as in the exact planner.
    shared: bool = False
    # users/accounts: a row only for events where this text is present and not "".
    profile: Path | None = None


class Shaper:
    """Lays out the tables of groups of events for one warehouse's names."""

    def __init__(self, flattener: Flattener) -> None:
        self.flattener = flattener

    def layouts(
        self,
        call: str,
        event: str | None,
        root: Node,
        uuid_ts: datetime,
        *,
        own_table: bool = True,
    ) -> list[Layout]:
        """The tables one group writes (`event` is a track's event name, as stored; without
        `own_table`, its tracks go to `tracks` only: the source has all the event tables the
        warehouse allows)."""
        if root.kinds != {OBJECT}:
            raise ExactPlanNeeded("a stored event is not a JSON object")
        children = root.children
        standard = self._standard(children, uuid_ts)
        if call == "track":
            table = self.flattener.namer.event_table(event or "")
            if not table:
                raise ExactPlanNeeded("a track whose event name has no table")
            standard["event"] = Source(CONST, const=table)
            standard["event_text"] = Source(CONST, const=event)
            if not own_table:
                return [Layout("tracks", standard)]
            extra = self._leaves(children.get("properties"), ("properties",), "", _TRACK_COLUMNS)
            return [Layout("tracks", standard), _layout(table, standard, extra, shared=True)]
        if call in ("page", "screen"):
            extra = self._leaves(children.get("properties"), ("properties",), "", STANDARD_COLUMNS)
            for name in ("name", "category"):
                top = children.get(name)
                if top is not None and top.kinds - {NULL}:
                    prop = extra.pop(name, None)
                    extra[name] = Source(PICK, (name,), alt=() if prop is None else prop.path)
            return [_layout(CALL_TABLES[call], standard, extra)]
        if call == "identify":
            traits = self._leaves(children.get("traits"), ("traits",), "", STANDARD_COLUMNS)
            return [
                _layout("identifies", standard, traits),
                self._profile("users", "userId", standard, traits),
            ]
        if call == "group":
            traits = self._leaves(children.get("traits"), ("traits",), "", _GROUP_COLUMNS)
            extra = _text_column(children, "groupId", "group_id")
            return [
                _layout("groups", standard, {**extra, **traits}),
                self._profile("accounts", "groupId", standard, traits),
            ]
        if call == "alias":
            extra = _text_column(children, "previousId", "previous_id")
            return [_layout("aliases", standard, extra)]
        raise ExactPlanNeeded(f"events of type {call!r} have no table")

    def _standard(self, children: dict[str, Node], uuid_ts: datetime) -> dict[str, Source]:
        columns: dict[str, Source] = {}
        for key, column, role in _STANDARD_FIELDS:
            if key in children:
                columns[column] = Source(role, (key,))
        if "messageId" not in children:
            raise ExactPlanNeeded("an event without a messageId")
        columns["uuid_ts"] = Source(CONST, const=uuid_ts)
        columns.update(self._leaves(children.get("context"), ("context",), "context", frozenset()))
        return columns

    @staticmethod
    def _profile(
        table: str, id_field: str, standard: dict[str, Source], traits: dict[str, Source]
    ) -> Layout:
        """users/accounts: id, received_at, uuid_ts and the traits, latest call per id."""
        columns = {"id": Source(TEXT, (id_field,))}
        if "received_at" in standard:
            columns["received_at"] = standard["received_at"]
        columns["uuid_ts"] = standard["uuid_ts"]
        return _layout(table, columns, traits, upsert=True, profile=(id_field,))

    def _leaves(
        self, node: Node | None, path: Path, prefix: str, protected: frozenset[str]
    ) -> dict[str, Source]:
        """The columns an object flattens to (none when it never was an object)."""
        out: dict[str, Source] = {}
        if node is not None and OBJECT in node.kinds:
            self._walk(node, path, prefix, protected, out)
        return out

    def _walk(
        self,
        node: Node,
        path: Path,
        prefix: str,
        protected: frozenset[str],
        out: dict[str, Source],
    ) -> None:
        flattener = self.flattener
        for key, child in node.children.items():
            scalar = child.kinds - {OBJECT, NULL}
            nested = bool(child.children)
            if not snakecase(key):
                if scalar or nested:  # the exact planner discards it, or merges it into prefix
                    raise ExactPlanNeeded(f"key {key!r} has no ASCII letter or digit")
                continue
            if child.leaf:
                column = flattener.column_of(prefix, key, protected)
                if column in out:
                    raise ExactPlanNeeded(f"two keys make column {column!r}")
                out[column] = Source(VALUE, (*path, key))
            if nested:
                self._walk(child, (*path, key), flattener.prefix_of(prefix, key), protected, out)


def _text_column(children: dict[str, Node], key: str, column: str) -> dict[str, Source]:
    return {column: Source(TEXT, (key,))} if key in children else {}


def _layout(
    table: str,
    standard: dict[str, Source],
    extra: dict[str, Source],
    *,
    shared: bool = False,
    upsert: bool = False,
    profile: Path | None = None,
) -> Layout:
    clash = standard.keys() & extra.keys()
    if clash:
        raise ExactPlanNeeded(f"columns {sorted(clash)} of {table} have two sources")
    return Layout(table, {**standard, **extra}, upsert, shared, profile)
