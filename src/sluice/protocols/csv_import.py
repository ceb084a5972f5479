"""Segment's tracking plan spreadsheet (the CSV its Protocols UI downloads and uploads) read into a
workspace file's `rules`, one row per property, as its editor lays a plan out.

Segment does not publish the template's exact header, only its columns' meaning (Name,
Description, Status, Data Type, Permitted Values, Enum Values); headers are matched by name,
case and spacing aside, with the names its docs and downloads use:

    Event Type        Track (default), Page, Screen, Identify, Group, Common
    Event Name        the track event's name (page/screen: the call's name)
    Event Description, Version (default 1), Labels ("key:value, key:value")
    Property Name     one property (trait for identify/group); `a.b` is `b` inside object `a`;
                      a row without one only declares its event
    Property Description
    Data Type         any, array, object, boolean, integer, number, string, null, Date time;
                      several as `string|null`
    Required          required/optional (also yes/no, true/false) - "Status" too
    Permitted Values  a regular expression the whole string must match (`fall|winter|spring`)
    Enum Values       the values allowed, comma-separated

A row that leaves Event Type, Event Name and Version empty continues the event above it.
Every error names the file, the row (as a spreadsheet numbers it, the header is row 1) and the
column.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from sluice.protocols.errors import PlanError

_COLUMNS = {
    "event type": "event_type", "type": "event_type", "event name": "event", "event": "event",
    "event description": "event_description", "version": "version",
    "event version": "version", "labels": "labels", "property name": "property",
    "property": "property", "trait name": "property", "name": "property",
    "property description": "description", "description": "description",
    "data type": "data_type", "property type": "data_type", "required": "required",
    "status": "required", "permitted values": "pattern", "allowed property values": "pattern",
    "allowed values": "pattern", "regex": "pattern", "enum values": "enum", "enum": "enum",
}  # fmt: skip
_TITLES = {"event_type": "Event Type", "event": "Event Name", "version": "Version",
           "labels": "Labels", "property": "Property Name", "data_type": "Data Type",
           "required": "Required", "pattern": "Permitted Values",
           "enum": "Enum Values"}  # fmt: skip
_CALLS = {"track": "track", "page": "page", "screen": "screen", "identify": "identify",
          "group": "group", "common": "global"}  # fmt: skip
_TYPES = {"any": None, "array": "array", "object": "object", "boolean": "boolean",
          "integer": "integer", "number": "number", "string": "string", "null": "null",
          "date time": "date-time", "datetime": "date-time", "date-time": "date-time"}  # fmt: skip
_TRUE = {"required", "yes", "true", "y", "1"}
_FALSE = {"optional", "no", "false", "n", "0", ""}
MAX_BYTES = 15 * 2**20  # Segment's limits on an upload
MAX_ROWS = 100_000


class CsvError(PlanError):
    """A cell of the spreadsheet that cannot be read (`path`: "row 7, column Data Type")."""


def import_csv(text: str, file: str) -> dict[str, Any]:
    """The plan's `rules` from the spreadsheet's text."""
    if len(text.encode()) > MAX_BYTES:
        raise CsvError(f"{file}: over {MAX_BYTES // 2**20} MB")
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = next(reader, None)
    if not header:
        raise CsvError(f"{file}: empty: expected a header row")
    columns: dict[str, int] = {}
    for index, title in enumerate(header):
        key = _COLUMNS.get(" ".join(title.lower().replace("_", " ").split()))
        if key is not None and key not in columns:
            columns[key] = index
    if "property" not in columns and "event" not in columns:
        raise CsvError(f"{file}: row 1: no Event Name or Property Name column in the header")
    sections: dict[tuple[str, str, int], dict[str, Any]] = {}
    meta: dict[tuple[str, str, int], dict[str, Any]] = {}
    current: tuple[str, str, int] | None = None
    for number, row in enumerate(reader, 2):
        if number > MAX_ROWS + 1:
            raise CsvError(f"{file}: over {MAX_ROWS:,} rows")
        if not any(cell.strip() for cell in row):
            continue

        def cell(key: str, row: list[str] = row) -> str:
            index = columns.get(key)
            return row[index].strip() if index is not None and index < len(row) else ""

        def fail(key: str, message: str, number: int = number) -> CsvError:
            return CsvError(f"{file}: row {number}, column {_TITLES.get(key, key)}: {message}")

        if cell("event_type") or cell("event") or cell("version"):
            kind = _CALLS.get(cell("event_type").lower() or "track")
            if kind is None:
                raise fail("event_type", f"unknown {cell('event_type')!r} (expected one of:"
                           " Track, Page, Screen, Identify, Group, Common)")  # fmt: skip
            name = cell("event") if kind in ("track", "page", "screen") else ""
            if kind == "track" and not name:
                raise fail("event", "a Track event needs a name")
            version_text = cell("version") or "1"
            if not version_text.isdigit() or int(version_text) < 1:
                raise fail("version", f"{version_text!r} is not a version (1, 2, ...)")
            current = (kind, name, int(version_text))
            info = meta.setdefault(current, {})
            if cell("event_description"):
                info["description"] = cell("event_description")
            if cell("labels"):
                info["labels"] = _labels(cell("labels"), fail)
            sections.setdefault(current, {"type": "object", "properties": {}})
        if current is None:
            raise fail("event", "no event yet: the first row must name its event")
        prop = cell("property")
        if not prop:
            continue
        schema = _property(cell, fail)
        required = cell("required").lower()
        if required not in _TRUE | _FALSE:
            raise fail("required", f"{cell('required')!r}: expected required or optional")
        _place(sections[current], prop.split("."), schema, required in _TRUE, fail)
    return _rules(sections, meta)


def _property(cell: Any, fail: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    names = [n.strip().lower() for n in re.split(r"[|,]", cell("data_type")) if n.strip()]
    kinds: list[str] = []
    for name in names:
        if name not in _TYPES:
            raise fail("data_type", f"unknown type {name!r} (expected one of: any, array, object,"
                       " boolean, integer, number, string, null, Date time)")  # fmt: skip
        kind = _TYPES[name]
        if kind == "date-time":
            schema["format"] = "date-time"
            kind = "string"
        if kind is not None and kind not in kinds:
            kinds.append(kind)
    if kinds and "any" not in names:
        schema["type"] = kinds[0] if len(kinds) == 1 else kinds
    if cell("description"):
        schema["description"] = cell("description")
    if cell("pattern"):
        try:
            re.compile(cell("pattern"))
        except re.error as exc:
            raise fail("pattern", f"not a regular expression: {exc}") from None
        schema["pattern"] = f"^(?:{cell('pattern')})$"
    if cell("enum"):
        values: list[Any] = [v.strip() for v in cell("enum").split(",") if v.strip()]
        if kinds and set(kinds) <= {"integer", "number"}:
            try:
                values = [int(v) if re.fullmatch(r"-?\d+", v) else float(v) for v in values]
            except ValueError:
                raise fail(
                    "enum", f"{cell('enum')!r}: not numbers, as the Data Type says"
                ) from None
        schema["enum"] = values
    return schema


def _place(
    section: dict[str, Any], path: list[str], schema: dict[str, Any], required: bool, fail: Any
) -> None:
    """Put `schema` at `path` (`a.b`: `b` inside object `a`) in an object schema."""
    target = section
    for part in path[:-1]:
        child = target["properties"].setdefault(part, {"type": "object", "properties": {}})
        if "properties" not in child:
            raise fail("property", f"{'.'.join(path)}: {part!r} is not an object here")
        target = child
    name = path[-1]
    if not name:
        raise fail("property", f"{'.'.join(path)!r} is not a property name")
    if name in target["properties"] and "properties" not in schema:
        raise fail("property", f"{'.'.join(path)!r} is listed twice for this event")
    target["properties"][name] = {**target["properties"].get(name, {}), **schema}
    if required:
        target.setdefault("required", []).append(name)


def _labels(text: str, fail: Any) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = pair.partition(":")
        if not sep or not key.strip():
            raise fail("labels", f"{pair!r}: expected key:value")
        labels[key.strip()] = value.strip()
    return labels


def _rules(
    sections: dict[tuple[str, str, int], dict[str, Any]],
    meta: dict[tuple[str, str, int], dict[str, Any]],
) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    for (kind, name, version), section in sections.items():
        if kind == "global":  # the common schema is over the whole message
            rules["global"] = {"$schema": "http://json-schema.org/draft-07/schema#", **section}
            continue
        key = "traits" if kind in ("identify", "group") else "properties"
        schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                  "properties": {key: section}}  # fmt: skip
        if kind in ("identify", "group"):
            rules[kind] = schema
            continue
        event: dict[str, Any] = {"name": name}
        if kind != "track":
            event["type"] = kind
        if version != 1:
            event["version"] = version
        event.update(meta.get((kind, name, version), {}))
        event["rules"] = schema
        events.append(event)
    if events:
        rules["events"] = events
    return rules
