"""One change to the workspace at a time, across processes and nodes.

A form in the UI or a request to the admin API reads the workspace, changes the document and
applies it; that is not one transaction, so two such changes at once could each drop the other's.
They take this lease on the store first. `sluice apply` does not: applying a file means the file
wins.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time
from collections.abc import Iterator

from sluice.store.base_workers import Leases
from sluice.workspace.errors import WorkspaceError

LOCK_NAME = "admin:workspace"
LOCK_TTL_S = 30.0  # far longer than a change takes; a crashed holder frees it after this
LOCK_WAIT_S = 10.0
LOCK_POLL_S = 0.02


class WorkspaceBusy(WorkspaceError):
    """Another change held the workspace for longer than a change may wait."""

    def __init__(self) -> None:
        super().__init__("Another change to the workspace is in progress; try again")


@contextlib.contextmanager
def workspace_lock(store: Leases) -> Iterator[None]:
    """Hold the workspace lease while reading, changing and applying the workspace."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    deadline = time.monotonic() + LOCK_WAIT_S
    while not store.claim_lease(LOCK_NAME, holder, LOCK_TTL_S):
        if time.monotonic() > deadline:
            raise WorkspaceBusy
        time.sleep(LOCK_POLL_S)
    try:
        yield
    finally:
        store.release_lease(LOCK_NAME, holder)
