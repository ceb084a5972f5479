"""SQL that does what `types.fit` and the flattener do, for the columnar planner.

Every value arrives as its JSON text (DuckDB's `json_extract`: compact, re-encoded the way msgspec
encodes). The SQL here turns it into a column's type only where the result is certainly what the
exact planner would store, and gives NULL otherwise; `typed_sql` says when a present value can
come out NULL, so that those values are flagged and checked in Python (`python_value`, then
`types.fit`): a discard there, or the proof that SQL could not reproduce it.

How the events are read, and proven to hold no key the planner does not know, is readers.py.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

import msgspec

from sluice.warehouse.base import ColumnType
from sluice.warehouse.shape import MOMENT, PICK, TEXT
from sluice.warehouse.types import MAX_INTEGER, MIN_INTEGER, BigInt, as_text, parse_timestamp

C = ColumnType
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode

# Texts where DuckDB's rendering of a float or an array may differ from Python's (`repr`,
# msgspec): exponents, 16+ digit runs, tiny fractions, escapes. Other texts are the same.
GUARD: Final = r"\\|[0-9][eE]|[0-9]{16}|0\.0000"
_D2, _D3, _D4 = "[0-9]" * 2, "[0-9]" * 3, "[0-9]" * 4
_DATE: Final = f"{_D4}-{_D2}-{_D2}"
# ISO-8601 forms DuckDB parses exactly as `types.parse_timestamp` does (fuzzed against it; year
# 0000 aside, which Python refuses); the collector writes the first. Others are left to Python.
TIMESTAMP_GLOBS: Final = (
    f'"{_DATE}T{_D2}:{_D2}:{_D2}.{_D3}Z"',
    f'"{_DATE}T{_D2}:{_D2}:{_D2}Z"',
    f'"{_DATE}T{_D2}:{_D2}:{_D2}.{_D3}{_D3}Z"',
    f'"{_DATE}"',
)
_INT_MIN, _INT_END = "-9.223372036854775808e18", "9.223372036854775808e18"


def literal(value: Any) -> str:
    """A SQL literal for a constant column value."""
    if isinstance(value, datetime):
        return f"TIMESTAMPTZ '{value.isoformat()}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def present_sql(role: str, w: str) -> str:
    """The JSON text `w` holds a value for this role (objects are flattened, except for ids)."""
    if role in (TEXT, MOMENT, PICK):
        return f"({w} IS NOT NULL AND {w} <> 'null')"
    return f"({w} IS NOT NULL AND {w} <> 'null' AND NOT starts_with({w}, '{{'))"


def _unquote(w: str) -> str:
    return (
        f"CASE WHEN contains({w}, '\\') THEN json_extract_string({w}, '$')"
        f" ELSE substring({w}, 2, length({w}) - 2) END"
    )


def _text(w: str, objects: bool) -> str:
    """`as_text` of a JSON value, NULL where the rendering may differ (see `GUARD`); objects
    are values only for ids (`objects`), else they are flattened and give NULL."""
    skip = f"{w} = 'null'" if objects else f"{w} = 'null' OR starts_with({w}, '{{')"
    return (
        f"CASE WHEN starts_with({w}, '\"') THEN {_unquote(w)}"
        f" WHEN {skip} OR regexp_matches({w}, '{GUARD}') THEN NULL ELSE {w} END"
    )


def _timestamp(w: str) -> str:
    shapes = " OR ".join(f"{w} GLOB '{glob}'" for glob in TIMESTAMP_GLOBS)
    # DuckDB reads hour 24 as the next day's midnight; Python refuses it (a discard there).
    return (
        f"CASE WHEN ({shapes}) AND NOT starts_with({w}, '\"0000')"
        f" AND substring({w}, 13, 2) <> '24'"
        f" THEN TRY_CAST(substring({w}, 2, strlen({w}) - 2) AS TIMESTAMPTZ) END"
    )


def _integer(w: str) -> str:
    double = f"TRY_CAST({w} AS DOUBLE)"
    return (
        f"CASE WHEN contains({w}, '.') OR contains({w}, 'e') OR contains({w}, 'E') THEN "
        f"CASE WHEN {double} = trunc({double}) AND {double} >= {_INT_MIN}"
        f" AND {double} < {_INT_END} THEN CAST({double} AS BIGINT) END"
        f" ELSE TRY_CAST({w} AS BIGINT) END"
    )


def typed_sql(role: str, column_type: ColumnType, w: str) -> tuple[str, bool]:
    """SQL giving exactly what `types.fit` gives for the JSON text `w`, else NULL; and whether
    a present value can come out NULL (it is then flagged and looked at in Python).

    Quoted texts are strings, so numbers, booleans and text never mix up: `"12"` does not cast to
    an integer. Objects are not values (they are flattened), except as ids (`TEXT`).
    """
    if role in (TEXT, PICK):  # a string, whatever the JSON kind was
        if column_type is C.VARCHAR:
            return _text(w, objects=True), True
        if column_type is C.TIMESTAMP:
            return _timestamp(w), True
        return "NULL", True
    if column_type is C.VARCHAR:
        if role == MOMENT:  # text that parses is a timestamp first: Python's to make
            return f"CASE WHEN NOT starts_with({w}, '\"') THEN {_text(w, objects=True)} END", True
        return _text(w, objects=False), True
    if column_type is C.INTEGER:
        return _integer(w), True
    if column_type is C.FLOAT:
        return f"CASE WHEN isfinite(TRY_CAST({w} AS DOUBLE)) THEN TRY_CAST({w} AS DOUBLE) END", True
    if column_type is C.BOOLEAN:
        return f"CASE {w} WHEN 'true' THEN true WHEN 'false' THEN false END", True
    return _timestamp(w), True


def python_value(raw: str, role: str) -> Any:
    """A JSON text as the flattener would hand it to `types.fit` for this role."""
    try:
        value = _decode(raw)
    except msgspec.DecodeError:
        value = json.loads(raw)  # what the exact planner's lenient decoding does (1e400, NaN)
    return flattened(value, role)


def flattened(value: Any, role: str) -> Any:
    """A decoded JSON value as the flattener would hand it to `types.fit` for this role."""
    if role in (TEXT, PICK):
        return value if type(value) is str else as_text(value)
    kind = type(value)
    if kind is str:
        return (parse_timestamp(value) or value) if role == MOMENT else value
    if role == MOMENT:  # kept as they are (`Flattener._standard`)
        return value
    if kind is list:
        return _encode(value).decode()
    if kind is int and not MIN_INTEGER <= value <= MAX_INTEGER:
        return BigInt(value)
    return value
