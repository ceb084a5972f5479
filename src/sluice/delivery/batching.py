"""How a plan's mapped events are cut into the runs one request each carries.

Runs of at most the action's batch size and about its byte limit, a user's events kept in one
run when ordering is per user; and, once a destination has built its requests from a run, the
mapped events each request carries. Pure functions, kept apart from the engine that sends the
requests (sending.py).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import msgspec

from sluice.destinations.base import Mapped, OutRequest

UserKey = Callable[[Mapped], Hashable]


def mapped_chunks(
    items: list[Mapped], size: int, max_bytes: int, user_key: UserKey | None = None
) -> list[list[Mapped]]:
    """Runs of at most `size` events and (for batching actions) about `max_bytes` of JSON.

    With `user_key`, a user's events (in log order) are not split over two runs unless they
    outgrow one, so requests of different runs rarely share a user and can go at once."""
    if size == 1:
        return [[m] for m in items]
    if user_key is None:
        return _chunk_runs([[m] for m in items], size, max_bytes)
    groups: dict[Hashable, list[Mapped]] = {}
    for mapped in items:
        groups.setdefault(user_key(mapped), []).append(mapped)
    return _chunk_runs(list(groups.values()), size, max_bytes)


def _chunk_runs(runs: list[list[Mapped]], size: int, max_bytes: int) -> list[list[Mapped]]:
    """`mapped_chunks` of runs (a user's events each, or one event each) that start a new chunk
    rather than split a run that fits in one."""
    chunks: list[list[Mapped]] = []
    current: list[Mapped] = []
    weight = 0
    for run in runs:
        costs = [len(msgspec.json.encode(m.payload)) + 1 for m in run]
        if current and (len(current) + len(run) > size or weight + sum(costs) > max_bytes):
            chunks.append(current)
            current, weight = [], 0
        for mapped, cost in zip(run, costs, strict=True):
            if current and (len(current) >= size or weight + cost > max_bytes):
                chunks.append(current)
                current, weight = [], 0
            current.append(mapped)
            weight += cost
    if current:
        chunks.append(current)
    return chunks


def carried_events(request: OutRequest, chunk: list[Mapped], requests: int) -> list[Mapped]:
    """The mapped events a request carries: the whole chunk, or those its ids name (in order)."""
    if requests == 1 and len(request.message_ids) == len(chunk):
        return chunk
    by_id: dict[str, list[Mapped]] = {}
    for mapped in chunk:
        by_id.setdefault(mapped.message_id, []).append(mapped)
    carried = []
    for message_id in request.message_ids:
        candidates = by_id.get(message_id)
        if candidates:
            carried.append(candidates.pop(0) if len(candidates) > 1 else candidates[0])
    return carried
