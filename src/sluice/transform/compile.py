"""Transformations compiled once per workspace version into a `Transformer`: a dict from
(call, Track event name) to the operations to run, so an event no transformation names costs
one dict lookup.

Every transformation that names an event is matched against the event as it arrived, then the
operations run in a fixed order: values set, cases changed, properties or traits moved, and the
event renamed last (so a rename of `order_completed` and a property move for `order_completed`
both apply). A move or a set that would overwrite a non-object value on its way is skipped and
counted (`Transformer.apply` returns how many were), never forced.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sluice.fql import FqlError, parse
from sluice.fql.functions import FUNCTIONS
from sluice.fql.parser import Call, Path
from sluice.transform.paths import PathError, get, missing, parse_path, pop, set_value
from sluice.workspace.model_transformations import Transformation

CASING = ("lowercase", "uppercase", "snakecase", "kebabcase", "titlecase")
# Where set_values and casing may write: the objects Segment's transformations change.
VALUE_ROOTS = ("properties", "traits", "context")
ORDER = {"set_values": 0, "casing": 1, "rename_properties": 2, "rename_traits": 2,
         "rename_event": 3}  # fmt: skip

Op = Callable[[dict[str, Any]], bool]  # False: skipped (a value in the way)
Key = tuple[str, str | None]


class TransformError(ValueError):
    """A transformation that cannot be compiled; `field` names what is wrong in it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def key_of(t: Transformation) -> Key:
    return (t.call, t.event if t.call == "track" else None)


def value_path(text: str, field: str) -> tuple[str, ...]:
    """A full path under properties, traits or context (root plus up to 4 levels)."""
    try:
        path = parse_path(text, max_levels=5)
    except PathError as exc:
        raise TransformError(field, str(exc)) from None
    if path[0] not in VALUE_ROOTS or len(path) < 2:
        raise TransformError(
            field, f"{text!r} must start with one of {', '.join(VALUE_ROOTS)} and name a field"
        )
    return path


def _rename_op(root: str, old: tuple[str, ...], new: tuple[str, ...]) -> Op:
    def rename(event: dict[str, Any]) -> bool:
        container = event.get(root)
        if not isinstance(container, dict) or missing(get(container, old)):
            return True
        value = pop(container, old)
        if set_value(container, new, value):
            return True
        set_value(container, old, value)  # could not land: put back where it was
        return False

    return rename


def _set_op(path: tuple[str, ...], value: Any) -> Op:
    mutable = isinstance(value, dict | list)

    def set_values(event: dict[str, Any]) -> bool:
        return set_value(event, path, copy.deepcopy(value) if mutable else value)

    return set_values


def _casing_op(function: Callable[[Any], Any], source: tuple[str, ...],
               target: tuple[str, ...]) -> Op:  # fmt: skip
    def casing(event: dict[str, Any]) -> bool:
        value = get(event, source)
        if missing(value):
            return True
        return set_value(event, target, function(value))

    return casing


def _rename_event_op(new_name: str) -> Op:
    def rename_event(event: dict[str, Any]) -> bool:
        event["event"] = new_name
        return True

    return rename_event


def compile_one(t: Transformation) -> list[Op]:
    """The operations of one transformation; raises TransformError naming the field."""
    if t.type == "rename_event":
        assert t.new_event_name is not None  # validate.py requires it
        return [_rename_event_op(t.new_event_name)]
    if t.type in ("rename_properties", "rename_traits"):
        root = "properties" if t.type == "rename_properties" else "traits"
        ops = []
        for i, r in enumerate(t.renames):
            try:
                old, new = parse_path(r.old), parse_path(r.new)
            except PathError as exc:
                raise TransformError(f"renames[{i}]", str(exc)) from None
            ops.append(_rename_op(root, old, new))
        return ops
    if t.type == "set_values":
        return [
            _set_op(value_path(p, f"values[{i}].paths[{j}]"), change.value)
            for i, change in enumerate(t.values)
            for j, p in enumerate(change.paths)
        ]
    assert t.casing is not None
    function, source = casing_call(t.casing.fql, "casing.fql")
    target = value_path(t.casing.property, "casing.property")
    return [_casing_op(function, source, target)]


def casing_call(expr: str, field: str) -> tuple[Callable[[Any], Any], tuple[str, ...]]:
    """`lowercase(properties.x)`: the function and the path it reads."""
    try:
        node = parse(expr)
    except FqlError as exc:
        raise TransformError(field, str(exc)) from None
    if not (
        isinstance(node, Call)
        and node.name in CASING
        and len(node.args) == 1
        and isinstance(node.args[0], Path)
    ):
        raise TransformError(
            field, f"expected one of {', '.join(CASING)} applied to one field, e.g."
            " lowercase(properties.plan)"
        )  # fmt: skip
    source = node.args[0].segments
    if source[0] not in VALUE_ROOTS or len(source) < 2 or len(source) > 5:
        raise TransformError(field, f"the field must be under {', '.join(VALUE_ROOTS)}")
    return FUNCTIONS[node.name].impl, source


@dataclass(frozen=True, slots=True)
class Transformer:
    """The enabled transformations of one scope (a source, or a source for one destination)."""

    ops: dict[Key, tuple[Op, ...]]

    def apply(self, event: dict[str, Any]) -> int:
        """Transform `event` in place; returns how many operations were skipped."""
        call = event.get("type")
        ops = self.ops.get((call, event.get("event") if call == "track" else None))  # type: ignore[arg-type]
        if ops is None:
            return 0
        skipped = 0
        for op in ops:
            if not op(event):
                skipped += 1
        return skipped


def build(transformations: Iterable[Transformation]) -> Transformer | None:
    """One Transformer for these (enabled ones only), or None when none is enabled."""
    grouped: dict[Key, list[tuple[int, Op]]] = {}
    for t in transformations:
        if not t.enabled:
            continue
        grouped.setdefault(key_of(t), []).extend((ORDER[t.type], op) for op in compile_one(t))
    if not grouped:
        return None
    return Transformer(
        {
            key: tuple(op for _, op in sorted(ops, key=lambda o: o[0]))
            for key, ops in grouped.items()
        }
    )
