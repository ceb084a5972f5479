"""Profile ids: deterministic, Segment's shape, and sorted by the time of their first event."""

from __future__ import annotations

import itertools
import random

from sluice.identity.graph import ID_CHARS, profile_id


def test_ids_sort_by_creation_time_and_are_deterministic() -> None:
    rng = random.Random(7)
    times = sorted(rng.randrange(0, 4_000_000_000_000) for _ in range(2000))
    times = [t - t % 1000 for t in times]  # whole seconds: ties keep the digest's order
    ids = [profile_id("ws", "users", f"m{rng.random()}", t) for t in times]
    assert all(i.startswith("use_") and len(i) == 4 + ID_CHARS for i in ids)
    by_time = [i for i, (a, b) in enumerate(itertools.pairwise(times)) if a < b]
    assert all(ids[i] < ids[i + 1] for i in by_time)
    assert profile_id("ws", "users", "m1", 5_000) == profile_id("ws", "users", "m1", 5_999)
    assert profile_id("ws", "accounts", "m1", 5_000).startswith("acc_")
    assert profile_id("ws", "users", "m1", 5_000) != profile_id("ws", "users", "m1", 5_000, 3)
