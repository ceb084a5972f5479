"""A runner stopped while its step runs in a thread: the connections are closed only once the
step has returned (closing them under it crashed `sluice-batch` inside SQLite)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sluice.config import Settings
from sluice.identity.consumer import IdentityConsumer
from sluice.identity.runner import run_identity
from sluice.identity.tables import SqliteIdentityDb
from sluice.runtime.serial import Serial

STEP_S = 0.5


def test_a_cancelled_runner_closes_its_connections_after_the_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    started = threading.Event()
    real_step, real_close = IdentityConsumer.step, SqliteIdentityDb.close

    def slow_step(self: IdentityConsumer, *args: Any) -> int:
        started.set()
        time.sleep(STEP_S)  # the thread is mid-step when the task is cancelled
        read = real_step(self, *args)
        order.append("step returned")
        return read

    def close(self: SqliteIdentityDb) -> None:
        order.append("closed")
        real_close(self)

    monkeypatch.setattr(IdentityConsumer, "step", slow_step)
    monkeypatch.setattr(SqliteIdentityDb, "close", close)

    async def scenario() -> None:
        task = asyncio.create_task(run_identity(Settings(data_dir=tmp_path)))
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert order == ["step returned", "closed"]


def test_close_waits_for_the_call_under_way_even_when_cancelled() -> None:
    order: list[str] = []
    started = threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(STEP_S)
        order.append("call returned")

    async def scenario() -> None:
        calls = Serial()
        call = asyncio.create_task(calls.run(slow))
        while not started.is_set():
            await asyncio.sleep(0.01)
        call.cancel()
        closing = asyncio.create_task(calls.close(lambda: order.append("closed")))
        await asyncio.sleep(0.05)
        closing.cancel()  # a second cancel: the close still runs to its end
        with pytest.raises(asyncio.CancelledError):
            await closing

    asyncio.run(scenario())
    assert order == ["call returned", "closed"]
