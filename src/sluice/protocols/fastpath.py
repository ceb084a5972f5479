"""A rule's fast check: the common tracking plan schema (types, required, flat constraints)
turned into msgspec types, so a valid event is checked by decoding its raw JSON fields straight
into them, in C, without building Python dicts or re-encoding the event afterwards.

The fast check is a conservative pre-check, never the verdict on a failure: when it says valid,
the event is valid (every type here accepts only what the schema accepts); when it says invalid,
or cannot tell, the collector runs the compiled `fastjsonschema` validators, which decide and
list the violations. So a keyword this module does not translate costs speed, never accuracy:
a top-level property it cannot express is checked by `fastjsonschema` alone (`_Post`), a message
field it cannot express is decoded and checked by `fastjsonschema`, and a rule whose top level it
cannot express has no fast check at all.

The strict variant also refuses properties (or traits) the rule does not plan, for sources that
omit them: an event passing it has nothing to omit.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Raw

from sluice.protocols.schema import Validator, compile_schema, planned_keys

_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "examples", "default", "readOnly",
     "writeOnly", "deprecated"}
)  # fmt: skip
_STRING = ("minLength", "maxLength", "pattern")
_NUMBER = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_ARRAY = ("items", "minItems", "maxItems")
_OBJECT = ("properties", "required", "additionalProperties")
_KNOWN = frozenset({"type", "enum", *_STRING, *_NUMBER, *_ARRAY, *_OBJECT})
# fastjsonschema anchors `$` at the very end of the string (`\Z`); the fast check must too.
_DOLLAR = re.compile(r"(?<!\\)\$")


class _Absent:
    """A property the event does not have (None is a value)."""


ABSENT: Any = _Absent()
_convert = msgspec.convert
FieldCheck = Callable[[Any], None]  # raises when the value is not (known to be) valid


class _Unsupported(Exception):
    pass


class FastRule:
    """The fast check of one rule (a schema over the whole message); `valid` is the hot path."""

    __slots__ = ("fields", "required", "strict_fields")

    def __init__(
        self,
        required: tuple[str, ...],
        fields: tuple[tuple[str, FieldCheck], ...],
        strict_fields: tuple[tuple[str, FieldCheck], ...],
    ) -> None:
        self.required, self.fields, self.strict_fields = required, fields, strict_fields

    def valid(self, item: dict[str, Any], strict: bool) -> bool:
        """True only when `item` is valid (and, `strict`, has no unplanned keys)."""
        fields = self.strict_fields if strict else self.fields
        for name in self.required:
            if name not in item:
                return False
        try:
            for name, check in fields:
                value = item.get(name, ABSENT)
                if value is not ABSENT:
                    check(value)
        except Exception:  # msgspec's ValidationError, fastjsonschema's exception, or worse
            return False
        return True


def fast_rule(schema: Any, section: str) -> FastRule | None:
    """The fast check of a rule, or None when its top level is beyond this module."""
    if not isinstance(schema, dict) or set(schema) - _ANNOTATIONS - {"type", *_OBJECT}:
        return None
    kind = schema.get("type", "object")
    if kind != "object" and not (isinstance(kind, list) and "object" in kind):
        return None
    required = schema.get("required", [])
    properties = schema.get("properties", {})
    if schema.get("additionalProperties", True) is not True or _has_ref(schema):
        return None
    if not isinstance(required, list) or not isinstance(properties, dict):
        return None
    if not all(isinstance(name, str) for name in required):
        return None
    draft = schema.get("$schema")
    fields: list[tuple[str, FieldCheck]] = []
    strict: list[tuple[str, FieldCheck]] = []
    for name, sub in properties.items():
        check = _field_check(sub, draft, None)
        if check is not None:
            fields.append((name, check))
        if name == section:
            check = _field_check(sub, draft, planned_keys(schema, section))
        if check is not None:
            strict.append((name, check))
    if section not in properties:  # all its keys are unplanned
        strict.append((section, _fjs_check(True, None, frozenset())))
    return FastRule(tuple(required), tuple(fields), tuple(strict))


def _has_ref(schema: Any) -> bool:
    """A `$ref` anywhere: sub-schemas could not be checked apart from the whole."""
    if isinstance(schema, dict):
        return "$ref" in schema or any(_has_ref(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_has_ref(v) for v in schema)
    return False


def _field_check(schema: Any, draft: Any, planned: frozenset[str] | None) -> FieldCheck | None:
    """A check of one message field: its msgspec type when it has one, else fastjsonschema's;
    None when any value is valid. `planned`: the keys allowed (the rule's section, strict)."""
    try:
        if _is_object(schema):
            kind, posts = _object_type(schema, draft, strict=planned is not None)
        elif planned is not None:
            raise _Unsupported  # a section that may not be an object: keys checked below
        else:
            kind, posts = _type(schema), ()
        if kind is Any and not posts:
            return None
        decode = msgspec.json.Decoder(kind).decode
    except (_Unsupported, TypeError):  # TypeError: msgspec refused the type (some unions)
        return _fjs_check(schema, draft, planned)

    scalars = _scalar_types(kind)
    if scalars is not None:  # most message fields: a type test, no call into msgspec

        def check_scalar(value: Any) -> None:
            if type(value) in scalars:
                return
            if type(value) is not Raw:
                raise NotPlanned
            decode(value)

        return check_scalar

    if not posts:

        def check(value: Any) -> None:
            if type(value) is Raw:
                decode(value)
            else:
                _convert(value, kind)

        return check

    def check_with_posts(value: Any) -> None:
        obj = decode(value) if type(value) is Raw else _convert(value, kind)
        for attr, validate in posts:
            found = getattr(obj, attr)
            if found is not ABSENT:
                validate(found)

    return check_with_posts


class NotPlanned(Exception):
    """A value the fast check does not accept."""


_NONE = type(None)
# `type(value) in`: a bool is not an int here, as in JSON Schema; a JSON number may be an int
_SCALARS: tuple[tuple[Any, tuple[type, ...]], ...] = (
    (str, (str,)), (float, (float, int)), (int, (int,)), (bool, (bool,)), (_NONE, (_NONE,))
)  # fmt: skip


def _scalar_types(kind: Any) -> frozenset[type] | None:
    """The Python types of a decoded value `kind` accepts, when a type test is the whole check."""
    found: set[type] = set()
    for member in typing.get_args(kind) if isinstance(kind, types.UnionType) else (kind,):
        member = _NONE if member is None else member
        accepted = next((types_ for t, types_ in _SCALARS if member is t), None)
        if accepted is None:
            return None
        found.update(accepted)
    return frozenset(found)


def _fjs_check(schema: Any, draft: Any, planned: frozenset[str] | None) -> FieldCheck:
    validate = _fjs(schema, draft)
    decode = msgspec.json.decode

    def check(value: Any) -> None:
        value = decode(value) if type(value) is Raw else value
        validate(value)
        if planned is not None and isinstance(value, dict) and not planned.issuperset(value):
            raise NotPlanned

    return check


def _fjs(schema: Any, draft: Any) -> Validator:
    if draft is not None and isinstance(schema, dict):
        schema = {"$schema": draft, **schema}
    return compile_schema(schema)


def _is_object(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "object" and "enum" not in schema


def _object_type(
    schema: dict[str, Any], draft: Any, strict: bool
) -> tuple[Any, tuple[tuple[str, Validator], ...]]:
    """A Struct for an object schema; properties it cannot type are checked after decoding, by
    fastjsonschema (`posts`: attribute, validator)."""
    if set(schema) - _ANNOTATIONS - _KNOWN:
        raise _Unsupported
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    additional = schema.get("additionalProperties", True)
    if not isinstance(properties, dict) or not isinstance(required, list):
        raise _Unsupported
    if additional is not True and additional is not False:
        raise _Unsupported
    if not all(isinstance(name, str) for name in required):
        raise _Unsupported
    if strict and set(required) - set(properties):
        raise _Unsupported  # a required name the rule does not plan: `planned` would disagree
    fields: list[tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    posts: list[tuple[str, Validator]] = []
    for i, (name, sub) in enumerate(properties.items()):
        attr = f"f{i}"
        rename[attr] = name
        try:
            kind = _type(sub)
        except _Unsupported:
            kind = Any
            posts.append((attr, _fjs(sub, draft)))
        fields.append((attr, kind, msgspec.NODEFAULT if name in required else ABSENT))
    for j, name in enumerate(n for n in dict.fromkeys(required) if n not in properties):
        rename[f"r{j}"] = name
        fields.append((f"r{j}", Any, msgspec.NODEFAULT))
    struct = msgspec.defstruct(
        "Planned", fields, kw_only=True, rename=rename,
        forbid_unknown_fields=strict or additional is False,
    )  # fmt: skip
    return struct, tuple(posts)


def _type(schema: Any) -> Any:
    """A msgspec type accepting only values `schema` accepts; `_Unsupported` when there is none
    this module can vouch for (nested objects here have no post-checks)."""
    if schema is True:
        return Any
    if not isinstance(schema, dict):
        raise _Unsupported
    keys = set(schema) - _ANNOTATIONS
    if keys - _KNOWN:
        raise _Unsupported
    kinds = schema.get("type")
    if kinds is None:
        if keys == {"enum"}:
            return _enum(schema["enum"], None)
        if keys:
            raise _Unsupported  # constraints without a type apply to some values only
        return Any
    names = [kinds] if isinstance(kinds, str) else kinds
    if not isinstance(names, list) or not names:
        raise _Unsupported
    if "enum" in schema:
        if keys - {"type", "enum"}:
            raise _Unsupported
        return _enum(schema["enum"], set(names))
    members = [_one(name, schema) for name in dict.fromkeys(names)]
    union = members[0]
    for member in members[1:]:
        union = union | member
    return union


def _one(name: Any, schema: dict[str, Any]) -> Any:
    if name == "string":
        meta = {}
        for key, arg in (("minLength", "min_length"), ("maxLength", "max_length")):
            if key in schema:
                if type(schema[key]) is not int:
                    raise _Unsupported
                meta[arg] = schema[key]
        if "pattern" in schema:
            if not isinstance(schema["pattern"], str):
                raise _Unsupported
            meta["pattern"] = _DOLLAR.sub(r"\\Z", schema["pattern"])
        return Annotated[str, msgspec.Meta(**meta)] if meta else str
    if name in ("number", "integer"):
        meta = {}
        for key, arg in (("minimum", "ge"), ("maximum", "le"),
                         ("exclusiveMinimum", "gt"), ("exclusiveMaximum", "lt")):  # fmt: skip
            if key in schema:
                bound = schema[key]
                if type(bound) not in (int, float) or (
                    name == "integer" and type(bound) is not int
                ):
                    raise _Unsupported  # draft 4's boolean exclusive bounds included
                meta[arg] = bound
        number: Any = float if name == "number" else int
        return Annotated[number, msgspec.Meta(**meta)] if meta else number
    if name == "boolean":
        return bool
    if name == "null":
        return None
    if name == "array":
        items = schema.get("items", True)
        if isinstance(items, list):
            raise _Unsupported
        meta = {}
        for key, arg in (("minItems", "min_length"), ("maxItems", "max_length")):
            if key in schema:
                if type(schema[key]) is not int:
                    raise _Unsupported
                meta[arg] = schema[key]
        array: Any = list[_type(items)]  # type: ignore[misc]
        return Annotated[array, msgspec.Meta(**meta)] if meta else array
    if name == "object":
        if not any(key in schema for key in _OBJECT):
            return dict[str, Any]
        kind, posts = _object_type(schema, None, strict=False)
        if posts:
            raise _Unsupported
        return kind
    raise _Unsupported


def _enum(values: Any, kinds: set[str] | None) -> Any:
    """Literal of strings or of integers (booleans and floats compare loosely in JSON Schema)."""
    if not isinstance(values, list) or not values:
        raise _Unsupported
    nullable = None in values
    rest = [v for v in values if v is not None]
    if nullable and kinds is not None and "null" not in kinds:
        nullable = False  # null is not of the type: not accepted
    if all(type(v) is str for v in rest):
        if kinds is not None and "string" not in kinds:
            rest = []
    elif all(type(v) is int for v in rest):
        if kinds is not None and not kinds & {"integer", "number"}:
            rest = []
    else:
        raise _Unsupported
    if not rest:
        if nullable:
            return None
        raise _Unsupported  # nothing is valid: let fastjsonschema say so
    literal = Literal[tuple(rest)]  # type: ignore[valid-type]
    return literal | None if nullable else literal
