"""Group commit isolation: what one request holds never fails another request of its group.

The store is the real SQLite store; a subclass refuses the events a test marks (`refuse-...`),
standing in for whatever input a store could still refuse after validation.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sluice.collector.committer import GroupCommitter
from sluice.store.base import AppendBatch, NewEvent
from sluice.store.base_event_store import AppendResult
from sluice.store.errors import StoreUnavailable
from sluice.store.sqlite import SqliteStore


class RefusingStore(SqliteStore):
    """Refuses a whole append that holds an event whose id starts with `refuse`."""

    down = False

    def append(self, batch: AppendBatch) -> AppendResult:
        if self.down:
            raise StoreUnavailable("the store is down")
        if any(e.message_id.startswith("refuse") for e in batch.events):
            raise ValueError("cannot store this")
        return super().append(batch)


def request(*ids: str) -> AppendBatch:
    batch = AppendBatch(events=[NewEvent("web", i, "track", "E", 1, b"{}") for i in ids])
    batch.count("web", "received", len(ids))
    return batch


async def commit_together(
    store: RefusingStore, *batches: AppendBatch
) -> list[BaseException | None]:
    committer = GroupCommitter(store, asyncio.get_running_loop())
    futures = [committer.submit(b) for b in batches]  # queued before the writer runs: one group
    committer.start()
    try:
        results = await asyncio.gather(*futures, return_exceptions=True)
    finally:
        committer.stop()
    return [r if isinstance(r, BaseException) else None for r in results]


def test_a_refused_event_fails_neither_its_neighbours_nor_other_requests(tmp_path: Path) -> None:
    store = RefusingStore(tmp_path / "log.db")
    outcomes = asyncio.run(
        commit_together(store, request("a1", "a2"), request("b1", "refuse-1", "b2"), request("c1"))
    )
    assert outcomes == [None, None, None]
    stored = sorted(e.message_id for e in store.read_after(0, 100))
    assert stored == ["a1", "a2", "b1", "b2", "c1"]
    [rejected] = store.rejections(10)
    assert rejected.reason == "store_refused" and "cannot store this" in rejected.detail
    assert store.counters()[("web", "rejected:store_refused")] == 1
    assert store.counters()[("web", "received")] == 6


def test_an_unavailable_store_fails_the_whole_group(tmp_path: Path) -> None:
    store = RefusingStore(tmp_path / "log.db")
    store.down = True
    outcomes = asyncio.run(commit_together(store, request("a1"), request("b1")))
    assert all(isinstance(o, StoreUnavailable) for o in outcomes)
    store.down = False
    assert store.read_after(0, 10) == []


@pytest.mark.parametrize("n", [1, 3])
def test_a_lone_good_group_commits_once(tmp_path: Path, n: int) -> None:
    store = RefusingStore(tmp_path / "log.db")
    outcomes = asyncio.run(commit_together(store, *(request(f"m{i}") for i in range(n))))
    assert outcomes == [None] * n
    assert len(store.read_after(0, 10)) == n
