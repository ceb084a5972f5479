"""The identity graph against its oracles, on both backends: connected components without
limits, no limit ever broken with them, any step size and any crash giving the same tables,
rebuild equal to incremental, Segment's documented examples, and the merge-size guard."""

from __future__ import annotations

import logging
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from identity_kit import (
    SPACE,
    T0,
    ListLog,
    components,
    consume,
    log_of,
    no_limits,
    partition,
    payload,
    snapshot,
    wipe,
)

from sluice.identity.consumer import IdentityConsumer, reset
from sluice.identity.rules import Rules, TypeRule, rules_from
from sluice.identity.tables import IdentityDb

TYPES = ("user_id", "email", "anonymous_id", "phone")
ids = st.tuples(st.sampled_from(TYPES), st.sampled_from(["1", "2", "3", "4"]))
streams = st.lists(st.lists(ids, min_size=1, max_size=3, unique=True), min_size=1, max_size=40)
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
LIMITED = Rules(types={"anonymous_id": TypeRule(2, None, 3), "phone": TypeRule(1, None, 4)})
HOUR, DAY = 3_600_000, 86_400_000
# The same with a window on anonymous_id: "last seen" is kept for that type only, and read.
WINDOWED = Rules(types={"anonymous_id": TypeRule(2, 3 * HOUR, 3), "phone": TypeRule(1, None, 4)})


class Crash(Exception):
    pass


@SETTINGS
@given(streams)
def test_without_limits_profiles_are_the_connected_components(
    db: IdentityDb, stream: list[list[tuple[str, str]]]
) -> None:
    wipe(db)
    consume(log_of([payload(event) for event in stream]), db, no_limits(TYPES), step=7)
    assert partition(db) == components(stream)


@SETTINGS
@given(streams)
def test_with_limits_no_profile_breaks_one(
    db: IdentityDb, stream: list[list[tuple[str, str]]]
) -> None:
    wipe(db)
    consume(log_of([payload(event) for event in stream]), db, LIMITED, step=5)
    for group in partition(db):
        counts = Counter(id_type for id_type, _ in group)
        for id_type, n in counts.items():
            assert n <= LIMITED.rule(id_type).limit, (id_type, group)
    # Every event's identifiers are still all somewhere, or demoted (counted).
    seen = {key for event in stream for key in event}
    kept = {key for group in partition(db) for key in group}
    assert kept <= seen
    # The event's identifier of highest priority is never demoted: every event lands.
    best = {min(event, key=lambda k: (LIMITED.priority_key(k[0]), k[1])) for event in stream}
    assert best <= kept


@SETTINGS
@pytest.mark.parametrize("rules", [LIMITED, WINDOWED], ids=["limits", "windows"])
@given(streams, st.integers(1, 12), st.integers(1, 12), st.integers(0, 6))
def test_any_step_size_and_any_crash_give_the_same_tables(
    db: IdentityDb,
    rules: Rules,
    stream: list[list[tuple[str, str]]],
    first_step: int,
    second_step: int,
    crash_at: int,
) -> None:
    # An hour apart: with a window, "last seen" moves at nearly every event.
    bodies = [payload(event, traits={"n": i % 3}) for i, event in enumerate(stream)]
    log = log_of(bodies, step_ms=HOUR)
    wipe(db)
    consume(log, db, rules, step=1000)
    expected = snapshot(db)
    wipe(db)
    consumer = IdentityConsumer(log, db, SPACE, rules, step_events=first_step)  # type: ignore[arg-type]
    consumer.prepare()
    steps = 0

    def crash() -> None:
        if steps == crash_at:
            raise Crash

    with pytest.raises(Crash) if crash_at * first_step < len(stream) else _nothing():
        while consumer.step(on_commit=crash):
            steps += 1
    resumed = IdentityConsumer(log, db, SPACE, rules, step_events=second_step)  # type: ignore[arg-type]
    resumed.prepare()
    resumed.run_until_caught_up()
    assert snapshot(db) == expected


@SETTINGS
@given(streams)
def test_rebuild_equals_incremental(db: IdentityDb, stream: list[list[tuple[str, str]]]) -> None:
    log = log_of([payload(event, traits={"k": len(event)}) for event in stream])
    wipe(db)
    consume(log, db, LIMITED, step=3)
    incremental = snapshot(db)
    reset(db, SPACE, LIMITED)
    IdentityConsumer(log, db, SPACE, LIMITED, step_events=11).run_until_caught_up()  # type: ignore[arg-type]
    assert snapshot(db) == incremental


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# --- Segment's documented examples ------------------------------------------------------------
def test_anonymous_browsing_then_sign_up_is_one_profile(db: IdentityDb) -> None:
    log = log_of(
        [
            payload([("anonymous_id", "anon-1")], type="page"),
            payload([("anonymous_id", "anon-1")], type="track", event="Viewed"),
            payload([("anonymous_id", "anon-1"), ("user_id", "jane")], traits={"email": "j@x.io"}),
        ]
    )
    consume(log, db, rules_from(None))
    assert partition(db) == {
        frozenset({("anonymous_id", "anon-1"), ("user_id", "jane"), ("email", "j@x.io")})
    }
    events = db.execute("SELECT seq FROM profile_events ORDER BY seq")
    assert [row[0] for row in events] == [1, 2, 3]


def test_new_user_id_with_a_known_email_demotes_the_email(db: IdentityDb) -> None:
    log = log_of(
        [
            payload([("user_id", "abc123"), ("email", "jane@example1.com")]),
            payload([("user_id", "abc456"), ("email", "jane@example1.com")]),
        ]
    )
    consumer = consume(log, db, rules_from(None))
    assert partition(db) == {
        frozenset({("user_id", "abc123"), ("email", "jane@example1.com")}),
        frozenset({("user_id", "abc456")}),
    }
    assert db.execute("SELECT demoted, merges FROM identity_position") == [(1, 0)]
    assert consumer.space == SPACE


