"""What Segment's framework and Node do around a GA4 action's `perform`, in Python.

GA4's requests are byte-identical to Segment's only if the payload reaching the action is the
one Segment's code sees and the request is written as Node writes it. Between the mapping and
`perform`, actions-core drops empty top-level values (`removeEmptyValues`), wraps a lone value
of an array field, and validates against the fields' JSON schema with ajv (`coerceTypes:
'array'`, `removeAdditional`): `"12"` becomes 12 for a number, 5 becomes `"5"` and null `""`
for a string, and what cannot be coerced fails with ajv-human-errors' messages. JavaScript then
orders integer-like keys first in every object, drops `undefined` from `JSON.stringify`, writes
NaN as null and keeps numbers as doubles; node-fetch normalises the URL Segment interpolates.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sluice.destinations.base import InvalidPayload
from sluice.destinations.js import JS_SPACE, article, to_number, type_of
from sluice.mapping.directives import js_number, json_encode
from sluice.mapping.paths import UNDEFINED

__all__ = [
    "BOOLEAN",
    "INTEGER",
    "ITEMS",
    "JS_SPACE",
    "NO_DEFAULT",
    "NUMBER",
    "OBJECT",
    "STRING",
    "UNDEFINED",
    "Field",
    "date_parse",
    "js_json",
    "js_order",
    "js_to_number",
    "node_fetch_query",
    "prepare",
]

NO_DEFAULT: Any = object()  # a field without a default mapping
MAX_SAFE = 2**53
_INDEX = re.compile(r"0|[1-9][0-9]{0,9}")


# -- JavaScript values ---------------------------------------------------------------------------


js_to_number = to_number  # JavaScript's `+text` (destinations/js.py)


def _is_index(key: str) -> bool:
    return _INDEX.fullmatch(key) is not None and int(key) < 2**32 - 1


def js_order(value: Any) -> Any:
    """`value` as a JavaScript engine holds it: in every object the array-index keys come first,
    ascending, then the others in insertion order; integers beyond 2**53 are doubles."""
    if isinstance(value, Mapping):
        keys = [str(k) for k in value]
        first = sorted((k for k in keys if _is_index(k)), key=int)
        ordered = {k: js_order(value[k]) for k in first}
        ordered.update((str(k), js_order(v)) for k, v in value.items() if str(k) not in ordered)
        return ordered
    if isinstance(value, list):
        return [js_order(item) for item in value]
    if type(value) is int and abs(value) >= MAX_SAFE:
        return float(value)
    return value


def js_json(value: Any) -> bytes:
    """`JSON.stringify(value)`: `UNDEFINED` fields left out, NaN and infinities null."""
    return str(json_encode(js_order(value))).encode()


_ISO = re.compile(
    r"([+-][0-9]{6}|[0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2})"
    r"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?"
    r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?)?)?)?"
)
MAX_TIME_MS = 8.64e15


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (day may overflow the month)."""
    year -= month <= 2
    era = (year if year >= 0 else year - 399) // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468 + day - 1


def date_parse(text: str) -> float | None:
    """`Date.parse(text)` in V8 for ISO 8601 dates and date-times (`T`, `t` or a space between;
    no offset: UTC, the zone Segment's servers run in); None (NaN) for anything else."""
    match = _ISO.fullmatch(text)
    if match is None or match.group(1) == "-000000":
        return None
    year_s, month_s, day_s, hour_s, minute_s, second_s, fraction, zone = match.groups()
    year, month, day = int(year_s), int(month_s or 1), int(day_s or 1)
    hour, minute, second = int(hour_s or 0), int(minute_s or 0), int(second_s or 0)
    milli = int((fraction or "0")[:3].ljust(3, "0"))
    if not (1 <= month <= 12 and 1 <= day <= 31 and minute <= 59 and second <= 59):
        return None
    if hour > 24 or (hour == 24 and (minute or second or milli)):
        return None
    offset = 0
    if zone and zone not in "Zz":
        digits = zone[1:].replace(":", "")
        zone_hours, zone_minutes = int(digits[:2]), int(digits[2:])
        if zone_hours > 23 or zone_minutes > 59:
            return None
        offset = (zone_hours * 60 + zone_minutes) * (1 if zone[0] == "+" else -1)
    minutes = (_days_from_civil(year, month, day) * 24 + hour) * 60 + minute - offset
    ms = (minutes * 60 + second) * 1000 + milli
    return float(ms) if abs(ms) <= MAX_TIME_MS else None


# -- the URL node-fetch sends ------------------------------------------------------------------

# Escaped in a query: by the WHATWG URL parser (C0 controls, space, `"`, `'`, `<`, `>`, non-ASCII)
# and then by Node's legacy `url.parse`, which node-fetch 2 runs on the result (`\ ^ ` { | }`).
_QUERY_ESCAPED = frozenset("\"'<>\\^`{|}")


def _escape(char: str) -> str:
    if ord(char) > 0x20 and ord(char) < 0x7F and char not in _QUERY_ESCAPED:
        return char
    if 0xD800 <= ord(char) <= 0xDFFF:  # a lone surrogate: U+FFFD, as the URL parser writes it
        char = "\ufffd"
    return "".join(f"%{byte:02X}" for byte in char.encode())


