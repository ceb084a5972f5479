"""Every change a UI form makes to the workspace, made the way `sluice apply` makes it.

A form never writes a control-plane row itself: the workspace is exported, the change is made
to that document, the document goes through the exact checks a workspace file goes through (it
is dumped to YAML and parsed back by `parse_workspace`, then every destination is compiled
against its type as `sluice apply` does) and is then applied. So the UI cannot store anything a
file could not hold, and `sluice export` afterwards shows what the UI did.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sluice.store.base import Store
from sluice.workspace.destinations import check_destinations
from sluice.workspace.errors import WorkspaceError
from sluice.workspace.files import dump_workspace, parse_workspace
from sluice.workspace.lock import workspace_lock
from sluice.workspace.model import Destination, Source, Workspace
from sluice.workspace.sync import ApplyReport, apply_workspace, export_workspace

Change = Callable[[Workspace], None]


class NotFound(LookupError):
    """The object a form names is not in the workspace (any more)."""


def apply_change(store: Store, change: Change, *, dry_run: bool = False) -> ApplyReport:
    """Export, change, check as a file, apply. Raises WorkspaceError (nothing written).

    Under the workspace lock, so an API request or another form at the same moment cannot
    drop this change (or this one drop theirs).
    """
    with workspace_lock(store):
        ws = export_workspace(store)
        change(ws)
        checked = parse_workspace(dump_workspace(ws), None)
        check_destinations(checked)
        return apply_workspace(store, checked, dry_run=dry_run)


def find_source(ws: Workspace, source_id: str) -> Source:
    for source in ws.sources:
        if source.id == source_id:
            return source
    raise NotFound(f"no source {source_id!r}")


def find_destination(ws: Workspace, destination_id: str) -> tuple[int, Destination]:
    for index, destination in enumerate(ws.destinations):
        if destination.id == destination_id:
            return index, destination
    raise NotFound(f"no destination {destination_id!r}")


def local_path(error: WorkspaceError, kind: str) -> str:
    """The error's path inside one object: `destinations[2].settings.urls` → `settings.urls`."""
    return re.sub(rf"^{re.escape(kind)}\[\d+\]\.?", "", error.path)


def message(error: WorkspaceError, kind: str) -> str:
    """The error as a form shows it: the field inside the object, then what is wrong."""
    path = local_path(error, kind)
    return f"{path}: {error.message}" if path else error.message
