"""Checks a mapping once, before it is compiled, so evaluation never meets a malformed directive.

The rules follow Segment's `validate.ts`: an object with an `@`-key is a directive and may hold
nothing else but Segment's `_metadata`; each directive checks the shape of its argument. Where
Segment only fails while evaluating (an `@if` with neither condition, a `@case` operator other
than lower or upper, an empty `@flatten` separator) the mistake is caught here instead, and
unknown keys in a directive's options are errors too, so a typo such as `thne` is reported.
Errors name the place as a dotted path: `properties.name.@path`, `items[0].@replace.pattern`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from contextvars import ContextVar
from typing import Any

from sluice.mapping.directives import js_truthy
from sluice.mapping.errors import MappingError

__all__ = [
    "DIRECTIVES",
    "MAX_PATTERN_LENGTH",
    "MAX_REPLACEMENT_LENGTH",
    "METADATA_KEY",
    "directive_name",
    "join_path",
    "validate",
]

MAX_PATTERN_LENGTH = 10
"""Longest `pattern` / `pattern2` of `@replace`, as in Segment."""
MAX_REPLACEMENT_LENGTH = 10
"""Longest `replacement` / `replacement2` of `@replace`, as in Segment."""
METADATA_KEY = "_metadata"
"""The one key Segment's UI stores next to a directive (labels); it is ignored."""

LIQUID = "@liquid"
MAX_LIQUID_LENGTH = 1000
"""Longest `@liquid` template, as Segment's evaluator enforces it."""
_UNSUPPORTED = {LIQUID: "@liquid is not supported by Sluice's mapping kit"}
# Whether `@liquid` is accepted: only for a mapping Segment's own code evaluates (a bridged
# destination's), never for one Sluice evaluates.
_liquid_allowed: ContextVar[bool] = ContextVar("liquid_allowed", default=False)


def join_path(path: str, key: str | int) -> str:
    """`path` extended by an object key (`a.b`) or a list index (`a[0]`)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def directive_name(node: Mapping[Any, Any]) -> str | None:
    """The `@`-key of an object, or None for a plain object. Assumes a validated mapping."""
    for key in node:
        if isinstance(key, str) and key.startswith("@"):
            return key
    return None


def _is_directive(value: Any) -> bool:
    return isinstance(value, Mapping) and directive_name(value) is not None


def _kind(value: Any) -> str:
    """The JSON type of `value`, with its article, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "a directive" if _is_directive(value) else "an object"
    return f"a Python {type(value).__name__}"


def validate(mapping: Any, *, liquid: bool = False) -> None:
    """Raise `MappingError` (with `path`) when `mapping` is not a valid mapping; with
    `liquid`, `@liquid` templates are accepted (checked as Segment checks them)."""
    token = _liquid_allowed.set(liquid)
    try:
        _check(mapping, "")
    finally:
        _liquid_allowed.reset(token)


def _check(node: Any, path: str) -> None:
    if isinstance(node, Mapping):
        name = _directive_key(node, path)
        if name is None:
            for key, value in node.items():
                if not isinstance(key, str):
                    raise MappingError(f"keys should be strings but {key!r} is not", path=path)
                _check(value, join_path(path, key))
        else:
            _check_directive(name, node[name], join_path(path, name))
    elif isinstance(node, list | tuple):
        for index, item in enumerate(node):
            _check(item, join_path(path, index))
    elif node is not None and not isinstance(node, str | bool | int | float):
        raise MappingError(
            f"should be a mapping directive or a JSON value but it is {_kind(node)}", path=path
        )


def _directive_key(node: Mapping[Any, Any], path: str) -> str | None:
    names = [key for key in node if isinstance(key, str) and key.startswith("@")]
    if not names:
        return None
    if len(names) > 1:
        raise MappingError(
            f"should have one @-prefixed key but it has {len(names)}: {', '.join(names)}",
            path=path,
        )
    others = [str(key) for key in node if key != names[0] and key != METADATA_KEY]
    if others:
        raise MappingError(
            f"mixes the directive {names[0]} with other keys: {', '.join(others)}", path=path
        )
    return names[0]


def _check_directive(name: str, argument: Any, path: str) -> None:
    if name == LIQUID and _liquid_allowed.get():
        _string(argument, path, min_length=1, max_length=MAX_LIQUID_LENGTH)
        return
    if name in _UNSUPPORTED:
        raise MappingError(_UNSUPPORTED[name], path=path)
    checker = _CHECKERS.get(name)
    if checker is None:
        raise MappingError(
            f"{name} is not a directive; expected one of {', '.join(DIRECTIVES)}", path=path
        )
    checker(argument, path)


# -- argument shapes -----------------------------------------------------------------------------


def _string_or_directive(value: Any, path: str) -> None:
    if isinstance(value, str):
        return
    if not _is_directive(value):
        raise MappingError(
            f"should be a string or a mapping directive but it is {_kind(value)}", path=path
        )
    _check(value, path)


def _object_or_directive(value: Any, path: str) -> None:
    if not isinstance(value, Mapping):
        raise MappingError(
            f"should be an object or a mapping directive but it is {_kind(value)}", path=path
        )
    _check(value, path)


def _string(value: Any, path: str, *, min_length: int = 0, max_length: int | None = None) -> str:
    if not isinstance(value, str):
        raise MappingError(f"should be a string but it is {_kind(value)}", path=path)
    if len(value) < min_length:
        raise MappingError(f"should be a string of length {min_length} or greater", path=path)
    if max_length is not None and len(value) > max_length:
        raise MappingError(f"should be a string of length {max_length} or less", path=path)
    return value


