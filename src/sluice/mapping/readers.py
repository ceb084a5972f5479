"""Reading the event for a mapping's `@path`s: a reader compiled per path, copying what it finds.

What a reader finds is copied when it is an object or a list (`copied_value`, which `@arrayPath`
uses too), so whoever receives a mapping's output may change it without changing the event;
readers compiled while `compile(copy=False)` runs (resolve.py sets `READERS_COPY`) do not copy. The
commonest paths, one or two keys, are read inline. Separate from the compiler (resolve.py),
which wires readers into a mapping's closures; `CompiledNode`, the type of each of those closures,
readers included, is defined here for both.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from sluice.mapping.directives import clone
from sluice.mapping.paths import UNDEFINED, compile_getter, walk

CompiledNode = Callable[[Any], Any]
# Whether the reader being compiled copies what it reads (set by `compile` while it compiles).
READERS_COPY: contextvars.ContextVar[bool] = contextvars.ContextVar("mapping_copying", default=True)


def copied_value(value: Any) -> Any:
    kind = type(value)
    return clone(value) if kind is dict or kind is list else value


def path_reader(keys: tuple[str, ...] | None) -> CompiledNode:
    """Read `keys` and copy what is found; the common one- and two-key paths are inlined."""
    if not READERS_COPY.get():
        getter = compile_getter(keys)
        return lambda payload: getter(payload)
    if keys is not None and len(keys) == 1:
        (first,) = keys

        def read_one(payload: Any) -> Any:
            if type(payload) is dict:
                value = payload.get(first, UNDEFINED)
                kind = type(value)
                return clone(value) if kind is dict or kind is list else value
            return copied_value(walk(payload, keys))

        return read_one
    if keys is not None and len(keys) == 2:
        first, second = keys

        def read_two(payload: Any) -> Any:
            if type(payload) is dict:
                inner = payload.get(first)
                if type(inner) is dict:
                    value = inner.get(second, UNDEFINED)
                    kind = type(value)
                    return clone(value) if kind is dict or kind is list else value
            return copied_value(walk(payload, keys))

        return read_two
    getter = compile_getter(keys)
    return lambda payload: copied_value(getter(payload))
