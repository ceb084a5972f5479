"""One event as the rows of Segment's warehouse tables (spec 4.1-4.3), before any typing.

An identify becomes an `identifies` row and, with a userId, a `users` row; a group a `groups` and
an `accounts` row; a track a `tracks` row (standard columns only) and a row of its own event
table; page, screen and alias one row each. Nested objects are flattened with `_`
(`context.app.version` → `context_app_version`), arrays become JSON text, nulls make no column.

This runs for every event, so names are memoised per (parent path, key) and a standard timestamp
(`receivedAt`, ...) is parsed once however many events of one request share it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import msgspec

from sluice.warehouse.naming import Namer, snakecase
from sluice.warehouse.types import MAX_INTEGER, MIN_INTEGER, BigInt, as_text, parse_timestamp

Row = dict[str, Any]
# The standard columns every table has; a property or trait named like one is `_`-prefixed.
STANDARD_COLUMNS: Final = frozenset(
    {
        "id", "anonymous_id", "user_id", "received_at", "sent_at", "timestamp",
        "original_timestamp", "uuid", "uuid_ts", "loaded_at",
    }
)  # fmt: skip
_TRACK_COLUMNS: Final = STANDARD_COLUMNS | {"event", "event_text"}
_GROUP_COLUMNS: Final = STANDARD_COLUMNS | {"group_id"}
_TIMESTAMP_FIELDS: Final = (
    ("receivedAt", "received_at"),
    ("sentAt", "sent_at"),
    ("timestamp", "timestamp"),
    ("originalTimestamp", "original_timestamp"),
)
_MAX_CACHED_MOMENTS = 65_536
_json_encode = msgspec.json.Encoder().encode
# (table, the columns it adds, upsert, whether the row also holds the standard row's columns)
Part = tuple[str, Row, bool, bool]
_EMPTY: Row = {}
_NOTHING: frozenset[str] = frozenset()


def _text(value: Any) -> str:
    return value if type(value) is str else as_text(value)


class Flattener:
    """Turns decoded events into rows for one warehouse's names.

    `rows` returns the standard part of an event (ids, timestamps, `context_*`) once, and per
    table the columns that table adds to it: the planner types the standard part once even
    though `tracks` and the event table (or `identifies`) both hold it.
    """

    def __init__(self, namer: Namer) -> None:
        self.namer = namer
        # protected names -> parent path -> key -> column
        self._names: dict[frozenset[str], dict[str, dict[str, str]]] = {}
        self._paths: dict[tuple[str, str], str] = {}
        self._moments: dict[str, datetime | str] = {}
        self._context_names = self._name_cache(_NOTHING)

    def rows(
        self, kind: str, msg: dict[str, Any], uuid_ts: datetime, notes: list[tuple[str, str]]
    ) -> tuple[Row, list[Part]]:
        """The standard row of one event and its table parts; `notes` receives (value, reason)
        of what has no place. No parts for a type that has no table."""
        row = self._standard(msg, uuid_ts)
        if kind == "track":
            text = _text(msg.get("event") or "")
            table = self.namer.event_table(text)
            if table:
                row["event"] = table
            row["event_text"] = text
            if not table:
                notes.append((text, "event name has no ASCII letter or digit: tracks row only"))
                return row, [("tracks", _EMPTY, False, True)]
            properties: Row = {}
            self._flatten(msg.get("properties"), properties, _TRACK_COLUMNS)
            return row, [("tracks", _EMPTY, False, True), (table, properties, False, True)]
        if kind == "page" or kind == "screen":
            properties = {}
            self._flatten(msg.get("properties"), properties, STANDARD_COLUMNS)
            for field in ("name", "category"):  # analytics.js repeats them in properties
                value = msg.get(field)
                if value is not None:
                    properties[field] = _text(value)
            return row, [(kind + "s", properties, False, True)]
        if kind == "identify":
            return row, self._with_profile(msg, row, "identifies", "users", "userId", None)
        if kind == "group":
            group_id = msg.get("groupId")
            extra = None if group_id is None else {"group_id": _text(group_id)}
            return row, self._with_profile(msg, row, "groups", "accounts", "groupId", extra)
        if kind == "alias":
            previous = msg.get("previousId")
            extra = {} if previous is None else {"previous_id": _text(previous)}
            return row, [("aliases", extra, False, True)]
        return row, []

    def _with_profile(
        self,
        msg: dict[str, Any],
        row: Row,
        table: str,
        profile_table: str,
        id_field: str,
        extra: Row | None,
    ) -> list[Part]:
        """identify/group: the call's row, plus the latest-state row of its user or account."""
        traits: Row = {}
        protected = STANDARD_COLUMNS if extra is None else _GROUP_COLUMNS
        self._flatten(msg.get("traits"), traits, protected)
        parts: list[Part] = [(table, traits if extra is None else {**extra, **traits}, False, True)]
        profile_id = msg.get(id_field)
        if profile_id is not None and profile_id != "":
            profile: Row = {"id": _text(profile_id)}
            if "received_at" in row:
                profile["received_at"] = row["received_at"]
            profile["uuid_ts"] = row["uuid_ts"]
            profile.update(traits)
            parts.append((profile_table, profile, True, False))
        return parts

    def _standard(self, msg: dict[str, Any], uuid_ts: datetime) -> Row:
        get = msg.get
        value = get("messageId", "")
        row: Row = {"id": value if type(value) is str else as_text(value)}
        value = get("anonymousId")
        if value is not None:
            row["anonymous_id"] = value if type(value) is str else as_text(value)
        value = get("userId")
        if value is not None:
            row["user_id"] = value if type(value) is str else as_text(value)
        moments = self._moments
        for field, column in _TIMESTAMP_FIELDS:
            value = get(field)
            if value is not None:
                moment = moments.get(value) if type(value) is str else value
                if moment is None:
                    moment = parse_timestamp(value) or value
                    if len(moments) >= _MAX_CACHED_MOMENTS:
                        moments.clear()
                    moments[value] = moment
                if type(moment) is int and not MIN_INTEGER <= moment <= MAX_INTEGER:
                    moment = BigInt(moment)  # a number sent as a time, past 64 bits
                row[column] = moment
        row["uuid_ts"] = uuid_ts
        context = get("context")
        if type(context) is dict and context:
            self._flatten_into(context, "context", row, self._context_names, _NOTHING)
        return row

    def _name_cache(self, protected: frozenset[str]) -> dict[str, dict[str, str]]:
        names = self._names.get(protected)
        if names is None:
            names = self._names[protected] = {}
        return names

    def _flatten(self, obj: Any, out: Row, protected: frozenset[str]) -> None:
        if type(obj) is dict and obj:
            self._flatten_into(obj, "", out, self._name_cache(protected), protected)

    def _flatten_into(
        self,
        obj: dict[str, Any],
        prefix: str,
        out: Row,
        names: dict[str, dict[str, str]],
        protected: frozenset[str],
    ) -> None:
        columns = names.get(prefix)
        if columns is None:
            columns = names[prefix] = {}
        for key, value in obj.items():
            kind = type(value)
            if kind is str:
                column = columns.get(key)
                if column is None:
                    column = columns[key] = self._column(prefix, key, protected)
                out[column] = value
            elif kind is dict:
                if value:
                    path = self._paths.get((prefix, key))
                    if path is None:
                        path = self._path(prefix, key)
                    self._flatten_into(value, path, out, names, protected)
            elif value is not None:
                column = columns.get(key)
                if column is None:
                    column = columns[key] = self._column(prefix, key, protected)
                if kind is list:
                    out[column] = _json_encode(value).decode()
                elif kind is int and not MIN_INTEGER <= value <= MAX_INTEGER:
                    out[column] = BigInt(value)
                else:
                    out[column] = value

    def column_of(self, prefix: str, key: str, protected: frozenset[str]) -> str:
        """The column `key` under `prefix` flattens to, as `rows` names it (memoised alike)."""
        columns = self._name_cache(protected).setdefault(prefix, {})
        column = columns.get(key)
        if column is None:
            column = columns[key] = self._column(prefix, key, protected)
        return column

    def prefix_of(self, prefix: str, key: str) -> str:
        """The prefix the keys of an object under `key` get (`context_page` for `context.page`)."""
        return self._paths.get((prefix, key)) or self._path(prefix, key)

    def _path(self, prefix: str, key: str) -> str:
        snake = snakecase(key)
        path = f"{prefix}_{snake}" if prefix and snake else prefix or snake
        self._paths[(prefix, key)] = path
        return path

    def _column(self, prefix: str, key: str, protected: frozenset[str]) -> str:
        """Empty for a key with no ASCII letter or digit at the top level (then discarded)."""
        path = self._paths.get((prefix, key)) or self._path(prefix, key)
        if not path:
            return ""
        if protected and path.startswith("context_"):
            path = "_" + path
        return self.namer.column(path, protected)
