"""What Segment's actions runtime does to a mapped payload before the Mixpanel code sees it.

Segment's `Action.execute` (actions-core `destination-kit/action.js`) does not hand the mapping's
output to `perform` as it is: it turns the action's fields into a JSON schema
(`fields-to-jsonschema.js`), drops empty values (`remove-empty-values.js`: nulls where the field
does not allow null, `""` where it is not a string, and, for `perform` only, every `""` at the
top level), wraps values of array fields (`arrify.js`), then validates with ajv
(`schema-validation.js`: `coerceTypes: "array"`, `removeAdditional: true`, `allErrors`) whose
coercions change what is sent (`false` for a string field becomes `"false"`, `"2"` for a number
field becomes `2`) and whose errors (`@segment/ajv-human-errors`) refuse the event. The
Mixpanel request builders read the payload this module returns, so that they send what
Segment's code sends for any mapping, not only for the presets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sluice.destinations.base import InvalidPayload
from sluice.destinations.js import article, to_number, type_of
from sluice.mapping.directives import js_number, js_string
from sluice.mapping.paths import UNDEFINED
from sluice.spec.timestamps import parse_ms

GONE: Any = UNDEFINED  # JavaScript's `undefined`: a key that holds it is not sent


@dataclass(frozen=True, slots=True)
class Field:
    """One of an action's fields, as Segment's definition declares it (`InputField`)."""

    type: str  # string, number, integer, boolean, object, datetime
    label: str
    default: Any = GONE  # the preset mapping's value (`defaultValues`)
    required: bool = False
    allow_null: bool = False
    multiple: bool = False
    properties: Mapping[str, Field] | None = None
    additional: bool = False  # `additionalProperties` of an object field with properties
    minimum: float | None = None
    maximum: float | None = None


class Node:
    """One node of `fieldsToJsonSchema`'s schema, compiled once: what removeEmptyValues and ajv
    look at (a payload is cleaned for every event, so the checks are precomputed)."""

    __slots__ = ("accepts", "closed", "date_like", "items", "kinds", "maximum", "minimum",
                 "order", "properties", "required", "simple", "title")  # fmt: skip

    def __init__(self, kinds: tuple[str, ...], title: str | None = None) -> None:
        self.kinds = kinds
        self.title = title
        checks = [_TYPE_CHECKS[kind] for kind in kinds]
        self.accepts = checks[0] if len(checks) == 1 else lambda v: any(c(v) for c in checks)
        self.date_like = False
        self.minimum: float | None = None
        self.maximum: float | None = None
        self.properties: dict[str, Node] | None = None
        self.order: dict[str, int] = {}  # each property's place in the schema
        self.required: tuple[str, ...] = ()
        self.closed = False  # additionalProperties: false (ajv's removeAdditional drops the rest)
        self.items: Node | None = None
        self.simple = True  # no keyword but `type`: a value of the right type is done


def schema_of(fields: Mapping[str, Field], additional: bool = False) -> Node:
    """`fieldsToJsonSchema`: the object schema ajv validates a payload with."""
    node = Node(("object",))
    node.properties = {name: _field_node(field) for name, field in fields.items()}
    node.required = tuple(name for name, field in fields.items() if field.required)
    node.order = {name: place for place, name in enumerate(fields)}
    node.closed, node.simple = not additional, False
    return node


def _field_node(field: Field) -> Node:
    base = ("string", "number") if field.type == "datetime" else (field.type,)
    kinds = (*base, "null") if field.allow_null else base
    node = Node(("array",) if field.multiple else kinds, field.label)
    node.date_like = field.type == "datetime"
    if field.type == "number":
        node.minimum, node.maximum = field.minimum or None, field.maximum or None
    if field.multiple:
        node.items = Node(base)
    if field.type == "object" and field.properties:
        nested = schema_of(field.properties, field.additional)
        if field.multiple:
            node.items = nested
        else:
            node.properties, node.required, node.closed = (
                nested.properties, nested.required, nested.closed
            )  # fmt: skip
    node.simple = not (node.date_like or node.minimum or node.maximum or node.properties
                       or node.items)  # fmt: skip
    return node


def defaults(fields: Mapping[str, Field]) -> dict[str, Any]:
    """`defaultValues`: the mapping of a preset, in the definition's field order."""
    return {name: field.default for name, field in fields.items() if field.default is not GONE}


