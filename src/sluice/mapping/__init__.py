"""Segment's mapping kit: the JSON field mappings of Destination Actions, as a pure interpreter.

A mapping is JSON in which an object with exactly one `@`-key is a directive (`{"@path":
"$.properties.price"}`) and everything else is copied, resolved key by key and item by item.
Destinations and presets use it to turn an event into the fields a destination's API takes:

    evaluate = compile({"user_id": {"@path": "$.userId"}, "plan": {"@literal": "pro"}})
    evaluate(event)   # {"user_id": "u1", "plan": "pro"}

`compile` validates once and returns a fast closure (cached by the mapping's JSON); `resolve`
is the one-off form; `validate` only checks. See docs/mapping.md for every directive.
"""

from __future__ import annotations

from sluice.mapping.errors import MappingError
from sluice.mapping.paths import UNDEFINED, get_path
from sluice.mapping.resolve import Evaluator, compile, resolve
from sluice.mapping.validate import DIRECTIVES, validate

__all__ = [
    "DIRECTIVES",
    "UNDEFINED",
    "Evaluator",
    "MappingError",
    "compile",
    "get_path",
    "resolve",
    "validate",
]
