"""Column types from values, and values made to fit a column's type.

Segment fixes a column's type from the first value it sees and never changes it by itself
(spec 4.4). A later value of another type must never fail a load: `fit` casts it when no
information is lost (an integer into a float column, anything into a varchar column as text), and
otherwise says why it does not fit, so that the planner keeps it as a `Discard` and loads the row
without it.

Values arrive as JSON gives them (str, int, float, bool) plus `datetime` for the standard
timestamps the flattener parsed already. Integers beyond 64 bits arrive as `BigInt` so that the hot
path (a value whose Python type is the column's native type) needs no range check.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec

from sluice.warehouse.base import ColumnType

MIN_INTEGER: Final = -(2**63)
MAX_INTEGER: Final = 2**63 - 1
_ZERO = timedelta(0)
_json_encode = msgspec.json.Encoder().encode


class BigInt(int):
    """An integer outside the 64-bit range a warehouse `integer` column holds."""


class Unfit(Exception):
    """A value cannot be cast to its column's type without losing information."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# The Python type a coerced value of each column type has: a value of exactly this type fits.
NATIVE: Final[dict[ColumnType, type]] = {
    ColumnType.VARCHAR: str,
    ColumnType.INTEGER: int,
    ColumnType.FLOAT: float,
    ColumnType.BOOLEAN: bool,
    ColumnType.TIMESTAMP: datetime,
}


def parse_timestamp(text: str) -> datetime | None:
    """An aware UTC datetime for ISO-8601 text (`2024-01-02`, `2024-01-02T03:04:05.006Z`,
    offsets, `T` or space), else None. Plain numbers and other date notations are not dates."""
    if not 10 <= len(text) <= 40 or text[4] != "-" or text[7] != "-" or not text[:4].isdigit():
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    offset = moment.utcoffset()
    if offset is None:
        return moment.replace(tzinfo=UTC)
    if offset != _ZERO or moment.tzinfo is not UTC:
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            return None
    return moment


def infer(value: Any) -> ColumnType:
    """The type a new column gets from its first value."""
    kind = type(value)
    if kind is str:
        return ColumnType.VARCHAR if parse_timestamp(value) is None else ColumnType.TIMESTAMP
    if kind is bool:
        return ColumnType.BOOLEAN
    if kind is int:
        if MIN_INTEGER <= value <= MAX_INTEGER:
            return ColumnType.INTEGER
        return ColumnType.VARCHAR  # past 64 bits: its digits as text, as a BigInt's
    if kind is float:
        return ColumnType.FLOAT
    if kind is datetime:
        return ColumnType.TIMESTAMP
    return ColumnType.VARCHAR  # BigInt keeps its digits as text


def as_text(value: Any) -> str:
    """How a value is written into a varchar column, and into `_sluice.discards`."""
    kind = type(value)
    if kind is str:
        return str(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is datetime:
        moment: datetime = value
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if kind is float or kind is int or kind is BigInt:
        return repr(int(value) if kind is BigInt else value)
    return _json_encode(value).decode()


def fit(value: Any, column_type: ColumnType) -> Any:
    """`value` cast to `column_type`, or `Unfit` naming why it cannot be."""
    kind = type(value)
    if column_type is ColumnType.VARCHAR:
        return as_text(value)
    if column_type is ColumnType.TIMESTAMP:
        if kind is str:
            moment = parse_timestamp(value)
            if moment is not None:
                return moment
            raise Unfit("not an ISO-8601 timestamp")
        if kind is datetime:
            return value
    elif column_type is ColumnType.FLOAT:
        if kind is float:
            return value
        if kind is int or kind is BigInt:
            try:
                result = float(value)
            except OverflowError:
                result = math.inf
            if math.isinf(result):
                raise Unfit("number out of range for float")
            return result
    elif column_type is ColumnType.INTEGER:
        if kind is int:
            if MIN_INTEGER <= value <= MAX_INTEGER:
                return value
            raise Unfit("integer out of 64-bit range")
        if kind is BigInt:
            raise Unfit("integer out of 64-bit range")
        if kind is float and value.is_integer() and MIN_INTEGER <= value <= MAX_INTEGER:
            return int(value)
    elif column_type is ColumnType.BOOLEAN and kind is bool:
        return value
    article = "an" if column_type is ColumnType.INTEGER else "a"
    raise Unfit(f"{_describe(value)} in {article} {column_type.value} column")


def _describe(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return "text" if parse_timestamp(value) is None else "a timestamp"
    if kind is bool:
        return "a boolean"
    if kind is int or kind is BigInt:
        return "an integer"
    if kind is float:
        return "a fractional number" if not value.is_integer() else "a float"
    if kind is datetime:
        return "a timestamp"
    return "a value"