def node_fetch_query(query: str) -> str:
    """The query string node-fetch puts on the wire for `…?{query}`: tabs and newlines removed,
    trailing spaces trimmed, cut at `#` (the fragment is not sent), some characters escaped and
    everything else, `%`, `&` and `[` included, as given."""
    query = re.sub("[\t\n\r]", "", query).rstrip("".join(map(chr, range(0x21))))
    return "".join(_escape(char) for char in query.partition("#")[0])


# -- the payload the action's perform sees ----------------------------------------------------

STRING, NUMBER, INTEGER, BOOLEAN, OBJECT, ITEMS = (
    "string", "number", "integer", "boolean", "object", "items",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Field:
    """One field of an action, as its definition declares it (`ITEMS`: a list of objects with
    the known properties `item_fields`, others kept)."""

    key: str
    label: str
    type: str
    default: Any = NO_DEFAULT
    required: bool = False
    choices: tuple[str, ...] = ()
    item_fields: tuple[tuple[str, str, str], ...] = field(default=())  # (key, label, type)


def _has_type(value: Any, kind: str) -> bool:
    if kind == STRING:
        return isinstance(value, str)
    if kind == BOOLEAN:
        return isinstance(value, bool)
    if kind == OBJECT:
        return isinstance(value, dict)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == INTEGER:
        return number and (isinstance(value, int) or value.is_integer())
    return number


def _coerced(value: Any, kind: str) -> tuple[bool, Any]:
    """ajv's `coerceTypes: 'array'` for one value: (whether it fits `kind`, the value)."""
    if _has_type(value, kind):
        return True, value
    if kind == OBJECT:  # not a coercible type: no unwrapping either
        return False, value
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
        if _has_type(value, kind):
            return True, value
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == STRING:
        if isinstance(value, bool):
            return True, "true" if value else "false"
        if is_number:
            return True, js_number(value)
        if value is None:
            return True, ""
    elif kind in (NUMBER, INTEGER):
        if isinstance(value, bool) or value is None:
            return True, int(bool(value))
        if isinstance(value, str) and value:
            number = js_to_number(value)
            whole = math.isinf(number) or (not math.isnan(number) and number % 1 == 0)
            if not math.isnan(number) and (kind == NUMBER or whole):
                return True, number
    elif kind == BOOLEAN:
        if value == "false" or value is None or (is_number and value == 0):
            return True, False
        if value == "true" or (is_number and value == 1):
            return True, True
    return False, value


def _validated(value: Any, kind: str, choices: tuple[str, ...], label: str, out: list[str]) -> Any:
    """The value coerced to `kind`; its errors (type, then choices) appended to `out`."""
    ok, coerced = _coerced(value, kind)
    if not ok:
        out.append(f"{label} must be {article(kind)} {kind} but it was {type_of(coerced)}.")
    if choices and coerced not in choices:
        allowed = [f'"{c}"' for c in choices]
        head, last = ", ".join(allowed[:-1]), allowed[-1]
        listed = last if not head else f"{head}{',' if len(allowed) > 2 else ''} or {last}"
        out.append(f"{label} must be one of: {listed}.")
    return coerced


def _doubles(value: Any) -> Any:
    """JSON as JavaScript parses it: integers beyond 2**53 are doubles."""
    if isinstance(value, dict):
        return {k: _doubles(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_doubles(v) for v in value]
    return float(value) if type(value) is int and abs(value) >= MAX_SAFE else value


def _items(value: Any, spec: Field, errors: list[str]) -> list[Any]:
    # removeEmptyValues drops null and "" entries (it keeps the entries themselves unchanged).
    items = [item for item in value if item is not None and item != ""]
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            where = f"The value at /items/{index}"
            errors.append(f"{where} must be an object but it was {type_of(item)}.")
            continue
        for key, label, kind in spec.item_fields:
            if key in item:
                item[key] = _validated(item[key], kind, (), label, errors)
    return items


def prepare(payload: Mapping[str, Any], fields: tuple[Field, ...]) -> dict[str, Any]:
    """The mapped payload as the action's perform receives it, or InvalidPayload with ajv's
    messages (missing required fields first, then each field's errors in definition order)."""
    known = {spec.key: spec for spec in fields}
    # Top level: no null, no "", no field the action lacks; a lone value of a list field wrapped.
    data = {
        key: _doubles(value)
        for key, value in payload.items()
        if key in known and value is not None and value != ""
    }
    errors = [
        f"The root value is missing the required field '{spec.key}'."
        for spec in fields
        if spec.required and spec.key not in data
    ]
    for spec in fields:
        if spec.key not in data:
            continue
        value = data[spec.key]
        if spec.type == ITEMS:
            data[spec.key] = _items(value if isinstance(value, list) else [value], spec, errors)
        else:
            data[spec.key] = _validated(value, spec.type, spec.choices, spec.label, errors)
    if errors:
        raise InvalidPayload(" ".join(errors))
    return data
