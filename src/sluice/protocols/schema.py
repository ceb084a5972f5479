"""One rule's JSON Schema compiled to Python by `fastjsonschema`, and its failures written as
Segment writes violations (`{"type": "Invalid Type", "field": "properties.x", ...}`).

Two validators per schema: a fail-fast one, compiled up front, that the hot path calls (a valid
event costs one function call), and one that collects every failure, compiled the first time an
event fails, so a violation list names all the fields at fault, not only the first.

Compiling never fetches anything: a remote `$ref` is refused (a plan must not make the server
open URLs), and `default` values are not written into events (validation must not change them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import fastjsonschema
from fastjsonschema import JsonSchemaException, JsonSchemaValueException

from sluice.protocols.errors import PlanError

Validator = Callable[[Any], Any]
Violation = dict[str, str]

# Keywords whose value is one sub-schema, a mapping of them, or a list of them (draft 4 to 7).
_ONE = ("additionalProperties", "additionalItems", "contains", "propertyNames", "not", "if",
        "then", "else", "items")  # fmt: skip
_MAPPING = ("properties", "patternProperties", "definitions", "dependencies")
_LIST = ("allOf", "anyOf", "oneOf", "items")

# Segment's violation types; any other keyword (enum, pattern, minimum...) is a value that is
# not permitted.
_TYPES = {"required": "Required", "type": "Invalid Type", "format": "Invalid Format"}
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string",
               type(None): "null", list: "array", dict: "object"}  # fmt: skip


def _no_remote(uri: str) -> Any:
    raise PlanError(f"Remote $ref {uri!r} is not allowed: put the schema in the plan")


_HANDLERS = {scheme: _no_remote for scheme in ("http", "https", "file", "ftp", "data", "urn")}


def compile_schema(schema: Any, *, fast_fail: bool = True) -> Validator:
    """A validator for `schema`; raises `PlanError` naming the deepest sub-schema at fault."""
    if not isinstance(schema, dict | bool):
        raise PlanError(f"Expected a JSON Schema (an object), got {type(schema).__name__}")
    try:
        return _compile(schema, fast_fail)
    except PlanError:
        raise
    except Exception as exc:
        path, message = _locate(schema, "", _message(exc))
        raise PlanError(f"Invalid JSON Schema: {message}", path=path.lstrip(".")) from None


def _compile(schema: Any, fast_fail: bool) -> Validator:
    validator: Validator = fastjsonschema.compile(
        schema, handlers=_HANDLERS, use_default=False, fast_fail=fast_fail
    )
    return validator


def _message(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _locate(schema: Any, path: str, message: str) -> tuple[str, str]:
    """The deepest sub-schema that does not compile on its own, and why (for the error path)."""
    for child_path, child in _children(schema, path):
        try:
            _compile(child, True)
        except PlanError as exc:
            return child_path, exc.message
        except Exception as exc:
            return _locate(child, child_path, _message(exc))
    if message == "Unknown type" and isinstance(schema, dict):
        message = f"Unknown type {schema.get('type')!r}"
    return path, message


def _children(schema: Any, path: str) -> Iterator[tuple[str, Any]]:
    if not isinstance(schema, dict):
        return
    for key in _ONE:
        if isinstance(schema.get(key), dict | bool):
            yield f"{path}.{key}", schema[key]
    for key in _MAPPING:
        value = schema.get(key)
        if isinstance(value, dict):
            for name, child in value.items():
                if isinstance(child, dict | bool):
                    yield f"{path}.{key}.{name}", child
    for key in _LIST:
        value = schema.get(key)
        if isinstance(value, list):
            for i, child in enumerate(value):
                yield f"{path}.{key}[{i}]", child


class Rule:
    """One compiled rule: `fast` (when the schema allows one) then `check` decide whether an
    event is valid; `violations` runs only after both said no."""

    __slots__ = ("_full", "check", "fast", "planned", "schema", "section")

    def __init__(self, schema: dict[str, Any], section: str) -> None:
        from sluice.protocols.fastpath import fast_rule  # it builds on this module

        self.schema = schema
        self.section = section  # "properties" or "traits": where unplanned keys are looked for
        self.check: Validator = compile_schema(schema)
        self._full: Validator | None = None
        self.planned = planned_keys(schema, section)
        try:
            self.fast = fast_rule(schema, section)
        except PlanError:  # a part that does not compile apart from the whole: no fast check
            self.fast = None

    def violations(self, message: dict[str, Any]) -> list[Violation]:
        """Every failure of `message` against the schema; empty when it is valid."""
        if self._full is None:
            self._full = compile_schema(self.schema, fast_fail=False)
        try:
            self._full(message)
        except JsonSchemaValueException as exc:
            return list(_violations(exc))
        except JsonSchemaException as exc:
            errors = getattr(exc, "errors", [])
            return [v for error in errors for v in _violations(error)]
        return []


def planned_keys(schema: dict[str, Any], section: str) -> frozenset[str]:
    """The property (or trait) names a rule defines: `properties.<section>.properties`."""
    outer = schema.get("properties")
    inner = outer.get(section) if isinstance(outer, dict) else None
    props = inner.get("properties") if isinstance(inner, dict) else None
    return frozenset(props) if isinstance(props, dict) else frozenset()


def _violations(exc: JsonSchemaValueException) -> Iterator[Violation]:
    field = ".".join(str(part) for part in (exc.path or [])[1:])  # [0] is fastjsonschema's "data"
    rule = exc.rule or ""
    if rule == "required" and isinstance(exc.value, dict):
        for name in exc.rule_definition or ():
            if name not in exc.value:
                yield {
                    "type": "Required",
                    "field": f"{field}.{name}" if field else str(name),
                    "description": f"Missing required property {name!r}",
                }
        return
    kind = _TYPES.get(rule, "Invalid Value")
    if rule == "type":
        expected = exc.rule_definition
        if isinstance(expected, list):
            expected = ", ".join(map(str, expected))
        given = _JSON_TYPES.get(type(exc.value), "unknown")
        description = f"Invalid type. Expected: {expected}, given: {given}"
    else:
        description = exc.message.removeprefix("data.").removeprefix("data ")
    yield {"type": kind, "field": field, "description": description}
