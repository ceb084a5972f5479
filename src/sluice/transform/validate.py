"""`sluice apply`'s checks of the `transformations:` section, each error naming the field:
the fields each type needs (and no others), the source and destination exist and are
connected, paths and casing expressions compile, and Segment's rule of one transformation per
(source, type, call, event, destination)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sluice.transform.compile import TransformError, compile_one
from sluice.workspace.errors import WorkspaceError

if TYPE_CHECKING:
    from sluice.workspace.model import Destination, Workspace
    from sluice.workspace.model_transformations import Transformation

# type -> (calls it applies to, the field it needs)
_NEEDS = {
    "rename_event": (("track",), "new_event_name"),
    "rename_properties": (("track",), "renames"),
    "rename_traits": (("identify", "group"), "renames"),
    "set_values": (("track", "identify", "group"), "values"),
    "casing": (("track", "identify", "group"), "casing"),
}
_OPTIONAL = ("new_event_name", "renames", "values", "casing")


def check_transformations(ws: Workspace) -> None:
    """Raise WorkspaceError (path `transformations[i].<field>`) for the first problem."""
    from sluice.workspace.model_checks import check_json_value

    sources = {s.id for s in ws.sources}
    destinations = {d.id: d for d in ws.destinations}
    ids: dict[str, int] = {}
    keys: dict[tuple[object, ...], int] = {}
    for i, t in enumerate(ws.transformations):
        where = f"transformations[{i}]"
        if t.id in ids:
            raise WorkspaceError(
                f"Duplicate id {t.id!r} (also at transformations[{ids[t.id]}])", path=f"{where}.id"
            )
        ids[t.id] = i
        if t.source not in sources:
            raise WorkspaceError(f"Unknown source {t.source!r}", path=f"{where}.source")
        if t.destination is not None:
            _check_destination(t, destinations, f"{where}.destination")
        _check_shape(t, where)
        for j, change in enumerate(t.values):
            check_json_value(f"{where}.values[{j}].value", change.value)
        try:
            compile_one(t)
        except TransformError as exc:
            raise WorkspaceError(exc.message, path=f"{where}.{exc.field}") from None
        key = (t.source, t.type, t.call, t.event, t.destination)
        if key in keys:
            scope = f"destination {t.destination!r}" if t.destination else "source scope"
            what = f"event {t.event!r}" if t.call == "track" else f"{t.call} calls"
            raise WorkspaceError(
                f"transformations[{keys[key]}] is already a {t.type} transformation of source"
                f" {t.source!r} for {what} ({scope}); one per source, type, event and"
                " destination",
                path=f"{where}.type",
            )
        keys[key] = i


def _check_destination(t: Transformation, destinations: dict[str, Destination], path: str) -> None:
    destination = destinations.get(t.destination or "")
    if destination is None:
        raise WorkspaceError(f"Unknown destination {t.destination!r}", path=path)
    if destination.mode == "device":
        raise WorkspaceError(
            f"Destination {destination.id!r} runs in the page (device mode): transformations"
            " apply to cloud-mode destinations only",
            path=path,
        )
    if destination.sources and t.source not in destination.sources:
        raise WorkspaceError(
            f"Destination {destination.id!r} does not receive source {t.source!r}", path=path
        )


def _check_shape(t: Transformation, where: str) -> None:
    calls, needed = _NEEDS[t.type]
    if t.call not in calls:
        raise WorkspaceError(
            f"A {t.type} transformation applies to {' or '.join(calls)} calls", path=f"{where}.call"
        )
    if t.call == "track" and t.event is None:
        raise WorkspaceError(
            "A transformation of Track calls names its event", path=f"{where}.event"
        )
    if t.call != "track" and t.event is not None:
        raise WorkspaceError(
            f"Only Track calls have an event name; a {t.call} transformation applies to every"
            f" {t.call} call",
            path=f"{where}.event",
        )
    if not getattr(t, needed):
        raise WorkspaceError(
            f"A {t.type} transformation needs `{needed}`", path=f"{where}.{needed}"
        )
    for other in _OPTIONAL:
        if other != needed and getattr(t, other):
            raise WorkspaceError(
                f"`{other}` is not used by a {t.type} transformation (make it a transformation"
                " of its own)",
                path=f"{where}.{other}",
            )
    if t.type == "set_values":
        seen: dict[str, str] = {}
        for j, change in enumerate(t.values):
            if not change.paths:
                raise WorkspaceError("Name at least one path", path=f"{where}.values[{j}].paths")
            for k, p in enumerate(change.paths):
                field = f"values[{j}].paths[{k}]"
                if p in seen:
                    raise WorkspaceError(
                        f"{p!r} is set twice (also at {seen[p]})", path=f"{where}.{field}"
                    )
                seen[p] = field
    if t.type in ("rename_properties", "rename_traits"):
        olds: dict[str, int] = {}
        for j, r in enumerate(t.renames):
            if r.old in olds:
                raise WorkspaceError(
                    f"{r.old!r} is renamed twice (also at renames[{olds[r.old]}])",
                    path=f"{where}.renames[{j}].old",
                )
            olds[r.old] = j
            if r.old == r.new:
                raise WorkspaceError(
                    "The new name is the old one", path=f"{where}.renames[{j}].new"
                )
