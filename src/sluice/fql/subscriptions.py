"""Compile Destination Actions triggers: the FQL subset Segment stores subscriptions in.

A mapping's trigger ("subscription") is written in FQL but evaluated with the looser rules of
Segment's `@segment/destination-subscriptions` package, which we follow so a trigger copied
from Segment selects the same events:

- `x = "v"` / `x != "v"` compare the JavaScript string form of the value, so `x = 5` matches
  5, 5.0 and "5", and `x = true` matches true and "true"; a missing field is "undefined".
- `x = null` matches null and missing fields; `x != null` means the field exists.
- `<`, `<=`, `>`, `>=` need a number, or a numeric string, on both sides.
- `contains(x, "v")`, `match(x, "v*")` (starts with) and `match(x, "*v")` (ends with), and
  their `!` negations, need a string value: on anything else they are false.
- `properties.<path>` and `traits.<path>` both read `traits` on identify and group calls and
  `properties` on the others, as Segment does.
- Conditions join with `and` or `or`; a parenthesised group adds one level. Mixing `and` and
  `or` at one level needs parentheses (Segment would silently pick one for the whole level).

Anything else (other fields, functions, `in`, lists, deeper nesting) is an FqlError.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from sluice.fql.errors import FqlError
from sluice.fql.evaluate import ORDERING, Event, Predicate
from sluice.fql.lexer import LPAREN, OP, PATH, tokenize
from sluice.fql.parser import And, Call, Compare, Group, Literal, Node, Not, Or, Path, parse

_CACHE_SIZE: Final = 4096
_MISSING: Final[Any] = object()
_TOP_FIELDS: Final = frozenset({"type", "event", "name", "userId"})
_NESTED_FIELDS: Final = frozenset({"properties", "traits", "context"})
_TRAIT_CALLS: Final = frozenset({"identify", "group"})
_NUMERIC: Final = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*")
_EXPONENT: Final = re.compile(r"e([+-])0*(\d)")
_GLOB_CHARS: Final = frozenset("*?[]\\")
_FIELDS_HELP: Final = "type, event, name, userId, properties.<path>, traits.<path>, context.<path>"

Getter = Callable[[Event], Any]


@functools.lru_cache(maxsize=_CACHE_SIZE)
def compile_trigger(expr: str) -> Predicate:
    """A predicate for the trigger `expr`; raises FqlError if it is not in the subset."""
    if not expr.strip():
        raise FqlError("a trigger cannot be empty", expr, 0)
    expr = segment_spelling(expr)
    root = _level(parse(expr), expr, depth=0)

    def predicate(event: Event) -> bool:
        try:
            return root(event)
        except Exception:
            return False

    return predicate


def segment_spelling(expr: str) -> str:
    """`expr` as Sluice's FQL writes it, from what Segment's subscription parser also accepts
    (its destinations' presets use both): `AND`/`OR` in any case, and a bare word as the value
    of a comparison (`type = track` for `type = "track"`; Segment's takes `properties.b` there
    as the string "properties.b" too, never as a field)."""
    tokens = tokenize(expr)
    edits: list[tuple[int, int, str]] = []
    for index, token in enumerate(tokens):
        if token.kind != PATH or token.escaped:
            continue
        word = ".".join(map(str, token.value))
        end = token.pos + len(word)
        if expr[token.pos : end] != word:
            continue
        if word.lower() in ("and", "or") and word != word.lower() and len(token.value) == 1:
            edits.append((token.pos, end, word.lower()))
        elif index and tokens[index - 1].kind == OP and tokens[index + 1].kind != LPAREN:
            edits.append((token.pos, end, json.dumps(word)))
    for start, end, text in reversed(edits):
        expr = expr[:start] + text + expr[end:]
    return expr


def js_string(value: Any) -> str:
    """JavaScript's `String(value)` for a JSON value (`_MISSING` standing for undefined)."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return "null"
    if value is _MISSING:
        return "undefined"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return _EXPONENT.sub(r"e\1\2", repr(value))
    if kind is list or kind is tuple:
        return ",".join("" if item is None else js_string(item) for item in value)
    return "[object Object]"


def js_number(value: Any) -> float | None:
    """The number a value stands for (5, 5.0, "5", " 5 "), or None: no number, no ordering."""
    kind = type(value)
    if kind is int or kind is float:
        return float(value)
    if kind is str and _NUMERIC.fullmatch(value):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _level(node: Node, expr: str, depth: int) -> Predicate:
    if isinstance(node, Group):
        if depth >= 1:
            raise FqlError("triggers allow one level of parentheses", expr, node.pos)
        return _level(node.inner, expr, depth + 1)
    if not isinstance(node, And | Or):
        return _condition(node, expr)
    parts = []
    for item in node.items:
        if isinstance(item, And | Or):
            raise FqlError("mixing 'and' and 'or' needs parentheses", expr, item.pos)
        if isinstance(item, Group):
            if depth >= 1:
                raise FqlError("triggers allow one level of parentheses", expr, item.pos)
            parts.append(_level(item.inner, expr, depth + 1))
        else:
            parts.append(_condition(item, expr))
    every = isinstance(node, And)
    if len(parts) == 2:
        first, second = parts
        if every:
            return lambda event: first(event) and second(event)
        return lambda event: first(event) or second(event)
    if every:
        return lambda event: all(part(event) for part in parts)
    return lambda event: any(part(event) for part in parts)


def _condition(node: Node, expr: str) -> Predicate:
    if isinstance(node, Compare):
        return _comparison(node, expr)
    if isinstance(node, Call):
        return _function(node, expr, negate=False)
    if isinstance(node, Not) and isinstance(node.operand, Call):
        return _function(node.operand, expr, negate=True)
    if isinstance(node, Not):
        message = "in a trigger, '!' may only precede contains() or match()"
    else:
        message = 'expected a condition such as type = "track"'
    raise FqlError(message, expr, node.pos)


def _comparison(node: Compare, expr: str) -> Predicate:
    if node.op == "in":
        message = "'in' is not supported in triggers; combine conditions with 'or'"
        raise FqlError(message, expr, node.pos)
    get = _field(node.left, expr)
    expected = _value(node.right, expr)
    op = node.op
    if expected is None and op in ("=", "!="):
        if op == "=":
            return lambda event: (value := get(event)) is None or value is _MISSING
        return lambda event: (value := get(event)) is not None and value is not _MISSING
    if op in ("=", "!="):
        text = js_string(expected)

        def equal(event: Event) -> bool:
            value = get(event)
            return (value if type(value) is str else js_string(value)) == text

        if op == "=":
            return equal
        return lambda event: not equal(event)
    bound = js_number(expected)
    if bound is None or type(expected) is bool:
        raise FqlError(f"'{op}' needs a number on its right", expr, node.right.pos)
    ordering = ORDERING[op]
    return lambda event: (number := js_number(get(event))) is not None and ordering(number, bound)


def _function(node: Call, expr: str, *, negate: bool) -> Predicate:
    if node.name not in ("contains", "match"):
        raise FqlError(f"{node.name}() is not supported in triggers", expr, node.pos)
    if len(node.args) != 2:
        raise FqlError(f"{node.name}() takes a field and a string", expr, node.pos)
    get = _field(node.args[0], expr)
    literal = node.args[1]
    if not isinstance(literal, Literal) or type(literal.value) is not str:
        raise FqlError(f"{node.name}() needs a string as its second argument", expr, literal.pos)
    needle: str = literal.value
    test: Callable[[str], bool]
    if node.name == "contains":
        test = functools.partial(_contains, sub=needle)
    else:
        body = needle.removesuffix("*") if needle.endswith("*") else needle.removeprefix("*")
        if len(body) != len(needle) - 1 or _GLOB_CHARS.intersection(body):
            message = 'triggers support match(x, "prefix*") and match(x, "*suffix") only'
            raise FqlError(message, expr, literal.pos)
        if needle.endswith("*"):
            test = functools.partial(_starts_with, prefix=body)
        else:
            test = functools.partial(_ends_with, suffix=body)
    if negate:
        return lambda event: type(value := get(event)) is str and not test(value)
    return lambda event: type(value := get(event)) is str and test(value)


def _field(node: Node, expr: str) -> Getter:
    if not isinstance(node, Path):
        raise FqlError(f"expected a field ({_FIELDS_HELP})", expr, node.pos)
    head, *rest = node.segments
    if head in _TOP_FIELDS and not rest:
        return lambda event: event.get(head, _MISSING)
    if head in _NESTED_FIELDS and rest:
        steps = tuple(rest)
        if head == "context":
            return lambda event: _dig(event.get("context", _MISSING), steps)

        def get(event: Event) -> Any:
            source = "traits" if event.get("type") in _TRAIT_CALLS else "properties"
            return _dig(event.get(source, _MISSING), steps)

        return get
    raise FqlError(f"triggers can test {_FIELDS_HELP}", expr, node.pos)


def _contains(text: str, sub: str) -> bool:
    return sub in text


def _starts_with(text: str, prefix: str) -> bool:
    return text.startswith(prefix)


def _ends_with(text: str, suffix: str) -> bool:
    return text.endswith(suffix)


def _dig(current: Any, steps: tuple[str, ...]) -> Any:
    # Like the lodash-style `get` Segment uses: a null on the way is the answer, not undefined.
    for step in steps:
        if current is None:
            return None
        if isinstance(current, Mapping):
            current = current.get(step, _MISSING)
        elif type(current) is list and step.isascii() and step.isdigit():
            index = int(step)
            current = current[index] if index < len(current) else _MISSING
        else:
            return _MISSING
    return current


def _value(node: Node, expr: str) -> Any:
    if not isinstance(node, Literal) or type(node.value) is tuple:
        raise FqlError("expected a string, number, true, false or null", expr, node.pos)
    return node.value
