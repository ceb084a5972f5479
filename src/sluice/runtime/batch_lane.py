"""The batch lane: consumers that work in large steps (the archive writer, the warehouse loaders,
log retention, the identity graph and Engage, regulations' deletions; lakes load as warehouses).

A load may hold its process for seconds; here that delays only other batch work, and the lane's
process runs at a lower CPU priority (`SLUICE_BATCH_NICE`) so delivery gets the CPU first.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Collection

from sluice.archive.writer import ArchiveWriter
from sluice.config import Settings
from sluice.delivery.retention import run_retention
from sluice.engage.runner import run_engage
from sluice.identity.runner import run_identity
from sluice.privacy.runner import run_privacy
from sluice.runtime.units import Unit
from sluice.store.base import Store
from sluice.store.factory import open_store
from sluice.warehouse.loader import run_warehouses

BATCH = "batch"


class BatchCatalogue:
    """A fixed set of units: what they do is read from the workspace by the units themselves."""

    lane = BATCH

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._given = False

    @contextlib.asynccontextmanager
    async def resources(self) -> AsyncIterator[None]:
        yield  # its units share nothing

    async def refresh(self) -> dict[str, Unit] | None:
        if self._given:
            return None
        self._given = True
        settings, store = self.settings, self.store
        units = [
            # Its own store connection: its large reads would hold the shared one's lock.
            Unit("archive", b"", lambda: _archive(settings)),
            Unit("warehouses", b"", lambda: run_warehouses(settings, store)),
            Unit("retention", b"", lambda: run_retention(settings, store)),
            # One per workspace (the store holds one); it reads its rules itself.
            Unit("identity", b"", lambda: run_identity(settings)),
            Unit("engage", b"", lambda: run_engage(settings)),  # follows identity
            Unit("privacy", b"", lambda: run_privacy(settings)),  # regulations' deletions
        ]
        return {u.name: u for u in units}

    async def upkeep(self, running: Collection[str]) -> None:
        return None


async def _archive(settings: Settings) -> None:
    store = open_store(settings)
    try:
        await ArchiveWriter(settings, store).run()
    finally:
        store.close()
