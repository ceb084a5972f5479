"""The copy-on-write edits a filter's property actions make: drop fields, or keep only some.

Built once per filter (filters.py) from the fields its `drop_properties` and `allow_properties`
actions name, and applied to every event it matches. Separate from the document and Segment's
order of actions: these only say how a value is changed without changing the event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FieldPath = tuple[str, ...]
FieldTree = dict[str, "FieldTree | None"]  # None: the whole value under this key
Edit = Callable[[Any], Any]  # returns its argument itself when it changes nothing


# Copy-on-write edits, built once per filter: a container is copied only when something below
# it changes, and a list applies the edit to each of its elements.


def edit_at(path: FieldPath, edit: Edit) -> Edit:
    """`edit` applied to the value at `path` (to each element of the lists on the way)."""
    if not path:
        return edit
    key, inner = path[0], edit_at(path[1:], edit)

    def update(value: Any) -> Any:
        if type(value) is list:
            return _map_list(value, update)
        if type(value) is not dict or key not in value:
            return value
        child = value[key]
        new_child = inner(child)
        if new_child is child:
            return value
        copy = dict(value)
        copy[key] = new_child
        return copy

    return update


def field_dropper(tree: FieldTree) -> Edit:
    """Remove every field of `tree` (a None leaf) in one pass."""
    children = {key: None if sub is None else field_dropper(sub) for key, sub in tree.items()}

    def drop(value: Any) -> Any:
        if type(value) is list:
            return _map_list(value, drop)
        if type(value) is not dict:
            return value
        copy: dict[str, Any] | None = None
        for key, child_edit in children.items():
            if key not in value:
                continue
            if child_edit is None:
                copy = dict(value) if copy is None else copy
                del copy[key]
                continue
            child = value[key]
            new_child = child_edit(child)
            if new_child is not child:
                copy = dict(value) if copy is None else copy
                copy[key] = new_child
        return value if copy is None else copy

    return drop


def field_pruner(tree: FieldTree) -> Edit:
    """Keep only the fields of `tree`: a None leaf keeps the whole value, a subtree prunes it."""
    children = {key: None if sub is None else field_pruner(sub) for key, sub in tree.items()}

    def prune(value: Any) -> Any:
        if type(value) is list:
            return _map_list(value, prune)
        if type(value) is not dict:
            return value
        kept: dict[str, Any] = {}
        changed = False
        for key, item in value.items():
            if key not in children:
                changed = True
                continue
            child_edit = children[key]
            new_item = item if child_edit is None else child_edit(item)
            changed = changed or new_item is not item
            kept[key] = new_item
        return kept if changed else value

    return prune


def _map_list(items: list[Any], fn: Callable[[Any], Any]) -> list[Any]:
    mapped = [fn(item) for item in items]
    if all(new is old for new, old in zip(mapped, items, strict=True)):
        return items
    return mapped