def test_a_shared_device_id_never_glues_its_users(db: IdentityDb) -> None:
    shared = [payload([("user_id", f"u{i}"), ("ios.id", "ipad-1")]) for i in range(6)]
    for body in shared:
        body.pop("context")
        body["context"] = {"device": {"type": "ios", "id": "ipad-1"}}
    consume(log_of(shared), db, rules_from(None))
    groups = partition(db)
    assert len(groups) == 6
    assert frozenset({("user_id", "u0"), ("ios.id", "ipad-1")}) in groups


def test_the_merge_size_guard_refuses_with_a_counter_and_a_log_line(
    db: IdentityDb, caplog: pytest.LogCaptureFixture
) -> None:
    rules = Rules(max_merge_identities=4)
    left = [payload([("user_id", "a"), ("anonymous_id", f"a{i}")]) for i in range(2)]
    right = [payload([("email", "b@x.io"), ("anonymous_id", f"b{i}")]) for i in range(2)]
    bridge = payload([("anonymous_id", "a0"), ("email", "b@x.io")])  # 6 identifiers: over 4
    with caplog.at_level(logging.WARNING, logger="sluice.identity.consumer"):
        consume(log_of([*left, *right, bridge]), db, rules)
    assert len(partition(db)) == 2
    assert db.execute("SELECT refused, merges FROM identity_position") == [(1, 0)]
    assert "merge refused by the merge-size guard" in caplog.text


def test_merges_say_why(db: IdentityDb) -> None:
    log = log_of(
        [
            payload([("anonymous_id", "x")]),
            payload([("email", "e@x.io")]),
            payload([("anonymous_id", "x"), ("email", "e@x.io")]),
        ]
    )
    consume(log, db, rules_from(None))
    [(loser, winner, seq, reason)] = db.execute("SELECT loser, winner, seq, reason FROM merges")
    assert seq == 3
    assert "email=e@x.io" in reason and "anonymous_id=x" in reason
    assert db.execute("SELECT merged_into FROM profiles WHERE profile_id = ?", [loser]) == [
        (winner,)
    ]


def test_traits_newest_by_event_time_wins_across_a_merge(db: IdentityDb) -> None:
    log = log_of(
        [
            payload(
                [("anonymous_id", "x")], traits={"plan": "pro"}, timestamp="2026-01-02T00:00:00Z"
            ),
            payload([("user_id", "u")], traits={"plan": "free"}, timestamp="2026-01-01T00:00:00Z"),
            payload([("anonymous_id", "x"), ("user_id", "u")]),
        ]
    )
    consume(log, db, rules_from(None))
    assert db.execute("SELECT value, seq FROM profile_traits WHERE key = 'plan'") == [('"pro"', 1)]


# --- windows and "last seen" ------------------------------------------------------------------
def _windowed_sign_up(seen_again: bool) -> ListLog:
    """Jane signs up on anon a1 (day 1); a1 is seen again or not (day 2); on day 3 she comes
    back as a2. The window (anonymous_id: 1 a day) counts a1 only if it was seen again."""
    again = [("anonymous_id", "a1")] if seen_again else [("anonymous_id", "someone-else")]
    return log_of(
        [
            payload([("user_id", "jane"), ("anonymous_id", "a1")]),
            payload(again, type="page"),
            payload([("user_id", "jane"), ("anonymous_id", "a2")]),
        ],
        step_ms=DAY,
    )


@pytest.mark.parametrize("seen_again", [True, False])
def test_a_window_counts_an_identifier_seen_again_within_it(
    db: IdentityDb, seen_again: bool
) -> None:
    rules = Rules(types={"anonymous_id": TypeRule(1, DAY, 3)})
    consume(_windowed_sign_up(seen_again), db, rules, step=1)
    jane = {key for group in partition(db) if ("user_id", "jane") in group for key in group}
    if seen_again:  # a1 seen on day 2 is within a day of day 3: a2 is one too many, demoted
        assert jane == {("user_id", "jane"), ("anonymous_id", "a1")}
        assert db.execute("SELECT demoted FROM identity_position") == [(1,)]
    else:  # a1 last seen on day 1: outside the window, so a2 joins
        assert jane == {("user_id", "jane"), ("anonymous_id", "a1"), ("anonymous_id", "a2")}
    [(last_seen,)] = db.execute("SELECT last_seen_ms FROM identities WHERE id_value = 'a1'")
    assert last_seen == T0 + (2 if seen_again else 1) * DAY


def test_a_returning_visitor_rewrites_no_row_of_the_graph(db: IdentityDb) -> None:
    """Without a window nothing reads "last seen": an event of a known visitor, days later,
    adds its event index row and changes no other row (nor the profile's `updated_ms`)."""
    first = [payload([("anonymous_id", "a1"), ("user_id", "u")], traits={})]
    log = log_of([*first, payload([("anonymous_id", "a1")], type="page")], step_ms=DAY)
    consume(ListLog(log.events[:1]), db, rules_from(None))
    before = snapshot(db)
    consume(log, db, rules_from(None))
    after = snapshot(db)
    for table in ("profiles", "identities", "profile_traits", "merges"):
        assert after[table] == before[table], table
    assert len(after["profile_events"]) == len(before["profile_events"]) + 1


def test_a_log_list_is_enough_for_the_consumer() -> None:
    assert ListLog().read_after(0, 10) == []
