"""FQL's value model and built-in functions, as plain functions over JSON values.

FQL is strictly typed, like Segment's Go implementation: a value is a string, number, bool,
null, list or object, `=` needs the same type (so `1 = '1'` and `1 = true` are false), and a
missing field is null. Functions are null-friendly the way Segment documents (`length(null)` is
0, `contains(null, 'x')` is false, `lowercase(null)` is null); given a value of the wrong type
they answer null (or false for the predicates), never an error.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sluice.fql.glob import glob_match

_NUMERIC: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_KINDS: Final[dict[type, str]] = {
    str: "string",
    int: "number",
    float: "number",
    bool: "bool",
    type(None): "null",
    list: "list",
    tuple: "list",
    dict: "object",
}
_WORD_START: Final = re.compile(r"(?:^|(?<=\s))(\S)")
_TRUE_WORDS: Final = frozenset({"1", "t", "T", "true", "TRUE", "True"})
_FALSE_WORDS: Final = frozenset({"0", "f", "F", "false", "FALSE", "False"})


def kind(value: Any) -> str:
    """FQL's name for the type of `value`: string, number, bool, null, list or object."""
    name = _KINDS.get(type(value))
    if name is not None:
        return name
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return "unknown"


def strict_equal(a: Any, b: Any) -> bool:
    """FQL's `=`: the same type and the same value, element by element for lists and objects."""
    ka = kind(a)
    if ka != kind(b) or ka == "unknown":
        return False
    if ka == "list":
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    if ka == "object":
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def is_number(value: Any) -> bool:
    kind_ = type(value)
    return kind_ is int or kind_ is float


def contains(text: Any, sub: Any) -> bool:
    return type(text) is str and type(sub) is str and sub in text


def match(text: Any, pattern: Any) -> bool:
    return type(text) is str and type(pattern) is str and glob_match(text, pattern)


def length(value: Any) -> int | None:
    """Bytes of a string's UTF-8 encoding (`ア` is 3), elements of a list; null is 0."""
    if value is None:
        return 0
    if type(value) is str:
        return len(value.encode("utf-8", "surrogatepass"))
    if type(value) is list or type(value) is tuple:
        return len(value)
    return None


def lowercase(value: Any) -> str | None:
    return value.lower() if type(value) is str else None


def uppercase(value: Any) -> str | None:
    return value.upper() if type(value) is str else None


def snakecase(value: Any) -> str | None:
    """Every whitespace character becomes `_` (Segment: "test string" → "test_string")."""
    return _replace_spaces(value, "_")


def kebabcase(value: Any) -> str | None:
    """Every whitespace character becomes `-` (Segment: "test string" → "test-string")."""
    return _replace_spaces(value, "-")


def titlecase(value: Any) -> str | None:
    """The first letter of each whitespace-separated word upper-cased, the rest left alone."""
    if type(value) is not str:
        return None
    return _WORD_START.sub(lambda m: m.group(1).upper(), value)


def typeof(value: Any) -> str:
    return kind(value)


def to_bool(value: Any) -> bool | None:
    """bool(): null is false, a number is true unless 0, a list or object unless empty, and a
    string is read like Go's strconv.ParseBool ("true", "1", "f"...); other strings are null."""
    if value is None or value is True or value is False:
        return bool(value)
    if is_number(value):
        return bool(value != 0)
    if type(value) is str:
        if value in _TRUE_WORDS:
            return True
        if value in _FALSE_WORDS:
            return False
        return None
    if kind(value) in ("list", "object"):
        return len(value) > 0
    return None


def to_string(value: Any) -> str | None:
    """string(): strings as they are, anything else as compact JSON (1.0 is "1")."""
    if type(value) is str:
        return value
    if type(value) is float and value.is_integer():
        return str(int(value))
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None


def to_number(value: Any) -> int | float | None:
    """number(): numbers as they are, numeric strings parsed; anything else is null."""
    if is_number(value):
        return value  # type: ignore[no-any-return]
    if type(value) is str:
        text = value.strip()
        if not _NUMERIC.fullmatch(text):
            return None
        try:
            return int(text)
        except ValueError:
            number = float(text)
            return number if math.isfinite(number) else None
    return None


def _replace_spaces(value: Any, by: str) -> str | None:
    if type(value) is not str:
        return None
    return "".join(by if c.isspace() else c for c in value)


@dataclass(frozen=True, slots=True)
class Function:
    """A built-in: its arity, its implementation, and whether it always returns a bool."""

    arity: int
    impl: Callable[..., Any]
    returns_bool: bool = False


FUNCTIONS: Final[dict[str, Function]] = {
    "contains": Function(2, contains, returns_bool=True),
    "match": Function(2, match, returns_bool=True),
    "length": Function(1, length),
    "lowercase": Function(1, lowercase),
    "uppercase": Function(1, uppercase),
    "snakecase": Function(1, snakecase),
    "kebabcase": Function(1, kebabcase),
    "titlecase": Function(1, titlecase),
    "typeof": Function(1, typeof),
    "bool": Function(1, to_bool),
    "string": Function(1, to_string),
    "number": Function(1, to_number),
}
