"""What Segment's actions-core does to a mapped payload before an action's code sees it.

`Action.execute` runs `removeEmptyValues(payload, schema, true)` and then ajv (`coerceTypes:
"array"`, `removeAdditional: true`, `allErrors`) against the JSON schema of the action's fields.
So the action only ever sees its own fields (a key the mapping adds that is not a field, say
`library2` of an older mapping, never reaches the request), with values coerced to the field's
type (`"12"` -> 12 for a number, `5` -> `"5"` for a string, `["x"]` -> `"x"`), and a payload
missing a required field or holding a value of the wrong type is refused with
ajv-human-errors' messages, which Sluice parks the event with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sluice.destinations.amplitude.fields import Field, Fields
from sluice.destinations.amplitude.wire import DAYJS_PARSE
from sluice.destinations.base import InvalidPayload
from sluice.destinations.js import article, to_number, type_of
from sluice.mapping.directives import js_number, js_string
from sluice.spec.timestamps import parse_ms


@dataclass(frozen=True, slots=True)
class Schema:
    """The part of a field's JSON schema (actions-core's `fieldsToJsonSchema`) that acts."""

    title: str
    types: tuple[str, ...]
    date_like: bool = False
    enum: tuple[Any, ...] = ()
    properties: Mapping[str, Schema] | None = None
    additional: bool = True
    required: tuple[str, ...] = ()
    items: Schema | None = None


def object_schema(fields: Fields, title: str = "", additional: bool = False) -> Schema:
    return Schema(
        title,
        ("object",),
        properties={name: field_schema(f) for name, f in fields.items()},
        additional=additional,
        required=tuple(name for name, f in fields.items() if f.required),
    )


def field_schema(f: Field) -> Schema:
    base = ("string", "number") if f.type == "datetime" else (f.type,)
    if f.multiple:  # `type: "array"` replaces any `null` allowNull added
        if f.properties:
            items = object_schema(f.properties, additional=f.additional)
        else:
            items = Schema("", base, enum=f.choices)
        return Schema(f.label, ("array",), items=items)
    if f.properties:
        nested = object_schema(f.properties, f.label, f.additional)
        return Schema(
            f.label,
            base,
            properties=nested.properties,
            additional=f.additional,
            required=nested.required,
        )
    enum = (*f.choices, None) if f.choices and f.nullable else f.choices
    types = (*base, "null") if f.nullable else base
    return Schema(f.label, types, f.type == "datetime", enum)


class _Empty:
    """removeEmptyValues' `undefined`: the key goes."""


_EMPTY = _Empty()


def _remove_empty(value: Any, schema: Schema | None, root: bool = False) -> Any:
    """actions-core's `removeEmptyValues`: nulls and empty strings a field's type does not allow
    go (and every empty string at the top); array items are only filtered, never cleaned."""
    if schema is None or not schema.types:
        return value
    if isinstance(value, list):
        if schema.items is None:
            return value
        return [v for v in value if _remove_empty(v, schema.items) is not _EMPTY]
    if isinstance(value, dict):
        if schema.properties is None:
            return value
        cleaned = {}
        for key, item in value.items():
            item = _remove_empty(item, schema.properties.get(key))
            if item is not _EMPTY and not (root and item == ""):
                cleaned[key] = item
        return cleaned
    if value is None and "null" not in schema.types:
        return _EMPTY
    if isinstance(value, str) and value == "" and "string" not in schema.types:
        return _EMPTY
    return value


def validated(payload: Any, fields: Fields, schema: Schema) -> dict[str, Any]:
    """The payload an action's perform gets from `payload` (see the module docstring)."""
    data = _remove_empty(payload, schema, root=True)
    if isinstance(data, dict):
        for name, f in fields.items():  # arrifyFields: a lone value of a `multiple` field
            if f.multiple and name in data and data[name] is not None:
                data[name] = data[name] if isinstance(data[name], list) else [data[name]]
    errors: list[str] = []
    data = _check(data, schema, "", errors)
    if errors:
        raise InvalidPayload(" ".join(errors))
    assert isinstance(data, dict)
    return data


