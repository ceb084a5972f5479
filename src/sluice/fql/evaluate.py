"""Compile full FQL into a predicate made of nested closures.

Filters run once per event per destination, so an expression is parsed and specialised once
(and cached): each node becomes a closure, and the common shapes get dedicated ones, such as
`field = 'literal'` reading `event.get(key)` and comparing, or `match(field, 'glob')` with
its regular expression built ahead of time. Evaluating `type = "track" and event = "Order
Completed"` is then two dictionary reads and two string comparisons.

Truth follows Segment's evaluator: only the boolean `true` is true. `and`, `or`, `!` and the
final result treat null, a missing field and any other non-boolean as false.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

from sluice.fql.errors import FqlError
from sluice.fql.functions import FUNCTIONS, is_number, strict_equal
from sluice.fql.glob import GlobError, compile_glob
from sluice.fql.parser import And, Call, Compare, Group, Literal, Node, Not, Or, Path, parse

Event = Mapping[str, Any]
Predicate = Callable[[Event], bool]
ValueFn = Callable[[Event], Any]

MATCH_ALL: Final = "all"  # Segment's "every event" filter condition
_CACHE_SIZE: Final = 4096
ORDERING: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _always(event: Event) -> bool:
    return True


@functools.lru_cache(maxsize=_CACHE_SIZE)
def compile_filter(expr: str) -> Predicate:
    """A predicate for the FQL expression `expr` ("all" matches every event).

    Raises FqlError if `expr` is not valid FQL. The predicate never raises: an event it cannot
    evaluate (an unexpected type deep inside, say) answers False.
    """
    if expr.strip() == MATCH_ALL:
        return _always
    root = _truth(_compile(parse(expr), expr))

    def predicate(event: Event) -> bool:
        try:
            return root(event)
        except Exception:
            return False

    return predicate


def path_getter(segments: tuple[str, ...]) -> ValueFn:
    """Read a dot path: object keys, and list positions for all-digit segments; else None."""
    if len(segments) == 1:
        key = segments[0]

        def get_one(event: Event) -> Any:
            return event.get(key)

        return get_one
    steps = tuple((s, int(s) if s.isascii() and s.isdigit() else None) for s in segments)

    def get(event: Event) -> Any:
        current: Any = event
        for key, index in steps:
            if type(current) is dict or isinstance(current, Mapping):
                current = current.get(key)
            elif index is not None and type(current) is list:
                current = current[index] if index < len(current) else None
            else:
                return None
            if current is None:
                return None
        return current

    return get


def _compile(node: Node, expr: str) -> tuple[ValueFn, bool]:
    """A closure computing `node`'s value, and whether that value is always a bool."""
    if isinstance(node, Literal):
        value = _thaw(node.value)
        return (lambda event: value), type(value) is bool
    if isinstance(node, Path):
        return path_getter(node.segments), False
    if isinstance(node, Group):
        return _compile(node.inner, expr)
    if isinstance(node, Not):
        inner = _truth(_compile(node.operand, expr))
        return (lambda event: not inner(event)), True
    if isinstance(node, And | Or):
        return _connective(node, expr), True
    if isinstance(node, Compare):
        return _compare(node, expr), True
    return _call(node, expr)


def _truth(compiled: tuple[ValueFn, bool]) -> Predicate:
    fn, returns_bool = compiled
    if returns_bool:
        return fn
    return lambda event: fn(event) is True


def _connective(node: And | Or, expr: str) -> Predicate:
    parts = tuple(_truth(_compile(item, expr)) for item in node.items)
    if isinstance(node, And):
        if len(parts) == 2:
            first, second = parts
            return lambda event: first(event) and second(event)
        return lambda event: all(part(event) for part in parts)
    if len(parts) == 2:
        first, second = parts
        return lambda event: first(event) or second(event)
    return lambda event: any(part(event) for part in parts)


def _compare(node: Compare, expr: str) -> Predicate:
    left, right = node.left, node.right
    if node.op in ("=", "!=") and isinstance(left, Literal) and not isinstance(right, Literal):
        left, right = right, left  # put the literal on the right: same meaning, faster shape
    if node.op == "in":
        return _membership(left, right, expr)
    get, _ = _compile(left, expr)
    if node.op in ("=", "!="):
        equal = _equality(get, left, right, expr)
        if node.op == "=":
            return equal
        return lambda event: not equal(event)
    ordering = ORDERING[node.op]
    if isinstance(right, Literal):
        bound = right.value
        if not is_number(bound):
            return lambda event: False  # FQL orders numbers only
        return lambda event: is_number(value := get(event)) and ordering(value, bound)
    get_right, _ = _compile(right, expr)

    def ordered(event: Event) -> bool:
        a, b = get(event), get_right(event)
        return is_number(a) and is_number(b) and ordering(a, b)

    return ordered


