"""The worker process: every consumer of the log that is not the collector.

A consumer per enabled destination, the archive writer and the warehouse loaders. It watches the
workspace (the control plane's version number) and starts, restarts or stops destination
consumers as destinations change; every consumer's position is durable (the store's cursors, or
the warehouse's own), so a restart resumes where the last step committed. One aiohttp session is
shared by every destination consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
from collections.abc import Awaitable, Callable

import aiohttp

from sluice.config import Settings
from sluice.delivery.config import DestinationConfig, DestinationConfigError, compile_destination
from sluice.delivery.consumer import Consumer
from sluice.delivery.sender import new_session
from sluice.errors import SluiceError
from sluice.store.base import Store
from sluice.store.factory import open_store

log = logging.getLogger(__name__)
CONFIG_POLL_S = 1.0
PR_SET_NAME = 15


class Worker:
    def __init__(self, store: Store, settings: Settings | None = None) -> None:
        self.store = store
        self.settings = settings
        self.tasks: dict[str, tuple[bytes, asyncio.Task[None]]] = {}
        self.errors: dict[str, str] = {}
        self._version = -1

    async def run(self) -> None:
        background = [asyncio.create_task(_supervised(name, job)) for name, job in self._jobs()]
        async with new_session() as session:
            try:
                while True:
                    await self.sync(session)
                    await asyncio.sleep(CONFIG_POLL_S)
            finally:
                tasks = [task for _, task in self.tasks.values()] + background
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    def _jobs(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """The consumers that are not destinations: the archive and the warehouses."""
        settings = self.settings
        if settings is None:
            return []
        from sluice.warehouse.loader import run_warehouses

        store = self.store
        return [
            # Its own store connection: its large reads would hold the shared one's lock.
            ("archive", lambda: _archive(settings)),
            ("warehouses", lambda: run_warehouses(settings, store)),
        ]

    async def sync(self, session: aiohttp.ClientSession) -> None:
        """Match the running consumers to the workspace's destinations."""
        version = await asyncio.to_thread(self.store.config_version)
        restart_dead = any(task.done() for _, task in self.tasks.values())
        if version == self._version and not restart_dead:
            return
        self._version = version
        docs = {
            o.id: o.body for o in await asyncio.to_thread(self.store.list_config, "destination")
        }
        for dest_id in [d for d in self.tasks if d not in docs]:
            self.tasks.pop(dest_id)[1].cancel()
        for dest_id, body in docs.items():
            running = self.tasks.get(dest_id)
            if running and running[0] == body and not running[1].done():
                continue
            if running:
                running[1].cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await running[1]
                del self.tasks[dest_id]
            try:
                config = compile_destination(body)
            except (DestinationConfigError, SluiceError) as exc:
                self.errors[dest_id] = str(exc)
                log.error("destination %s is not delivered: %s", dest_id, exc)
                continue
            self.errors.pop(dest_id, None)
            if config.enabled:
                self.tasks[dest_id] = (body, asyncio.create_task(self._consume(config, session)))

    async def _consume(self, config: DestinationConfig, session: aiohttp.ClientSession) -> None:
        try:
            await Consumer(config, self.store, session).run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("consumer of %s failed; it restarts from its cursor", config.id)
            await asyncio.sleep(1.0)
            raise


def _name_process(name: bytes) -> None:
    """Name the process as `ps`/`top` show it (Linux), to tell the worker from HTTP workers."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_NAME, name, 0, 0, 0)


async def _archive(settings: Settings) -> None:
    from sluice.archive.writer import ArchiveWriter

    store = open_store(settings)
    try:
        await ArchiveWriter(settings, store).run()
    finally:
        store.close()


async def _supervised(name: str, job: Callable[[], Awaitable[None]]) -> None:
    """Run `job` again a second after it fails: its position is durable, nothing is skipped."""
    while True:
        try:
            await job()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; restarting it in a second", name)
            await asyncio.sleep(1.0)


def run_worker(settings: Settings) -> None:
    """Process entry point (`sluice serve` starts it next to the HTTP workers)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    _name_process(b"sluice-worker")
    store = open_store(settings)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await Worker(store, settings).run()

    try:
        asyncio.run(main())
    finally:
        store.close()
