"""The retry set and consumer states on every backend (store/retry_set.py): one SQL text, two
dialects, the same answers."""

from __future__ import annotations

import pytest
from store_kit import Backend

from sluice.store.base import Store
from sluice.store.base_delivery import (
    DeliveryCommit,
    NewParked,
    RetryDelivered,
    RetryKey,
    RetryReschedule,
    RetryRow,
)

NOW = 1_767_225_600_000


def row(
    seq: int,
    *,
    message_id: str | None = None,
    action: str = "send",
    state: str = "retrying",
    next_attempt: int = NOW,
    user_hash: int = 7,
    attempts: int = 1,
    destination: str = "hooks",
) -> RetryRow:
    return RetryRow(
        destination, seq, action, message_id or f"m{seq}", "web", "track", "Bought", NOW - 10,
        NOW - 10, user_hash, state, attempts, NOW - 5, next_attempt, NOW - 5, "HTTP 500",
        b'{"method":"POST"}', b'{"status":500}', b'{"messageId":"m%d"}' % seq,
    )  # fmt: skip


def commit(destination: str = "hooks", at: int = NOW, **changes: object) -> DeliveryCommit:
    return DeliveryCommit(
        destination, cursor=None, first_seq=0, last_seq=-1, finished_at_ms=at, attempts=1,
        **changes,  # type: ignore[arg-type]
    )  # fmt: skip


def test_failures_join_the_set_with_their_body_and_are_due_in_order(store: Store) -> None:
    store.commit_delivery(
        commit(retries=[row(3, next_attempt=NOW + 2000), row(1), row(2, next_attempt=NOW + 500)])
    )
    store.commit_delivery(commit("amp", retries=[row(1, destination="amp")]))
    due = store.due_retries("hooks", NOW + 1000, 10)
    assert [r.seq for r in due] == [1, 2]
    assert due[0].payload == b'{"messageId":"m1"}' and due[0].request == b'{"method":"POST"}'
    assert [r.seq for r in store.due_retries("hooks", NOW + 5000, 1)] == [1]
    assert store.next_retry_at("hooks") == NOW
    assert store.next_retry_at("other") is None
    assert store.retry_counts() == {"hooks": {"retrying": 3}, "amp": {"retrying": 1}}
    assert [(d, r.message_id) for d, r in store.retrying()] == [
        ("amp", "m1"), ("hooks", "m1"), ("hooks", "m2"), ("hooks", "m3"),
    ]  # fmt: skip
    assert store.oldest_retrying_seq() == 1
    assert store.failed_seqs_after("hooks", 1) == {2, 3}


def test_partitions_take_their_own_users(store: Store) -> None:
    store.commit_delivery(commit(retries=[row(i, user_hash=i) for i in range(1, 7)]))
    odd = store.due_retries("hooks", NOW, 10, (1, 2))
    assert [r.seq for r in odd] == [1, 3, 5]
    assert store.retry_users("hooks", (0, 2)) == {2: 1, 4: 1, 6: 1}


def test_reschedule_deliver_and_drop(store: Store) -> None:
    store.commit_delivery(commit(retries=[row(1), row(2), row(3)]))
    store.commit_delivery(
        commit(
            at=NOW + 100,
            retries_rescheduled=[
                RetryReschedule(1, "send", 2, NOW + 9000, "HTTP 503", b"{}", b'{"status":503}')
            ],
            retries_delivered=[RetryDelivered(2, "send", 2)],
            retries_dropped=[RetryKey(3, "send")],
            retrying_now=1,
        )
    )
    assert store.retry_counts() == {"hooks": {"retrying": 1}}
    [(_, again)] = store.retrying("hooks")
    assert (again.seq, again.attempts, again.next_attempt_ms, again.last_error) == (
        1, 2, NOW + 9000, "HTTP 503",
    )  # fmt: skip
    [(_, done)] = store.retries_for_message("m2")
    assert (done.state, done.attempts, done.updated_at_ms) == ("delivered", 2, NOW + 100)
    assert store.retries_for_message("m3") == []
    assert store.oldest_retrying_seq() == 1  # a delivered row no longer holds the log
    assert store.failed_seqs_after("hooks", 0) == {1, 2}  # a restart skips the delivered one too


def test_per_user_waiting_rows_are_promoted_one_event_at_a_time(store: Store) -> None:
    store.commit_delivery(
        commit(
            retries=[
                row(1, user_hash=1),
                row(2, user_hash=1, state="waiting", action=""),
                row(3, user_hash=1, state="waiting", action=""),
                row(4, user_hash=2),
            ]
        )
    )
    assert store.retry_users("hooks") == {1: 3, 2: 1}
    assert [r.seq for r in store.due_retries("hooks", NOW, 10)] == [1, 4]
    store.commit_delivery(commit(at=NOW + 50, retries_delivered=[RetryDelivered(1, "send", 2)]))
    due = store.due_retries("hooks", NOW + 50, 10)
    assert sorted((r.seq, r.state) for r in due) == [(2, "retrying"), (4, "retrying")]
    assert store.retry_counts()["hooks"] == {"retrying": 2, "waiting": 1}
    assert store.release_waiting("hooks", now_ms=NOW + 60) == 1
    assert store.retry_counts()["hooks"] == {"retrying": 3}


