"""Paths into an event, as Segment's mapping kit reads them (`$.properties.items[0].sku`).

As actions-core's `get` (checked against it in Node, tests/mapping/test_mapping_paths.py):
a path splits on `.`, on `[` before a quote or a digit and on `]` after one, then quotes are
dropped, so `a.b[0].c`, `a.b.0.c` and `a['b'].c` name the same place while `a[b]` is one key;
spaces are part of a key (`integrations.Actions Amplitude.session_id`) and empty segments vanish
(`a..b`, `a.b.`). `''` and `.` name the whole value; `@path` also drops a leading `$.` and reads
`$` as the root.

A missing value is `UNDEFINED`, distinct from JSON null (`None`): the mapping kit removes fields
that resolve to undefined and keeps the ones that resolve to null. The walk is JavaScript's
`prev && prev[key]`: through a falsy value (null, `0`, `false`, `''`) it gives that value, not
undefined; a string or list answers `length` and its indexes.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

__all__ = ["UNDEFINED", "Getter", "compile_getter", "get_path", "parse_path", "split_path", "walk"]


class _Undefined(enum.Enum):
    """The type of `UNDEFINED`: one falsy member, so `x is UNDEFINED` is the test."""

    UNDEFINED = "UNDEFINED"

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Final = _Undefined.UNDEFINED
"""What a path to nothing, or a branch that is not there, resolves to."""

Getter = Callable[[Any], Any]
"""Reads one precompiled path from a value: the value there, or `UNDEFINED`."""

_SEPARATOR = re.compile(r"""\[(?=["'\d])|\.|(?<=["'\d])\]+""")


@lru_cache(maxsize=4096)
def split_path(path: str) -> tuple[str, ...] | None:
    """The keys of a path as Segment's `get` reads it: `()` for the root.

    `''` and `.` are the root, and so is a path made only of separators (`..`): Segment's
    reduce over no keys gives the whole value. (None is kept in the signature for callers that
    test it; no path gives it now.)
    """
    if path in ("", "."):
        return ()
    keys = [s.replace("'", "").replace('"', "") for s in _SEPARATOR.split(path) if s]
    return tuple(keys)  # only separators (`..`): no key, the whole value, as Segment's reduce


def parse_path(path: str) -> tuple[str, ...] | None:
    """The keys of a `@path` argument: a leading `$.` is optional and `$` alone is the root."""
    if path.startswith("$."):
        path = path[2:]
    elif path == "$":
        return ()
    return split_path(path)


def _index(key: str, size: int) -> int | None:
    """The list index `key` names, as JavaScript reads `array["2"]`: canonical digits only."""
    if key.isascii() and key.isdigit() and (key == "0" or key[0] != "0"):
        index = int(key)
        if index < size:
            return index
    return None


def _falsy(value: Any) -> bool:
    """JavaScript's falsiness, for the JSON values an event holds."""
    if value is UNDEFINED or value is None or value is False or value == "":
        return True
    return type(value) in (int, float) and (value == 0 or value != value)  # 0, -0, NaN


def walk(value: Any, keys: tuple[str, ...]) -> Any:
    """The value at `keys` under `value`, or `UNDEFINED` (`prev && prev[key]` per key)."""
    for key in keys:
        if _falsy(value):
            return value
        if isinstance(value, Mapping):
            value = value.get(key, UNDEFINED)
        elif isinstance(value, list | str):
            if key == "length":
                value = len(value)
                continue
            index = _index(key, len(value))
            if index is None:
                return UNDEFINED
            value = value[index]
        else:
            return UNDEFINED
    return value


def compile_getter(keys: tuple[str, ...] | None) -> Getter:
    """A function reading `keys` from a value; short paths over dicts skip the general walk."""
    if keys is None:
        return lambda value: UNDEFINED
    if not keys:
        return lambda value: value
    if len(keys) == 1:
        (first,) = keys

        def get_one(value: Any) -> Any:
            if type(value) is dict:
                return value.get(first, UNDEFINED)
            return walk(value, keys)

        return get_one
    if len(keys) == 2:
        first, second = keys

        def get_two(value: Any) -> Any:
            if type(value) is dict:
                inner = value.get(first)
                if type(inner) is dict:
                    return inner.get(second, UNDEFINED)
            return walk(value, keys)

        return get_two

    def get_many(value: Any) -> Any:
        return walk(value, keys)

    return get_many


def get_path(payload: Any, path: str | Sequence[str]) -> Any:
    """The value at `path` in `payload` (shared, not copied), or `UNDEFINED` when there is none.

    `path` is a `@path` string (`"$.properties.name"`, `"context.ip"`, `"$"`) or a list of keys
    taken as they are (`["integrations", "Company.Billing", "id"]`).
    """
    keys = parse_path(path) if isinstance(path, str) else tuple(path)
    if keys is None:
        return UNDEFINED
    return walk(payload, keys)
