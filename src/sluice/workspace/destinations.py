"""Checking each destination of a workspace against its type, before anything is written.

`check_workspace` checks the document's shape; whether a destination's settings, filters,
mappings and triggers make sense depends on its type, which only the delivery engine knows.
`sluice apply` and the admin API both call this, so a workspace is accepted by the same rules
however it arrives.
"""

from __future__ import annotations

import msgspec

from sluice.workspace.errors import WorkspaceError
from sluice.workspace.model import Workspace


def check_destinations(ws: Workspace) -> None:
    """Each destination against its type: settings, filters, mappings and triggers compile."""
    # Imported here: the delivery engine (and every destination type) is heavy to import, and
    # reading or exporting a workspace does not need it.
    from sluice.delivery.config import DestinationConfigError, compile_destination

    for index, destination in enumerate(ws.destinations):
        try:
            compile_destination(msgspec.to_builtins(destination))
        except DestinationConfigError as exc:
            path = f"destinations[{index}]" + (f".{exc.path}" if exc.path else "")
            raise WorkspaceError(exc.message, path=path) from exc
