"""Field paths as Segment's transformations write them: dot-separated, `\\.` for a literal dot,
at most four levels; and the three operations a transformation needs on a decoded event
(get, pop, set), none of which ever raises on an event of an unexpected shape."""

from __future__ import annotations

from typing import Any

MAX_LEVELS = 4
_MISSING = object()


class PathError(ValueError):
    """A path that cannot be used, with the reason."""


def parse_path(text: str, max_levels: int = MAX_LEVELS) -> tuple[str, ...]:
    """`order.id` -> ("order", "id"); `a\\.b` -> ("a.b",). Raises PathError."""
    segments: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in ".\\":
            current.append(text[i + 1])
            i += 2
            continue
        if ch == ".":
            segments.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    segments.append("".join(current))
    if any(not s for s in segments):
        raise PathError(f"{text!r} has an empty segment (write a literal dot as \\.)")
    if any(s == "$" for s in segments):
        raise PathError(f"{text!r}: array element paths ($) are not supported, as at Segment")
    if len(segments) > max_levels:
        raise PathError(f"{text!r} is {len(segments)} levels deep; at most {max_levels}")
    return tuple(segments)


def get(root: Any, path: tuple[str, ...]) -> Any:
    """The value at `path`, or `_MISSING`."""
    node = root
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def missing(value: Any) -> bool:
    return value is _MISSING


def pop(root: dict[str, Any], path: tuple[str, ...]) -> Any:
    """Remove and return the value at `path` (`_MISSING` if absent); parents it empties go too,
    so moving `order.id` out of an `order` holding nothing else leaves no empty `order`."""
    parents: list[tuple[dict[str, Any], str]] = []
    node: Any = root
    for key in path[:-1]:
        child = node.get(key) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            return _MISSING
        parents.append((node, key))
        node = child
    if not isinstance(node, dict) or path[-1] not in node:
        return _MISSING
    value = node.pop(path[-1])
    for parent, key in reversed(parents):
        if parent[key]:
            break
        del parent[key]
    return value


def can_set(root: dict[str, Any], path: tuple[str, ...]) -> bool:
    """Whether `set_value` would succeed: no existing non-object value on the way."""
    node: Any = root
    for key in path[:-1]:
        if key not in node:
            return True
        node = node[key]
        if not isinstance(node, dict):
            return False
    return True


def set_value(root: dict[str, Any], path: tuple[str, ...], value: Any) -> bool:
    """Set `path` to `value`, making objects on the way; False (nothing changed) when a
    non-object value is in the way: a transformation never overwrites data to make room."""
    if not can_set(root, path):
        return False
    node = root
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return True