def _one_of(value: Any, path: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        choices = " or ".join(f'"{choice}"' for choice in allowed)
        shown = f'"{value}"' if isinstance(value, str) else _kind(value)
        raise MappingError(f"should be {choices} but it is {shown}", path=path)


def _boolean(value: Any, path: str) -> None:
    if not isinstance(value, bool):
        raise MappingError(f"should be a boolean but it is {_kind(value)}", path=path)


def _options(
    value: Any, path: str, *, required: Collection[str] = (), optional: Collection[str] = ()
) -> Mapping[str, Any]:
    """Check that a directive's argument is an object with exactly the keys it can take."""
    if not isinstance(value, Mapping) or _is_directive(value):
        raise MappingError(f"should be an object but it is {_kind(value)}", path=path)
    for key in value:
        if key not in required and key not in optional:
            expected = ", ".join([*required, *optional])
            raise MappingError(f'has an unknown key "{key}"; expected {expected}', path=path)
    for key in required:
        if key not in value:
            raise MappingError(f'should have field "{key}" but it does not', path=path)
    return value


# -- one checker per directive -------------------------------------------------------------------


def _check_path(argument: Any, path: str) -> None:
    if isinstance(argument, list) and all(isinstance(key, str) for key in argument):
        return
    _string_or_directive(argument, path)


def _check_if(argument: Any, path: str) -> None:
    options = _options(argument, path, optional=("exists", "blank", "then", "else"))
    # Segment throws on `!exists && !blank`, so a falsy literal counts as missing.
    if not js_truthy(options.get("exists")) and not js_truthy(options.get("blank")):
        raise MappingError('requires an "exists" or a "blank" condition', path=path)
    for key, value in options.items():
        _check(value, join_path(path, key))


def _check_case(argument: Any, path: str) -> None:
    options = _options(argument, path, required=("operator",), optional=("value",))
    _one_of(options["operator"], join_path(path, "operator"), ("lower", "upper"))
    if "value" in options:
        _string_or_directive(options["value"], join_path(path, "value"))


def _check_replace(argument: Any, path: str) -> None:
    options = _options(
        argument,
        path,
        required=("pattern", "value"),
        optional=("replacement", "pattern2", "replacement2", "ignorecase", "global"),
    )
    _string(
        options["pattern"], join_path(path, "pattern"), min_length=1, max_length=MAX_PATTERN_LENGTH
    )
    for key, longest in (
        ("replacement", MAX_REPLACEMENT_LENGTH),
        ("pattern2", MAX_PATTERN_LENGTH),
        ("replacement2", MAX_REPLACEMENT_LENGTH),
    ):
        if key in options:
            _string(options[key], join_path(path, key), max_length=longest)
    for key in ("ignorecase", "global"):
        if key in options:
            _boolean(options[key], join_path(path, key))
    _string_or_directive(options["value"], join_path(path, "value"))


def _check_array_path(argument: Any, path: str) -> None:
    if not isinstance(argument, list | tuple):
        raise MappingError(f"should be an array but it is {_kind(argument)}", path=path)
    if not argument:
        raise MappingError("should have a path or a directive as its first item", path=path)
    _string_or_directive(argument[0], join_path(path, 0))
    if len(argument) > 1:  # Segment ignores anything after the item shape.
        _check(argument[1], join_path(path, 1))


def _check_flatten(argument: Any, path: str) -> None:
    options = _options(argument, path, required=("value", "separator"), optional=("omitArrays",))
    _string(options["separator"], join_path(path, "separator"), min_length=1)
    if "omitArrays" in options:
        _boolean(options["omitArrays"], join_path(path, "omitArrays"))
    _check(options["value"], join_path(path, "value"))


def _check_json(argument: Any, path: str) -> None:
    options = _options(argument, path, required=("mode", "value"))
    _one_of(options["mode"], join_path(path, "mode"), ("encode", "decode"))
    _check(options["value"], join_path(path, "value"))


def _check_merge(argument: Any, path: str) -> None:
    options = _options(argument, path, required=("objects",), optional=("direction",))
    if "direction" in options:
        _one_of(options["direction"], join_path(path, "direction"), ("left", "right"))
    objects = options["objects"]
    objects_path = join_path(path, "objects")
    if not isinstance(objects, list | tuple):
        raise MappingError(f"should be an array but it is {_kind(objects)}", path=objects_path)
    for index, item in enumerate(objects):
        _object_or_directive(item, join_path(objects_path, index))


def _check_transform(argument: Any, path: str) -> None:
    options = _options(argument, path, required=("apply", "mapping"))
    _object_or_directive(options["apply"], join_path(path, "apply"))
    _object_or_directive(options["mapping"], join_path(path, "mapping"))


_CHECKERS: dict[str, Callable[[Any, str], None]] = {
    "@path": _check_path,
    "@template": _string_or_directive,
    "@literal": _check,
    "@if": _check_if,
    "@case": _check_case,
    "@replace": _check_replace,
    "@arrayPath": _check_array_path,
    "@flatten": _check_flatten,
    "@json": _check_json,
    "@merge": _check_merge,
    "@transform": _check_transform,
    "@excludeWhenNull": _check,
}

DIRECTIVES: tuple[str, ...] = tuple(_CHECKERS)
"""The directives Sluice evaluates, in the order the docs list them."""
