"""Changing the workspace one object at a time, through the rules of `sluice apply`.

Every change (create, replace, patch, delete, enable, rotate a write key) reads the workspace,
makes the change in the document, checks the whole document exactly as `sluice apply` checks a
file (`workspace_from_data`, `check_destinations`) and applies it with `apply_workspace`. The
rules therefore live in one place, and a change the API accepts is a file `apply` would accept.

Read, change, apply is not one transaction, so changes are serialised with a lease on the store
(workspace/lock.py): two API or UI requests in different processes, or on different nodes, never
both read the same workspace and each drop the other's change.

Everything here is synchronous and free of HTTP, for the admin API and the web UI alike.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any, Literal, get_args

import msgspec

from sluice.admin.errors import Conflict, Invalid, NotFound
from sluice.store.base import Store
from sluice.workspace.destinations import check_destinations
from sluice.workspace.errors import WorkspaceError
from sluice.workspace.files import parse_workspace, workspace_data, workspace_from_data
from sluice.workspace.lock import WorkspaceBusy
from sluice.workspace.lock import workspace_lock as shared_workspace_lock
from sluice.workspace.model import Destination, Source, TrackingPlan, Warehouse, Workspace
from sluice.workspace.sync import ApplyReport, apply_workspace, export_workspace, generate_write_key

Collection = Literal["sources", "destinations", "warehouses", "tracking_plans"]
COLLECTIONS: tuple[Collection, ...] = get_args(Collection)
KIND: dict[Collection, str] = {
    "sources": "source",
    "destinations": "destination",
    "warehouses": "warehouse",
    "tracking_plans": "tracking_plan",
}
WorkspaceObject = Source | Destination | Warehouse | TrackingPlan

_DOCUMENT_PATH = re.compile(r"(?P<collection>[a-z_]+)\[(?P<index>\d+)\](?P<rest>.*)\Z", re.DOTALL)


@contextlib.contextmanager
def workspace_lock(store: Store) -> Iterator[None]:
    """The workspace lease (workspace/lock.py); a change that cannot get it is a 409."""
    try:
        with shared_workspace_lock(store):
            yield
    except WorkspaceBusy as exc:
        raise Conflict(exc.message, code="busy") from None


# --- documents --------------------------------------------------------------------------------
def object_document(obj: WorkspaceObject) -> dict[str, Any]:
    """An object with every field present (defaults included), as the API returns it."""
    data = {f.name: getattr(obj, f.name) for f in msgspec.structs.fields(obj)}
    if isinstance(obj, Source):
        data["name"] = obj.display_name
    result: dict[str, Any] = msgspec.to_builtins(data)
    return result


def report_document(report: ApplyReport, *, dry_run: bool) -> dict[str, Any]:
    """The apply report as JSON; a dry run names the sources that would get a key (null)."""
    generated: dict[str, str | None] = dict(report.generated_keys)
    if dry_run:
        # The keys a dry run made up are not stored: showing them would suggest they work.
        generated = dict.fromkeys(generated)
    return {
        "changed": report.changed,
        "dry_run": dry_run,
        "created": report.created,
        "updated": report.updated,
        "deleted": report.deleted,
        "generated_keys": generated,
    }


def _objects(ws: Workspace, collection: Collection) -> list[WorkspaceObject]:
    objects: list[WorkspaceObject] = getattr(ws, collection)
    return objects


# --- the whole workspace -----------------------------------------------------------------------
def read_workspace(store: Store) -> Workspace:
    """The workspace as `sluice export` writes it."""
    return export_workspace(store)


def check_document(data: object) -> Workspace:
    """A decoded document (JSON) checked as `sluice apply` checks a file; raises `Invalid`."""
    try:
        ws = workspace_from_data(data, None)
        check_destinations(ws)
    except WorkspaceError as exc:
        raise _invalid(exc) from None
    return ws


def check_yaml(text: str) -> Workspace:
    """A YAML document checked as `sluice apply` checks a file; raises `Invalid`."""
    try:
        ws = parse_workspace(text, None)
        check_destinations(ws)
    except WorkspaceError as exc:
        raise _invalid(exc) from None
    return ws


def apply_document(store: Store, ws: Workspace, *, dry_run: bool = False) -> ApplyReport:
    """Make the store match a checked document, as `sluice apply` does."""
    with workspace_lock(store):
        try:
            return apply_workspace(store, ws, dry_run=dry_run)
        except WorkspaceError as exc:
            raise _invalid(exc) from None


def _invalid(exc: WorkspaceError) -> Invalid:
    message = f"{exc.path}: {exc.message}" if exc.path else exc.message
    return Invalid(message, field=exc.path)


# --- one object --------------------------------------------------------------------------------
def list_objects(store: Store, collection: Collection) -> list[dict[str, Any]]:
    return [object_document(obj) for obj in _objects(read_workspace(store), collection)]


def get_object(store: Store, collection: Collection, object_id: str) -> dict[str, Any]:
    """One object; raises `NotFound`."""
    for obj in _objects(read_workspace(store), collection):
        if obj.id == object_id:
            return object_document(obj)
    raise NotFound(f"No {KIND[collection]} {object_id!r}")


def create_object(store: Store, collection: Collection, body: object) -> dict[str, Any]:
    """Add an object; raises `Conflict` (already_exists) or `Invalid`."""
    document = _require_object(body)

    def change(items: list[dict[str, Any]]) -> int:
        new_id = document.get("id")
        if any(item["id"] == new_id for item in items):
            raise Conflict(f"A {KIND[collection]} {new_id!r} exists already", code="already_exists")
        items.append(document)
        return len(items) - 1

    return _edit(store, collection, change, document.get("id"))


def replace_object(
    store: Store, collection: Collection, object_id: str, body: object
) -> dict[str, Any]:
    """Replace an object with `body` (its `id` may be left out); raises `NotFound`, `Invalid`.

    Fields left out take their defaults, except a source's write keys, which it keeps (as in
    `sluice apply`).
    """
    document = _same_id(_require_object(body), object_id)

    def change(items: list[dict[str, Any]]) -> int:
        index = _index(items, collection, object_id)
        items[index] = document
        return index

    return _edit(store, collection, change, object_id)


def patch_object(
    store: Store, collection: Collection, object_id: str, body: object
) -> dict[str, Any]:
    """Change the top-level fields `body` gives, keep the others; raises `NotFound`, `Invalid`."""
    changes = _same_id(_require_object(body), object_id)

    def change(items: list[dict[str, Any]]) -> int:
        index = _index(items, collection, object_id)
        items[index] = {**items[index], **changes}
        return index

    return _edit(store, collection, change, object_id)


def set_enabled(
    store: Store, collection: Collection, object_id: str, enabled: bool
) -> dict[str, Any]:
    return patch_object(store, collection, object_id, {"enabled": enabled})


def delete_object(store: Store, collection: Collection, object_id: str) -> None:
    """Remove an object; raises `NotFound`, or `Conflict` (in_use) when others refer to it."""

    def change(items: list[dict[str, Any]]) -> int:
        del items[_index(items, collection, object_id)]
        return -1

    _edit(store, collection, change, None)


def rotate_write_key(
    store: Store, source_id: str, *, keep_old: bool = False
) -> tuple[dict[str, Any], str]:
    """Give a source a new generated write key, replacing its keys unless `keep_old`.

    Keeping the old keys lets clients move to the new key before the old ones are removed (by
    a later rotation, or by setting `write_keys`). Returns the source and the new key.
    """
    key = generate_write_key()

    def change(items: list[dict[str, Any]]) -> int:
        index = _index(items, "sources", source_id)
        old = list(items[index].get("write_keys") or []) if keep_old else []
        items[index] = {**items[index], "write_keys": [*old, key]}
        return index

    return _edit(store, "sources", change, source_id), key


def _edit(
    store: Store,
    collection: Collection,
    change: Callable[[list[dict[str, Any]]], int],
    object_id: object,
) -> dict[str, Any]:
    """Read the workspace, `change` one collection of it, check and apply the whole document.

    `change` returns the index of the object it created or changed (-1 when it deleted one), so
    that errors about that object are reported in its own terms (`settings.api_key`, not
    `destinations[3].settings.api_key`). Returns the object as stored afterwards (`{}` after a
    delete).
    """
    with workspace_lock(store):
        data = workspace_data(read_workspace(store))
        items: list[dict[str, Any]] = data[collection]
        index = change(items)
        try:
            ws = workspace_from_data(data, None)
            check_destinations(ws)
            apply_workspace(store, ws)
        except WorkspaceError as exc:
            raise _edit_error(exc, data, collection, index) from None
        if index < 0:
            return {}
        return get_object(store, collection, str(object_id))


def _edit_error(
    exc: WorkspaceError, data: dict[str, Any], collection: Collection, index: int
) -> Invalid | Conflict:
    """The error in the terms of the object changed, or naming the other object it concerns."""
    match = _DOCUMENT_PATH.fullmatch(exc.path)
    if match is None:
        return _invalid(exc)
    rest = match["rest"].removeprefix(".")
    if match["collection"] == collection and int(match["index"]) == index:
        return Invalid(f"{rest}: {exc.message}" if rest else exc.message, field=rest)
    # The change broke another object, e.g. a deleted source a destination still lists.
    other: Any = data.get(match["collection"])
    position = int(match["index"])
    kinds: dict[str, str] = {str(c): k for c, k in KIND.items()}
    try:
        name = f"{kinds[match['collection']]} {other[position]['id']!r}"
    except (KeyError, IndexError, TypeError):
        name = f"{match['collection']}[{position}]"
    message = f"{name}, {rest}: {exc.message}" if rest else f"{name}: {exc.message}"
    if index < 0:
        return Conflict(f"Still in use: {message}", code="in_use", field=exc.path)
    return Invalid(message, field=exc.path)


def _require_object(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Invalid("Expected a JSON object", field="")
    return dict(body)


def _same_id(document: dict[str, Any], object_id: str) -> dict[str, Any]:
    if document.get("id", object_id) != object_id:
        raise Invalid(
            f"The id cannot change (it is {object_id!r}): create a new object instead",
            field="id",
        )
    return {**document, "id": object_id}


def _index(items: list[dict[str, Any]], collection: Collection, object_id: str) -> int:
    for index, item in enumerate(items):
        if item.get("id") == object_id:
            return index
    raise NotFound(f"No {KIND[collection]} {object_id!r}")
