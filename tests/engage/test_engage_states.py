"""Each computed trait kind, computed incrementally with merges, equals a naive recomputation
over the profile's events (its own and those of every profile merged into it), whatever the
stream, the merges and the step size (hypothesis)."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
from engage_kit import DAY, SPACE, T0, Rig, definitions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluice.engage import states
from sluice.identity.tables import SqliteIdentityDb
from sluice.store.sqlite import SqliteStore

KINDS = ["count", "sum", "avg", "min", "max", "most_frequent", "first", "last", "unique_list",
         "unique_count"]  # fmt: skip
TRAITS = [
    {"key": f"{kind}_{w or 'ever'}", "kind": kind, "event": "Bought",
     "where": "properties.ok = true", **({"property": "v"} if kind != "count" else {}),
     **({"within_days": w} if w else {})}
    for kind in KINDS for w in (None, 3)
]  # fmt: skip

values = st.one_of(st.integers(-5, 5), st.sampled_from(["a", "b", "c"]), st.none())
ids = st.sampled_from(["u1", "u2", "u3"])
anons = st.sampled_from(["a1", "a2", "a3", "a4"])


def _track(user: str | None, anon: str, name: str, v: Any, ok: bool, day: int) -> dict[str, Any]:
    body: dict[str, Any] = {"event": name, "properties": {"v": v, "ok": ok}, "anonymousId": anon}
    if user:
        body["userId"] = user
    return {"body": body, "day": day}


event = st.one_of(
    st.builds(
        _track,
        st.one_of(st.none(), ids),
        anons,
        st.sampled_from(["Bought", "Bought", "Viewed"]),
        values,
        st.booleans(),
        st.integers(0, 6),
    ),
    st.builds(
        lambda user, anon, day: {
            "body": {"type": "identify", "userId": user, "anonymousId": anon},
            "day": day,
        },
        ids,
        anons,
        st.integers(0, 6),
    ),
)


def naive(kind: str, events: list[tuple[int, int, Any]]) -> Any:
    """(received_at, seq, value) of the matching events → the trait, the obvious way."""
    if kind == "count":
        return len(events)
    present = [(t, s, v) for t, s, v in events if v is not None]
    numbers = [v for _, _, v in present if isinstance(v, int) and not isinstance(v, bool)]
    if kind in ("sum", "avg", "min", "max"):
        if not numbers:
            return None
        return {"sum": sum(numbers), "avg": sum(numbers) / len(numbers), "min": min(numbers),
                "max": max(numbers)}[kind]  # fmt: skip
    if not present:
        return None
    if kind == "first":
        return min(present, key=lambda e: (e[0], e[1]))[2]
    if kind == "last":
        return max(present, key=lambda e: (e[0], e[1]))[2]
    texts = [msgspec.json.encode(v).decode() for _, _, v in present]
    if kind == "most_frequent":
        counts = Counter(texts)
        best = min(counts, key=lambda t: (-counts[t], t))
        return msgspec.json.decode(best) if counts[best] >= 2 else None
    unique = sorted(set(texts))
    return len(unique) if kind == "unique_count" else [msgspec.json.decode(t) for t in unique]


def check(rig: Rig, clock: int) -> int:
    """Compares every live profile's traits with the naive ones; returns how many profiles."""
    log = {e.seq: e for e in rig.store.read_after(0, 10**6)}
    live = [
        r[0]
        for r in rig.db.execute(
            "SELECT profile_id FROM profiles WHERE collection = 'users' AND merged_into IS NULL"
        )
    ]
    defs = definitions(TRAITS)
    for profile in live:
        members = [profile] + [r[0] for r in rig.db.execute(
            "SELECT profile_id FROM profiles WHERE merged_into = ?", [profile])]  # fmt: skip
        seqs = sorted(
            r[0] for m in members
            for r in rig.db.execute("SELECT seq FROM profile_events WHERE profile_id = ?", [m])
        )  # fmt: skip
        saved = {
            key: states.load(text)
            for key, text in rig.db.execute(
                "SELECT key, state FROM engage_states WHERE profile_id = ?", [profile]
            )
        }
        for trait in defs.traits:
            window = trait.within_days
            matching = []
            for seq in seqs:
                body = msgspec.json.decode(log[seq].payload)
                at = log[seq].received_at_ms
                if body.get("event") != "Bought" or body["properties"]["ok"] is not True:
                    continue
                if window and at // DAY < clock // DAY - window + 1:
                    continue
                value = None if trait.kind == "count" else body["properties"]["v"]
                matching.append((at, seq, value))
            got = states.value(trait.kind, saved.get("ct:" + trait.key, {}), clock, window)
            want = naive(trait.kind, matching)
            assert got == want, (profile, trait.key, matching, got)
    return len(live)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event, min_size=1, max_size=40), st.integers(1, 7))
def test_incremental_equals_naive(stream: list[dict[str, Any]], step: int) -> None:
    with tempfile.TemporaryDirectory(prefix="engage-prop-") as tmp:
        rig = Rig(SqliteStore(Path(tmp) / "log.db"), SqliteIdentityDb(Path(tmp) / "id.db"))
        try:
            consumer = rig.engage(definitions(TRAITS), step_events=step)
            ordered = sorted(stream, key=lambda e: e["day"])
            half = len(ordered) // 2
            for part in (ordered[:half], ordered[half:]):
                for e in part:
                    rig.send(e["body"], at_ms=T0 + e["day"] * DAY + 1000)
                rig.run(consumer)  # the identity graph and engage interleave
            clock = consumer.db.execute(
                "SELECT clock_ms FROM engage_position WHERE space = ?", [SPACE]
            )[0][0]
            check(rig, clock)
        finally:
            rig.close()


parts = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 3 * DAY), values), min_size=0, max_size=12
)


@settings(max_examples=200, deadline=None)
@given(parts, parts, st.sampled_from(KINDS), st.sampled_from([None, 1, 3]))
def test_merged_state_equals_the_state_of_the_union(
    a: list[tuple[int, int, Any]], b: list[tuple[int, int, Any]], kind: str, window: int | None
) -> None:
    """Two profiles' states merged equal one state built from all their events, in any
    order; and their value equals the naive one over the events in the window."""

    def build(events: list[tuple[int, int, Any]], offset: int) -> states.State:
        state: states.State = {}
        for i, (_, at, v) in enumerate(events):
            part = states.partial(kind, v, T0 + at, offset + i)
            if part is not None:
                states.add(kind, state, states.bucket_of(T0 + at, window), part)
        return state

    merged = states.merge(kind, build(a, 0), build(b, 1000))
    assert merged == states.merge(kind, build(b, 1000), build(a, 0))
    union = build(a, 0)
    for i, (_, at, v) in enumerate(b):
        part = states.partial(kind, v, T0 + at, 1000 + i)
        if part is not None:
            states.add(kind, union, states.bucket_of(T0 + at, window), part)
    assert merged == union
    clock = T0 + 3 * DAY
    events = [(T0 + at, i, v) for i, (_, at, v) in enumerate(a)]
    events += [(T0 + at, 1000 + i, v) for i, (_, at, v) in enumerate(b)]
    oldest = states.first_day(clock, window)
    inside = [(t, s, None if kind == "count" else v) for t, s, v in events
              if window is None or t // DAY >= oldest]  # fmt: skip
    assert states.value(kind, merged, clock, window) == naive(kind, inside)
