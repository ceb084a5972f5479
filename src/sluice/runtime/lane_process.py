"""The entry point of one lane's process: name it, lower its priority if asked, run its units."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal

from sluice.config import Settings
from sluice.logs import configure as configure_logging
from sluice.runtime.batch_lane import BATCH, BatchCatalogue
from sluice.runtime.delivery_lane import DELIVERY, DestinationCatalogue
from sluice.runtime.lease_runner import LeaseRunner
from sluice.runtime.self_report import SelfReport
from sluice.runtime.units import Catalogue
from sluice.store.base import Store
from sluice.store.factory import open_store

log = logging.getLogger(__name__)
LANES = (DELIVERY, BATCH)
PR_SET_NAME = 15
PR_SET_PDEATHSIG = 1


def process_name(lane: str) -> bytes:
    """What `ps`/`top` show (at most 15 bytes): sluice-delivery, sluice-batch."""
    return f"sluice-{lane}".encode()[:15]


def catalogue_for(lane: str, settings: Settings, store: Store) -> Catalogue:
    if lane == DELIVERY:
        return DestinationCatalogue(store)
    if lane == BATCH:
        return BatchCatalogue(settings, store)
    raise ValueError(f"no such lane: {lane!r}")


def prctl(option: int, value: int | bytes) -> None:
    """Linux process options (name, parent-death signal); nothing elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(option, value, 0, 0, 0)


def run_lane(settings: Settings, lane: str, holder: str, restarts: int) -> None:
    """Process entry point, started by the supervisor (runtime/supervisor.py)."""
    prctl(PR_SET_NAME, process_name(lane))
    configure_logging(settings.log_level, settings.log_format, lane)
    # Die with the supervisor: an orphaned lane would hold its leases with nobody to restart it.
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if lane == BATCH and settings.batch_nice:
        with contextlib.suppress(OSError):
            os.nice(settings.batch_nice)
    store = open_store(settings)
    report = SelfReport(holder, lane, restarts)
    runner = LeaseRunner(
        store, catalogue_for(lane, settings, store), lease_s=settings.lease_s, holder=holder,
        report=report,
    )  # fmt: skip

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Once: a second signal (the group's and the supervisor's) must not cut the clean
            # stop short, which gives the leases up.
            loop.add_signal_handler(sig, lambda: task.cancelling() or task.cancel())
        with contextlib.suppress(asyncio.CancelledError):
            await runner.run()

    try:
        asyncio.run(main())
    finally:
        store.close()