# -- ajv, for the keywords these schemas use ----------------------------------------------------


def _is(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer":
        return number and (isinstance(value, int) or value.is_integer())
    return number  # "number"


js_to_number = to_number  # JavaScript's `+text` (destinations/js.py)


def _coerced(value: Any, kinds: tuple[str, ...]) -> tuple[bool, Any]:
    """ajv's coercion (`coerceTypes: "array"`) of a value none of `kinds` matches."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
        if any(_is(value, k) for k in kinds):
            return True, value
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    for kind in kinds:
        if kind == "string":
            if is_number or isinstance(value, bool):
                return True, js_string(value)
            if value is None:
                return True, ""
        elif kind in ("number", "integer"):
            if isinstance(value, bool) or value is None:
                return True, int(bool(value))
            if isinstance(value, str) and value:
                number = js_to_number(value)
                if not math.isnan(number) and (kind == "number" or number.is_integer()):
                    return True, number
        elif kind == "boolean":
            if value == "false" or value is None or (is_number and value == 0):
                return True, False
            if value == "true" or (is_number and value == 1):
                return True, True
        elif kind == "null":
            if value == "" or value is False or (is_number and value == 0):
                return True, None
        elif kind == "array" and (value is None or isinstance(value, str | bool) or is_number):
            return True, [value]
    return False, value


def _check(value: Any, schema: Schema, where: str, errors: list[str]) -> Any:
    """Validate `value` against `schema`, coercing and removing as ajv does; the value to keep."""
    if schema.types and not any(_is(value, k) for k in schema.types):
        ok, value = _coerced(value, schema.types)
        if not ok:
            expected = _listed(list(schema.types), "or")
            errors.append(_say(schema, where, f"must be {article(expected)} {expected} but it"
                                              f" was {type_of(value)}"))  # fmt: skip
    if schema.enum and value not in schema.enum:
        allowed = _listed([_quoted(v) for v in schema.enum], "or")
        errors.append(_say(schema, where, f"must be one of: {allowed}"))
    if schema.date_like and isinstance(value, str) and not date_like(value):
        errors.append(_say(schema, where, "must be a valid date-like string but it was not"))
    if isinstance(value, dict):
        for name in schema.required:
            if name not in value:
                errors.append(_say(schema, where, f"is missing the required field '{name}'"))
        if schema.properties is not None:
            value = dict(value)  # it may be the event's own object: change a copy
            if not schema.additional:
                for key in [k for k in value if k not in schema.properties]:
                    del value[key]
            for name, inner in schema.properties.items():
                if name in value:
                    value[name] = _check(value[name], inner, f"{where}/{name}", errors)
    if isinstance(value, list) and schema.items is not None:
        value = list(value)
        for index, item in enumerate(value):
            value[index] = _check(item, schema.items, f"{where}/{index}", errors)
    return value


def _say(schema: Schema, where: str, text: str) -> str:
    """ajv-human-errors' sentence: the field's label, else where the value is."""
    subject = schema.title or (f"the value at {where}" if where else "the root value")
    return f"{subject[0].upper()}{subject[1:]} {text}."


def _listed(items: list[str], conjunction: str) -> str:
    if len(items) <= 2:
        return f" {conjunction} ".join(items)
    return f"{', '.join(items[:-1])}, {conjunction} {items[-1]}"


def _quoted(value: Any) -> str:
    return "null" if value is None else f'"{value}"'


def date_like(text: str) -> bool:
    """actions-core's `date-like` format: dayjs reads it (or it is epoch seconds or ms).

    `new Date(text)`, dayjs' fallback, is approximated by ISO 8601 (parse_ms)."""
    try:
        if js_number(float(text)) == text:  # String(Number(text)) === text: epoch seconds
            return abs(float(text)) * 1000 <= 8.64e15
    except ValueError:
        pass
    if not text.endswith(("z", "Z")) and DAYJS_PARSE.fullmatch(text):  # dayjs' own parser
        return True
    return parse_ms(text) is not None