def clean(payload: Any, schema: Node, *, batch: bool) -> dict[str, Any]:
    """The payload `perform` (or, with `batch`, `performBatch`) receives; raises InvalidPayload
    with ajv's messages when Segment's validation refuses it."""
    errors: list[str] = []
    if type(payload) is not dict:  # "The root value must be an object but it was …"
        _validate(payload, schema, "", errors)
        raise InvalidPayload(" ".join(errors))
    properties = schema.properties or {}
    data, check = {}, []
    for key, value in payload.items():
        field = properties.get(key)
        if field is None:
            continue  # removeAdditional
        if type(value) is not str or not value:
            value = _remove_empty(value, field)
            if value is GONE or (not batch and value == ""):
                continue  # the top level's empty text goes too, but for performBatch
        if field.kinds == _ARRAY and type(value) is not list and value is not None:
            value = [value]  # arrifyFields
        data[key] = value
        if not (field.simple and field.accepts(value)):
            check.append(key)
    for name in schema.required:
        if name not in data:
            _error(errors, schema, "", f"is missing the required field '{name}'")
    for key in sorted(check, key=schema.order.__getitem__):  # ajv goes in the schema's order
        data[key] = _validate(data[key], properties[key], f"/{key}", errors)
    if errors:
        raise InvalidPayload(" ".join(errors))
    return data


_ARRAY = ("array",)


def _remove_empty(value: Any, node: Node | None) -> Any:
    """removeEmptyValues below the top level: nulls and `""` the field's type does not allow."""
    if node is None:
        return value
    kind = type(value)
    if kind is list:
        if node.items is None:
            return value
        # Segment's filter keeps the items as they were, only dropping the empty ones.
        return [item for item in value if _remove_empty(item, node.items) is not GONE]
    if kind is dict:
        if node.properties is None:
            return value
        kept = {}
        for key, item in value.items():
            item = _remove_empty(item, node.properties.get(key))
            if item is not GONE:
                kept[key] = item
        return kept
    if value is None:
        return value if "null" in node.kinds else GONE
    if kind is str and not value and "string" not in node.kinds:
        return GONE
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: type(v) is str,
    "number": _is_number,
    "integer": lambda v: _is_number(v) and math.isfinite(v) and v % 1 == 0,
    "boolean": lambda v: type(v) is bool,
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "null": lambda v: v is None,
}
_FAILED: Any = object()
_COERCIBLE = frozenset({"string", "number", "integer", "boolean", "null", "array"})


def _error(errors: list[str], node: Node, path: str, text: str) -> None:
    """ajv-human-errors with `fieldLabels: "title"`: the field's label, else where it is."""
    preamble = node.title or ("the root value" if not path else f"the value at {path}")
    message = f"{preamble} {text}"
    errors.append(f"{message[:1].upper()}{message[1:]}.")


def _validate(data: Any, node: Node, path: str, errors: list[str]) -> Any:
    """ajv's checks in its order (type with coercion, then required, then each property in the
    schema's order), returning the coerced value; messages go to `errors`."""
    if node.accepts(data):
        if node.simple:
            return data
    else:
        coerced = _coerce(data, node.kinds)
        if coerced is _FAILED:
            expected = _humanize_list(node.kinds)
            found = type_of(data)
            _error(errors, node, path, f"must be {article(expected)} {expected} but it was {found}")
            return data
        data = coerced
    if node.date_like and type(data) is str and not _date_like(data):
        _error(errors, node, path, "must be a valid date-like string but it was not")
    if node.minimum is not None and _is_number(data) and data < node.minimum:
        _error(errors, node, path, f"must be equal to or greater than {js_number(node.minimum)}")
    if node.maximum is not None and _is_number(data) and data > node.maximum:
        _error(errors, node, path, f"must be equal to or less than {js_number(node.maximum)}")
    if node.properties is not None and type(data) is dict:
        for name in node.required:
            if name not in data:
                _error(errors, node, path, f"is missing the required field '{name}'")
        properties = node.properties
        # removeAdditional drops what a closed object does not declare.
        data = {k: v for k, v in data.items() if k in properties} if node.closed else dict(data)
        for name, sub in properties.items():
            if name in data:
                data[name] = _validate(data[name], sub, f"{path}/{name}", errors)
    elif node.items is not None and type(data) is list:
        items = node.items
        data = [_validate(v, items, f"{path}/{i}", errors) for i, v in enumerate(data)]
    return data


