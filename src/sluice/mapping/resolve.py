"""Turns a mapping into a chain of closures, once, so applying it to an event is cheap.

A mapping runs for every event and every destination it is subscribed to, so `compile`
validates it, walks it once and returns a function: a `@path` becomes a precompiled key
lookup, a template is split into text and lookups, constants are kept as they are. Compiled
mappings are cached by their JSON text. Every intermediate result may be `UNDEFINED`; objects
drop such fields as they are built, list items become null (what `JSON.stringify` sends for
Segment's `[undefined]`), and only the top level can be undefined, which is returned as None.

Values read from the event are copied when they are objects or lists, so whoever receives the
output may change it without changing the event, as with Segment's final `removeUndefined`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from sluice.mapping.directives import (
    compile_replace,
    compile_template,
    drop_nulls,
    flatten,
    is_blank,
    js_number,
    js_truthy,
    json_decode,
    json_encode,
    merge,
    render_template,
)
from sluice.mapping.errors import MappingError
from sluice.mapping.paths import UNDEFINED, compile_getter, parse_path, walk
from sluice.mapping.readers import READERS_COPY, CompiledNode, copied_value, path_reader
from sluice.mapping.validate import directive_name, join_path, validate

__all__ = ["DEFAULT_CACHE_SIZE", "Evaluator", "compile", "resolve"]

DEFAULT_CACHE_SIZE = 1024
"""How many compiled mappings `compile` keeps; the oldest goes first when it is full."""

Evaluator = Callable[[Mapping[str, Any]], Any]
"""A compiled mapping: takes an event (a dict), returns the mapped value."""

_SCALARS = (str, int, float, bool, type(None))


def resolve(mapping: Any, payload: Mapping[str, Any]) -> Any:
    """Evaluate `mapping` against the event `payload` (compiled and cached on first use)."""
    return compile(mapping)(payload)


def compile(mapping: Any, *, copy: bool = True) -> Evaluator:
    """Validate `mapping` and return a function that applies it to an event.

    With `copy=False` the output may share dicts and lists with the event (no copying: the
    delivery engine's hot path, which gives each mapping an event of its own instead).

    Raises `MappingError` when the mapping is invalid. The evaluator itself raises
    `MappingError` only when a dynamic argument has the wrong type (a `@path` or `@template`
    whose text comes from another directive and is not a string), as Segment throws there.
    """
    try:
        key = msgspec.json.encode(mapping)
    except (TypeError, ValueError, OverflowError):
        validate(mapping)  # names the offending value
        raise MappingError("is not JSON") from None
    key = key if copy else b"nocopy:" + key
    evaluator = _CACHE.get(key)
    if evaluator is None:
        validate(mapping)  # the mapping as given: its JSON text would turn a set into a list
        token = READERS_COPY.set(copy)
        try:
            evaluator = _build(msgspec.json.decode(key.removeprefix(b"nocopy:")))
        finally:
            READERS_COPY.reset(token)
        with _CACHE_LOCK:
            while len(_CACHE) >= DEFAULT_CACHE_SIZE:
                del _CACHE[next(iter(_CACHE))]
            _CACHE[key] = evaluator
    return evaluator


_CACHE: dict[bytes, Evaluator] = {}
_CACHE_LOCK = threading.Lock()


def _build(mapping: Any) -> Evaluator:
    root = _compile(mapping, "")

    def evaluate(payload: Mapping[str, Any]) -> Any:
        value = root(payload)
        return None if value is UNDEFINED else value

    return evaluate


def _compile(node: Any, path: str, *, keep_undefined: bool = False) -> CompiledNode:
    if isinstance(node, dict):
        name = directive_name(node)
        if name is not None:
            return _DIRECTIVES[name](node[name], join_path(path, name))
        return _compile_object(node, path, keep_undefined)
    if isinstance(node, list):
        return _compile_list(node, path)
    return lambda payload: node


def _compile_object(node: dict[str, Any], path: str, keep_undefined: bool) -> CompiledNode:
    fields = [
        (key, value, None)
        if isinstance(value, _SCALARS)
        else (key, None, _compile(value, join_path(path, key)))
        for key, value in node.items()
    ]
    if all(run is None for _, _, run in fields):
        constant = dict(node)
        return lambda payload: dict(constant)

    if keep_undefined:  # for @merge, where Object.assign lets an undefined field win

        def build_raw(payload: Any) -> dict[str, Any]:
            return {key: value if run is None else run(payload) for key, value, run in fields}

        return build_raw

    def build(payload: Any) -> dict[str, Any]:
        out = {}
        for key, value, run in fields:
            if run is None:
                out[key] = value
            else:
                result = run(payload)
                if result is not UNDEFINED:
                    out[key] = result
        return out

    return build


def _compile_list(node: list[Any], path: str) -> CompiledNode:
    if all(isinstance(item, _SCALARS) for item in node):
        constant = list(node)
        return lambda payload: list(constant)
    runs = [_compile(item, join_path(path, index)) for index, item in enumerate(node)]

    def build(payload: Any) -> list[Any]:
        out = []
        for run in runs:
            result = run(payload)
            out.append(None if result is UNDEFINED else result)
        return out

    return build


def _kind(value: Any) -> str:
    return "undefined" if value is UNDEFINED else type(value).__name__


# -- directives ----------------------------------------------------------------------------------


def _path(argument: Any, path: str) -> CompiledNode:
    if isinstance(argument, str):
        return path_reader(parse_path(argument))
    if isinstance(argument, list):
        return path_reader(tuple(argument))
    source = _compile(argument, path)

    def read_dynamic(payload: Any) -> Any:
        where = source(payload)
        if not isinstance(where, str):
            raise MappingError(f"expected the path to be a string, got {_kind(where)}", path=path)
        keys = parse_path(where)
        return UNDEFINED if keys is None else copied_value(walk(payload, keys))

    return read_dynamic


def _template(argument: Any, path: str) -> CompiledNode:
    if isinstance(argument, str):
        return compile_template(argument)
    source = _compile(argument, path)

    def render_dynamic(payload: Any) -> str:
        template = source(payload)
        if not isinstance(template, str):
            raise MappingError(f"expected a string template, got {_kind(template)}", path=path)
        return render_template(template, payload)

    return render_dynamic


def _literal(argument: Any, path: str) -> CompiledNode:
    # Segment resolves what @literal holds: it protects values such as '' from being read as
    # empty templates, not directives from being run.
    return _compile(argument, path)


def _if(argument: dict[str, Any], path: str) -> CompiledNode:
    by_blank = "exists" not in argument
    condition_key = "blank" if by_blank else "exists"
    condition = _compile(argument[condition_key], join_path(path, condition_key))
    then = _compile(argument["then"], join_path(path, "then")) if "then" in argument else None
    # Segment tests `opts.else` for truthiness: a false, 0, '' or null `else` gives undefined.
    otherwise = (
        _compile(argument["else"], join_path(path, "else"))
        if js_truthy(argument.get("else"))
        else None
    )

    def choose(payload: Any) -> Any:
        value = condition(payload)
        holds = not is_blank(value) if by_blank else value is not UNDEFINED and value is not None
        if holds:
            return UNDEFINED if then is None else then(payload)
        return UNDEFINED if otherwise is None else otherwise(payload)

    return choose


def _case(argument: dict[str, Any], path: str) -> CompiledNode:
    if not js_truthy(argument.get("value")):
        return lambda payload: UNDEFINED
    source = _compile(argument["value"], join_path(path, "value"))
    change: Callable[[str], str] = str.lower if argument["operator"] == "lower" else str.upper

    def run(payload: Any) -> Any:
        value = source(payload)
        return change(value) if isinstance(value, str) else value

    return run


def _replace(argument: dict[str, Any], path: str) -> CompiledNode:
    if not js_truthy(argument["value"]):
        return lambda payload: UNDEFINED
    ignorecase = argument.get("ignorecase", False)
    global_ = argument.get("global", True)
    first = compile_replace(
        argument["pattern"], argument.get("replacement", ""), ignorecase=ignorecase, global_=global_
    )
    second = (
        compile_replace(
            argument["pattern2"],
            argument.get("replacement2", ""),
            ignorecase=ignorecase,
            global_=global_,
        )
        if argument.get("pattern2")
        else None
    )
    source = _compile(argument["value"], join_path(path, "value"))

    def run(payload: Any) -> str:
        value = source(payload)
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = js_number(value)
        elif not isinstance(value, str):
            return ""  # Segment returns '' for null, undefined, objects and arrays
        value = first(value)
        return value if second is None else second(value)

    return run


def _array_path(argument: list[Any], path: str) -> CompiledNode:
    head = argument[0]
    source = (
        compile_getter(parse_path(head))
        if isinstance(head, str)
        else _compile(head, join_path(path, 0))
    )
    shape = argument[1] if len(argument) > 1 else None
    if not (isinstance(shape, dict) and shape):
        return lambda payload: copied_value(source(payload))
    each = _compile(shape, join_path(path, 1))

    def run(payload: Any) -> Any:
        root = source(payload)
        if isinstance(root, Mapping):
            items: list[Any] = [root]  # a single object is mapped as a one-item list
        elif isinstance(root, list):
            items = root
        else:
            return copied_value(root)
        out = []
        for item in items:
            result = each(item)
            out.append(None if result is UNDEFINED else result)
        return out

    return run


def _flatten(argument: dict[str, Any], path: str) -> CompiledNode:
    source = _compile(argument["value"], join_path(path, "value"))
    separator: str = argument["separator"]
    omit_arrays: bool = argument.get("omitArrays", False)
    return lambda payload: flatten(source(payload), separator, omit_arrays)


def _json(argument: dict[str, Any], path: str) -> CompiledNode:
    source = _compile(argument["value"], join_path(path, "value"))
    if argument["mode"] == "encode":
        return lambda payload: json_encode(source(payload))
    return lambda payload: json_decode(source(payload))


def _merge(argument: dict[str, Any], path: str) -> CompiledNode:
    objects_path = join_path(path, "objects")
    sources = [
        _compile(item, join_path(objects_path, index), keep_undefined=True)
        for index, item in enumerate(argument["objects"])
    ]
    left = argument.get("direction", "right") == "left"
    return lambda payload: merge([source(payload) for source in sources], left=left)


def _transform(argument: dict[str, Any], path: str) -> CompiledNode:
    apply = _compile(argument["apply"], join_path(path, "apply"))
    mapping = _compile(argument["mapping"], join_path(path, "mapping"))

    def run(payload: Any) -> Any:
        applied = apply(payload)
        return mapping({} if applied is UNDEFINED else applied)

    return run


def _exclude_when_null(argument: Any, path: str) -> CompiledNode:
    source = _compile(argument, path)

    def run(payload: Any) -> Any:
        value = source(payload)
        return UNDEFINED if value is None else drop_nulls(value)

    return run


_DIRECTIVES: dict[str, Callable[[Any, str], CompiledNode]] = {
    "@path": _path,
    "@template": _template,
    "@literal": _literal,
    "@if": _if,
    "@case": _case,
    "@replace": _replace,
    "@arrayPath": _array_path,
    "@flatten": _flatten,
    "@json": _json,
    "@merge": _merge,
    "@transform": _transform,
    "@excludeWhenNull": _exclude_when_null,
}