def _equality(get: ValueFn, left: Node, right: Node, expr: str) -> Predicate:
    if not isinstance(right, Literal):
        get_right, _ = _compile(right, expr)
        return lambda event: strict_equal(get(event), get_right(event))
    expected = right.value
    if type(expected) is str:
        if isinstance(left, Path) and len(left.segments) == 1:
            key = left.segments[0]
            return lambda event: event.get(key) == expected
        return lambda event: get(event) == expected
    if expected is None or type(expected) is bool:
        return lambda event: get(event) is expected
    if is_number(expected):
        return lambda event: is_number(value := get(event)) and value == expected
    frozen = _thaw(expected)
    return lambda event: strict_equal(get(event), frozen)


def _membership(left: Node, right: Node, expr: str) -> Predicate:
    get, _ = _compile(left, expr)
    if isinstance(right, Literal):
        if type(right.value) is not tuple:
            raise FqlError("'in' needs a list on its right, like ['a', 'b']", expr, right.pos)
        items = _thaw(right.value)
        strings = frozenset(item for item in items if type(item) is str)
        others = [item for item in items if type(item) is not str]

        def in_literal(event: Event) -> bool:
            value = get(event)
            if type(value) is str:
                return value in strings
            return any(strict_equal(value, item) for item in others)

        return in_literal
    get_list, _ = _compile(right, expr)

    def in_value(event: Event) -> bool:
        container = get_list(event)
        if type(container) is not list:
            return False
        value = get(event)
        if type(value) is str:
            return value in container  # a str equals only a str, so `in` is already strict
        return any(strict_equal(value, item) for item in container)

    return in_value


def _call(node: Call, expr: str) -> tuple[ValueFn, bool]:
    function = FUNCTIONS.get(node.name)
    if function is None:
        known = ", ".join(sorted(FUNCTIONS))
        raise FqlError(f"unknown function {node.name!r} (known: {known})", expr, node.pos)
    if len(node.args) != function.arity:
        plural = "s" if function.arity > 1 else ""
        message = f"{node.name}() takes {function.arity} argument{plural}, got {len(node.args)}"
        raise FqlError(message, expr, node.pos)
    impl, returns_bool = function.impl, function.returns_bool
    if all(isinstance(arg, Literal) for arg in node.args):
        value = impl(*(_thaw(arg.value) for arg in node.args))  # type: ignore[union-attr]
        if node.name == "match":
            _check_glob(node.args[1], expr)
        return (lambda event: value), returns_bool
    if node.name in ("match", "contains") and isinstance(node.args[1], Literal):
        get, _ = _compile(node.args[0], expr)
        literal = node.args[1]
        if type(literal.value) is not str:
            return (lambda event: False), True
        if node.name == "match":
            matches = _check_glob(literal, expr)
            return (lambda event: type(text := get(event)) is str and matches(text)), True
        sub = literal.value
        return (lambda event: type(text := get(event)) is str and sub in text), True
    getters = [_compile(arg, expr)[0] for arg in node.args]
    if len(getters) == 1:
        (only,) = getters
        return (lambda event: impl(only(event))), returns_bool
    first, second = getters
    return (lambda event: impl(first(event), second(event))), returns_bool


def _check_glob(node: Node, expr: str) -> Callable[[str], bool]:
    """Compile a literal glob now, so a malformed pattern is a compile error at its spot."""
    assert isinstance(node, Literal)
    if type(node.value) is not str:
        return lambda text: False
    try:
        return compile_glob(node.value)
    except GlobError as exc:
        # +1 skips the opening quote; escapes in the literal can shift this by a character.
        position = node.pos + 1 + exc.position
        raise FqlError(f"invalid glob pattern: {exc.message}", expr, position) from None


def _thaw(value: Any) -> Any:
    """Literal lists are tuples in the syntax tree; events hold lists."""
    if type(value) is tuple:
        return [_thaw(item) for item in value]
    return value
