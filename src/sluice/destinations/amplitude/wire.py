"""Bytes and times as Segment's JavaScript makes them: `JSON.stringify`, `URLSearchParams`, dayjs.

Byte-identical requests need JavaScript's spelling of numbers (`25`, not `25.0`;
`2.5235038474716777e+27`, not `...e27`; integers beyond 2^53 rounded as a double) and of form
bodies (`URLSearchParams` leaves `*` as it is and escapes `~`, Python's `urlencode` the reverse).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote_plus

import msgspec

from sluice.mapping import UNDEFINED
from sluice.mapping.directives import js_number
from sluice.spec.timestamps import parse_ms

_SAFE_INTEGER: Final = 2**53
_encode = msgspec.json.encode


def _js_numbers(value: Any) -> Any:
    """`value` with each float (and each integer a double cannot hold) as its JavaScript text,
    and UNDEFINED members left out, as `JSON.stringify` writes them."""
    if isinstance(value, dict):
        return {k: _js_numbers(v) for k, v in value.items() if v is not UNDEFINED}
    if isinstance(value, list):
        return [None if v is UNDEFINED else _js_numbers(v) for v in value]
    if isinstance(value, float):
        return msgspec.Raw(js_number(value).encode() if math.isfinite(value) else b"null")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _SAFE_INTEGER:
        return msgspec.Raw(js_number(float(value)).encode())
    return value


def js_json(value: Any) -> bytes:
    """`JSON.stringify(value)`, as UTF-8."""
    return _encode(_js_numbers(value))


_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _escape(text: str) -> str:
    return quote_plus(_SURROGATE.sub("\ufffd", text), safe="*").replace("~", "%7E")


def form(fields: Iterable[tuple[str, str]]) -> bytes:
    """`new URLSearchParams(fields).toString()`: a form body as Segment sends it."""
    return "&".join(f"{_escape(k)}={_escape(v)}" for k, v in fields).encode()


# dayjs' own parser (its REGEX_PARSE), tried before `new Date(text)` for text not ending in Z.
DAYJS_PARSE: Final = re.compile(
    r"(\d{4})[-/]?(\d{1,2})?[-/]?(\d{0,2})[Tt\s]*(\d{1,2})?:?(\d{1,2})?:?(\d{1,2})?[.:]?(\d+)?",
    re.ASCII,
)
_MAX_DATE_MS: Final = 8.64e15
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _utc_parts(match: re.Match[str]) -> int | None:
    """`Date.UTC(...)` of dayjs' parts: months, days and hours past their range carry over, and
    years 0 to 99 are 1900 to 1999."""
    year, month, day, hour, minute, second, fraction = match.groups()
    months = (int(year) + (1900 if int(year) < 100 else 0)) * 12 + (int(month) - 1 if month else 0)
    try:
        start = datetime(months // 12, months % 12 + 1, 1, tzinfo=UTC)
    except ValueError:
        return None
    days = (int(day) if day else 1) - 1
    seconds = ((days * 24 + int(hour or 0)) * 60 + int(minute or 0)) * 60 + int(second or 0)
    ms = int((start - _EPOCH).total_seconds()) * 1000 + seconds * 1000
    return ms + int((fraction or "0")[:3])


def dayjs_utc_ms(value: Any) -> int | float | None:
    """`dayjs.utc(value).valueOf()` for what a field holds; None where dayjs says invalid.
    `new Date(text)`, dayjs' fallback, is read as ISO 8601 (parse_ms)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return math.trunc(value) if math.isfinite(value) and abs(value) <= _MAX_DATE_MS else None
    if not isinstance(value, str):
        return None
    if not value.endswith(("z", "Z")) and (match := DAYJS_PARSE.fullmatch(value)):
        return _utc_parts(match)
    return parse_ms(value)


def session_ms(value: Any) -> int | float | None:
    """Segment's `formatSessionId`: digits are taken as a number, anything else as a time."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        number = float(value)
        return int(value) if number < _SAFE_INTEGER else number
    return dayjs_utc_ms(value)