def _coerce(data: Any, kinds: tuple[str, ...]) -> Any:
    """ajv's `coerceData` with `coerceTypes: "array"`: the first coercion that applies."""
    if not any(kind in _COERCIBLE for kind in kinds):
        return _FAILED
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
        if any(_TYPE_CHECKS[k](data) for k in kinds):
            return data
    for kind in kinds:
        if kind == "string":
            if _is_number(data) or isinstance(data, bool):
                return js_string(data)
            if data is None:
                return ""
        elif kind in ("number", "integer"):
            if isinstance(data, bool) or data is None:
                return int(bool(data))
            if isinstance(data, str) and data:
                number = js_to_number(data)
                if not math.isnan(number) and (kind == "number" or not number % 1):
                    return number
        elif kind == "boolean":
            if data == "false" or data is None or (_is_number(data) and data == 0):
                return False
            if data == "true" or (_is_number(data) and data == 1):
                return True
        elif kind == "null":
            if data == "" or data is False or (_is_number(data) and data == 0):
                return None
        elif kind == "array" and (data is None or isinstance(data, str | bool | int | float)):
            return [data]
    return _FAILED


def js_to_number(text: str) -> int | float:
    """JavaScript's `+text` (destinations/js.py); integral results as int, as JSON.stringify
    writes them (`12`, not `12.0`)."""
    number = to_number(text)
    return int(number) if number.is_integer() and abs(number) < 1e21 else number


def _date_like(text: str) -> bool:
    """actions-core's `date-like` format: a number as text, or a date dayjs can read."""
    number = js_to_number(text)
    if not math.isnan(number) and js_number(number) == text:
        return math.isfinite(number) and abs(number) * 1000 <= 8.64e15
    return date_ms(text) is not None


# dayjs's REGEX_PARSE: what `dayjs.utc` reads itself (as UTC) rather than through `new Date`.
_DAYJS = re.compile(
    r"([0-9]{4})[-/]?([0-9]{1,2})?[-/]?([0-9]{0,2})[Tt\s]*([0-9]{1,2})?:?([0-9]{1,2})?:?"
    r"([0-9]{1,2})?[.:]?([0-9]+)?"
)
_MAX_DATE_MS = 8.64e15  # JavaScript's Date range


def date_ms(value: Any) -> int | None:
    """`dayjs.utc(value).valueOf()`, or None where dayjs finds no valid date (JavaScript's own
    date parsing, for the text dayjs does not read itself, is read as ISO 8601)."""
    if _is_number(value):
        valid = math.isfinite(value) and abs(value) <= _MAX_DATE_MS
        return int(value) if valid else None  # TimeClip truncates
    if not isinstance(value, str):
        return None
    found = None if value[-1:] in ("Z", "z") else _DAYJS.fullmatch(value)
    if found is None:
        return parse_ms(value)
    year, month, day, hour, minute, second, fraction = found.groups()
    years = int(year) + (1900 if int(year) <= 99 else 0)  # Date.UTC's two-digit years
    y, m = divmod(years * 12 + (int(month) - 1 if month else 0), 12)
    days = _days_from_civil(y, m + 1) + (int(day) if day else 1) - 1
    ms = ((days * 24 + int(hour or 0)) * 60 + int(minute or 0)) * 60 + int(second or 0)
    ms = ms * 1000 + int((fraction or "0")[:3])
    return ms if abs(ms) <= _MAX_DATE_MS else None


def _days_from_civil(year: int, month: int) -> int:
    """Days from 1970-01-01 to the first of the month (proleptic Gregorian, any year)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _humanize_list(items: tuple[str, ...]) -> str:
    if len(items) <= 2:
        return " or ".join(items)
    return f"{', '.join(items[:-1])}, or {items[-1]}"
