"""JavaScript's rules for values, where Segment's destination code (run in Node) relies on them
and a native port must give the same result: what `+text` makes of a string, which characters
`trim()` strips, and how ajv's messages name a value's type."""

from __future__ import annotations

import math
import re
from typing import Any

# WhiteSpace and LineTerminator: what `trim()`, `\s` and `Number()` skip.
JS_SPACE = (
    "\t\n\v\f\r \u00a0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_DECIMAL = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_RADIX = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")


def to_number(text: str) -> float:
    """`+text`: 0 for blank text, NaN when the string is not a number literal."""
    text = text.strip(JS_SPACE)
    if not text:
        return 0.0
    if _DECIMAL.fullmatch(text):
        return float(text.replace("Infinity", "inf"))
    if _RADIX.fullmatch(text):
        try:
            return float(int(text, 0))
        except OverflowError:
            return math.inf
    return math.nan


def article(word: str) -> str:
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


def type_of(value: Any) -> str:
    """A value's type as ajv-human-errors says it: "null", "an array", "a boolean"..."""
    if value is None:
        return "null"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    kind = {bool: "boolean", str: "string"}.get(type(value), "number")
    return f"{article(kind)} {kind}"
