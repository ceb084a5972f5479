"""Blocking calls on a runner's connections, one at a time in a worker thread, and a close
that waits for the call under way.

A runner (identity, Engage) awaits each step in a thread. Cancelled (the process stopping), the
await ends at once but the thread cannot be stopped: its step goes on using the connections.
Closing them under it then crashed the process inside SQLite (a segfault as `sluice-batch`
stopped) instead of letting the step finish or roll back. Every call here holds one lock, so
`close` starts only once the step under way has returned.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Serial:
    def __init__(self) -> None:
        self._lock = threading.Lock()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a thread, after any call still under way."""
        return await asyncio.to_thread(self._locked, fn, *args)

    async def close(self, *closers: Callable[[], object]) -> None:
        """Each closer in turn, once no call is under way; awaited to the end even when the
        task awaiting it is cancelled (the connections must not stay open)."""
        done = asyncio.ensure_future(asyncio.to_thread(self._locked, _each, closers))
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            await done
            raise

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            return fn(*args)


def _each(closers: tuple[Callable[[], object], ...]) -> None:
    for close in closers:
        close()