def test_operator_retry_now_and_park(store: Store) -> None:
    later = NOW + 3_600_000
    store.commit_delivery(
        commit(retries=[row(1, next_attempt=later), row(2, next_attempt=later), row(3)])
    )
    store.commit_delivery(commit("amp", retries=[row(1, destination="amp", next_attempt=later)]))
    assert [r.seq for r in store.due_retries("hooks", NOW, 10)] == [3]
    assert store.retry_now("hooks", ["m1"], now_ms=NOW) == 1
    assert [r.seq for r in store.due_retries("hooks", NOW, 10)] == [1, 3]
    assert store.retry_now("hooks", now_ms=NOW) == 3
    assert store.park_retrying("hooks", ["m2"], now_ms=NOW + 10) == 1
    [p] = store.parked("hooks")
    assert (p.message_id, p.seq, p.parked_at_ms, p.attempts) == ("m2", 2, NOW + 10, 1)
    assert p.reason == "parked_by_operator: HTTP 500"
    assert (p.request, p.response, p.payload) == (
        b'{"method":"POST"}', b'{"status":500}', b'{"messageId":"m2"}',
    )  # fmt: skip
    assert store.delivery_counters()[("hooks", "parked:parked_by_operator")] == 1
    assert store.park_retrying(None, now_ms=NOW + 20) == 3  # every destination's
    assert store.retry_counts() == {}
    assert len(store.parked(None)) == 4


def test_retry_now_after_an_outage_takes_only_what_failed_in_it(store: Store) -> None:
    later = NOW + 3_600_000
    store.commit_delivery(commit(at=NOW - 60_000, retries=[row(1, next_attempt=later)]))
    store.commit_delivery(commit(at=NOW, retries=[row(2, next_attempt=later)]))
    assert store.retry_now("hooks", now_ms=NOW, failed_since_ms=NOW - 1000) == 1
    assert [r.seq for r in store.due_retries("hooks", NOW, 10)] == [2]


def test_a_deleted_destinations_set_is_dropped(store: Store) -> None:
    store.commit_delivery(commit(retries=[row(1), row(2)]))
    store.commit_delivery(commit("amp", retries=[row(1, destination="amp")]))
    assert store.retry_destinations() == ["amp", "hooks"]
    assert store.drop_retry_set("hooks") == 2
    assert store.retry_destinations() == ["amp"]


def test_delivered_rows_are_pruned_after_a_week(backend: Backend) -> None:
    store = backend.open()
    week = 7 * 86_400_000
    store.commit_delivery(commit(at=NOW - week - 1, retries=[row(1)]))
    store.commit_delivery(commit(at=NOW - week, retries_delivered=[RetryDelivered(1, "send", 2)]))
    store.commit_delivery(commit(at=NOW + 1, retries=[row(2)]))  # pruning, once a minute
    assert store.retries_for_message("m1") == []


def test_a_parked_row_written_with_the_failure_is_found_by_a_restart(store: Store) -> None:
    parked = NewParked("m5", 5, "HTTP 400", 1, b"{}", b"{}", b"{}")
    store.commit_delivery(commit(parked=[parked]))
    assert store.failed_seqs_after("hooks", 4) == {5}
    assert store.failed_seqs_after("hooks", 5) == set()


def test_consumer_states(store: Store) -> None:
    assert store.consumer_states() == {}
    store.set_consumer_state("destination:hooks", "paused", "circuit open: HTTP 500", NOW)
    store.set_consumer_state("destination:hooks", "running", "", NOW + 1)
    store.set_consumer_state("destination:amp", "paused", "retry set full", NOW)
    assert store.consumer_states() == {
        "destination:hooks": ("running", "", NOW + 1),
        "destination:amp": ("paused", "retry set full", NOW),
    }


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        (("retrying",), {"retrying"}),
        (("retrying", "waiting"), {"retrying", "waiting"}),
        (("delivered",), {"delivered"}),
    ],
    ids=["retrying", "active", "delivered"],
)
def test_retrying_filters_by_state(
    store: Store, states: tuple[str, ...], expected: set[str]
) -> None:
    store.commit_delivery(
        commit(retries=[row(1), row(2, state="waiting", action=""), row(3, user_hash=9)])
    )
    store.commit_delivery(commit(retries_delivered=[RetryDelivered(3, "send", 2)]))
    assert {r.state for _, r in store.retrying("hooks", states=states)} == expected
