"""Units: the consumers a lane process runs, each while it holds the unit's lease."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from sluice.failure_log import FailureLog

log = logging.getLogger(__name__)
RESTART_S = 1.0  # a failed unit runs again this soon
WORKED_S = 60.0  # a unit that ran this long before failing had worked (its failure is new)

Job = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class Unit:
    """One consumer a worker may run: its lease name, what defines it, and how to run it."""

    name: str
    key: bytes  # its configuration: a change restarts it
    job: Job


class Catalogue(Protocol):
    """What one lane runs: its units as the workspace defines them now, and its chores."""

    lane: str

    def resources(self) -> AbstractAsyncContextManager[None]:
        """What the lane's units share while the process runs (e.g. an HTTP session)."""
        ...

    async def refresh(self) -> dict[str, Unit] | None:
        """The lane's units by name, or None when nothing changed since the last call."""
        ...

    async def upkeep(self, running: Collection[str]) -> None:
        """Periodic chores of the lane, given the units this process runs (called every tick)."""
        ...


async def supervised(name: str, job: Job) -> None:
    """Run `job` again a second after it fails: its position is durable, nothing is skipped.
    A job failing at once each time is logged once (failure_log.py); one that ran a minute
    before failing counts as having worked."""
    failures = FailureLog(log, name)
    while True:
        started = time.monotonic()
        try:
            await job()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if time.monotonic() - started >= WORKED_S:
                failures.succeeded()
            failures.failed(exc, RESTART_S, level=logging.ERROR)
            await asyncio.sleep(RESTART_S)
