"""The store protocol, run against every backend: the log, rejections, counters, cursors, the
control plane, delivery state, leases and trimming. Backend-specific behaviour lives in
test_sqlite_store.py and test_postgres_store.py."""

from __future__ import annotations

import dataclasses
import time

import msgspec
import pytest
from store_kit import Backend, batch, event, now_ms, source_counters, source_object

from sluice.store.base import AppendBatch, ConfigObject, Store
from sluice.store.base_delivery import DeliveryCommit, NewParked
from sluice.store.base_event_store import EventQuery, Rejection, SourceRow


# --- log ---------------------------------------------------------------------------------------
def test_empty_store(store: Store) -> None:
    assert store.last_seq() == 0
    assert store.read_after(0, 10) == []
    assert store.newest(EventQuery()) == []
    assert store.counters() == {}
    assert store.rejections(10) == []
    assert store.sources() == []


def test_append_and_read_back_in_order(store: Store) -> None:
    result = store.append(batch(event("a"), event("b"), event("c")))
    assert (result.stored, result.duplicates) == (3, 0)
    events = store.read_after(0, 10)
    assert [e.message_id for e in events] == ["a", "b", "c"]
    assert [e.seq for e in events] == [1, 2, 3]
    assert store.last_seq() == 3
    first = events[0]
    assert (first.source_id, first.type, first.event) == ("web", "track", "Clicked")
    assert msgspec.json.decode(first.payload)["messageId"] == "a"
    assert [e.message_id for e in store.read_after(1, 1)] == ["b"]
    assert store.read_after(3, 10) == []


def test_group_order_is_kept_whatever_the_ids(store: Store) -> None:
    """Seqs follow the order of the group, not of the ids (PostgreSQL sorts ids to dedupe)."""
    ids = ["m9", "m1", "z", "a", "m5"]
    store.append(batch(*(event(i) for i in ids)))
    assert [e.message_id for e in store.read_after(0, 10)] == ids


def test_append_counts_stored_and_duplicates(store: Store) -> None:
    store.append(batch(event("a"), event("a"), counters={("web", "received"): 2}))
    store.append(batch(event("a"), event("b", source_id="app")))
    assert source_counters(store) == {
        ("web", "received"): 2,
        ("web", "stored"): 1,
        ("web", "stored:track"): 1,  # by call type, for metrics
        ("web", "duplicates"): 2,
        ("app", "stored"): 1,
        ("app", "stored:track"): 1,
    }
    assert [e.message_id for e in store.read_after(0, 10)] == ["a", "b"]


def test_duplicates_are_dropped_only_within_the_window(backend: Backend) -> None:
    store = backend.open(dedupe_window_s=60)
    now = now_ms()
    store.append(batch(event("old", at=now - 3_600_000), event("recent", at=now - 30_000)))
    result = store.append(batch(event("old", at=now), event("recent", at=now)))
    assert (result.stored, result.duplicates) == (1, 1)
    assert [e.message_id for e in store.read_after(0, 10)] == ["old", "recent", "old"]


def test_newest_filters(store: Store) -> None:
    store.append(
        batch(
            event("1", source_id="web", type="track", name="Signed Up"),
            event("2", source_id="app", type="track", name="Signed Up"),
            event("3", source_id="web", type="identify", name=None),
            event("4", source_id="web", type="track", name="Logged In"),
            event("5", source_id="web", type="track", name="Signed Up"),
        )
    )

    def ids(**kwargs: object) -> list[str]:
        return [e.message_id for e in store.newest(EventQuery(**kwargs))]  # type: ignore[arg-type]

    assert ids() == ["5", "4", "3", "2", "1"]
    assert ids(limit=2) == ["5", "4"]
    assert ids(source_id="app") == ["2"]
    assert ids(type="identify") == ["3"]
    assert ids(event="Signed Up") == ["5", "2", "1"]
    assert ids(source_id="web", event="Signed Up") == ["5", "1"]
    assert ids(after_seq=3) == ["5", "4"]
    assert ids(source_id="nobody") == []


def test_rejections_are_kept_newest_first(store: Store) -> None:
    at = now_ms()
    store.append(
        AppendBatch(
            rejections=[
                Rejection("web", "missing_event", "track requires event", at, b'{"a":1}'),
                Rejection("app", "invalid_type", "unknown type", at, b'{"b":2}'),
            ],
            counters={("web", "rejected:missing_event"): 1},
        )
    )
    everything = store.rejections(10)
    assert [(r.source_id, r.reason) for r in everything] == [
        ("app", "invalid_type"),
        ("web", "missing_event"),
    ]
    web = store.rejections(10, source_id="web")
    assert len(web) == 1
    assert (web[0].detail, web[0].received_at_ms, web[0].payload) == (
        "track requires event",
        at,
        b'{"a":1}',
    )
    assert len(store.rejections(1)) == 1
    assert source_counters(store) == {("web", "rejected:missing_event"): 1}
    assert store.last_seq() == 0


def test_old_rejections_are_trimmed(backend: Backend) -> None:
    keep = 10
    store = backend.open(keep_rejections=keep)
    for i in range(250):
        store.append(AppendBatch(rejections=[Rejection("web", "r", str(i), 0, b"{}")]))
    kept = store.rejections(1000)
    assert kept[0].detail == "249"
    assert keep <= len(kept) < keep + 100


def test_append_is_atomic(backend: Backend) -> None:
    """A failing append leaves no event and no rejection behind, and its ids can be retried."""
    store = backend.open()
    good = Rejection("web", "invalid_type", "", 0, b"{}")
    bad = Rejection("web", None, "", 0, b"")  # type: ignore[arg-type]  # NOT NULL violated
    failing = batch(event("a"), counters={("web", "received"): 1})
    failing.rejections.extend([good, bad])
    with pytest.raises(backend.integrity_error):
        store.append(failing)
    assert store.last_seq() == 0
    assert store.rejections(10) == []
    assert store.append(batch(event("a"))).stored == 1


def test_counters_of_this_process_are_visible_before_they_are_written(backend: Backend) -> None:
    """Counters are written behind the events; `counters()` includes the ones not yet written,
    and closing the store writes them."""
    writer = backend.open()
    reader = backend.open()
    for _ in range(5):
        writer.append(batch(event(f"m{time.monotonic_ns()}"), counters={("web", "received"): 1}))
    assert writer.counters()[("web", "received")] == 5
    assert reader.counters().get(("web", "received"), 0) <= 5
    backend.close(writer)
    assert reader.counters()[("web", "received")] == 5
    assert reader.counters()[("web", "stored")] == 5


def test_counters_are_written_when_the_writer_is_idle(backend: Backend) -> None:
    """An append with no events (the collector's idle tick) writes the held-back counters."""
    writer = backend.open()
    reader = backend.open()
    writer.append(batch(event("a"), counters={("web", "received"): 1}))
    writer.append(batch(event("b"), counters={("web", "received"): 1}))
    writer.append(AppendBatch())
    assert reader.counters()[("web", "received")] == 2


def test_data_survives_reopening(backend: Backend) -> None:
    first = backend.open()
    first.append(batch(event("a"), counters={("web", "received"): 1}))
    first.commit_cursor("amp", 1)
    first.put_config(source_object("web", ["wk_1"]))
    backend.close(first)
    second = backend.open()
    assert [e.message_id for e in second.read_after(0, 10)] == ["a"]
    assert second.counters()[("web", "received")] == 1
    assert second.get_cursor("amp") == 1
    assert [s.id for s in second.sources()] == ["web"]
    assert second.append(batch(event("a"))).duplicates == 1  # the window outlives the process


# --- cursors -----------------------------------------------------------------------------------
def test_cursors(store: Store) -> None:
    assert store.get_cursor("amp") == 0
    assert store.find_cursor("amp") is None
    store.commit_cursor("amp", 5)
    store.commit_cursor("s3", 2)
    store.commit_cursor("amp", 7)
    assert (store.get_cursor("amp"), store.get_cursor("s3")) == (7, 2)
    assert store.find_cursor("s3") == 2
    assert store.cursors() == {"amp": 7, "s3": 2}


# --- control plane -----------------------------------------------------------------------------
def test_config_version_changes_with_every_write(store: Store) -> None:
    v0 = store.config_version()
    store.put_config(source_object("web", ["wk_1"]))
    v1 = store.config_version()
    store.replace_config([source_object("app", ["wk_2"])])
    v2 = store.config_version()
    assert len({v0, v1, v2}) == 3


def test_put_and_list_config(store: Store) -> None:
    store.put_config(source_object("web", ["wk_1"]))
    store.put_config(ConfigObject("destination", "amp", b'{"type":"amplitude"}'))
    store.put_config(source_object("web", ["wk_1", "wk_1b"]))  # an update, not a second row
    assert [(o.kind, o.id) for o in store.list_config()] == [
        ("destination", "amp"),
        ("source", "web"),
    ]
    assert [o.id for o in store.list_config("source")] == ["web"]
    assert store.list_config("destination")[0].body == b'{"type":"amplitude"}'
    assert store.sources() == [SourceRow("web", "Web", ("wk_1", "wk_1b"), True)]


def test_replace_config_holds_exactly_the_given_objects(store: Store) -> None:
    store.put_config(source_object("web", ["wk_1"]))
    store.put_config(ConfigObject("destination", "amp", b"{}"))
    store.replace_config([source_object("app", ["wk_2"], enabled=False)])
    assert [(o.kind, o.id) for o in store.list_config()] == [("source", "app")]
    assert store.sources() == [SourceRow("app", "App", ("wk_2",), False)]


def test_replace_config_is_atomic(backend: Backend) -> None:
    store = backend.open()
    store.put_config(source_object("web", ["wk_1"]))
    version = store.config_version()
    broken = ConfigObject("source", None, b"{}")  # type: ignore[arg-type]
    with pytest.raises(backend.integrity_error):
        store.replace_config([source_object("app", ["wk_2"]), broken])
    assert [o.id for o in store.list_config()] == ["web"]
    assert store.config_version() == version


# --- delivery state ----------------------------------------------------------------------------
def parked(message_id: str, seq: int, reason: str = "http_400") -> NewParked:
    return NewParked(message_id, seq, reason, 1, b'{"method":"POST"}', b'{"status":400}', b"{}")


def test_commit_delivery_writes_one_step(store: Store) -> None:
    store.commit_delivery(
        DeliveryCommit(
            destination="hooks",
            cursor=2,
            first_seq=1,
            last_seq=2,
            finished_at_ms=5000,
            attempts=2,
            counters={"delivered": 1, "parked:http_400": 1, "filtered:x": 0},
            latencies_ms=[3, 4, 700, 10**9],
            parked=[parked("b", 2)],
        )
    )
    assert store.get_cursor("destination:hooks") == 2
    assert store.delivery_step_for("hooks", 1) == (5000, 2)
    assert store.delivery_step_for("hooks", 2) == (5000, 2)
    assert store.delivery_step_for("hooks", 3) is None
    assert store.delivery_step_for("other", 1) is None
    assert store.delivery_counters() == {("hooks", "delivered"): 1, ("hooks", "parked:http_400"): 1}
    assert store.latency_histogram("hooks") == {5: 2, 1_000: 1, 144_000_000: 1}
    [p] = store.parked("hooks")
    assert (p.destination, p.message_id, p.seq, p.parked_at_ms, p.state) == (
        "hooks",
        "b",
        2,
        5000,
        "parked",
    )
    assert (p.request, p.response, p.payload) == (b'{"method":"POST"}', b'{"status":400}', b"{}")


def test_commit_delivery_adds_up_and_names_its_cursor(store: Store) -> None:
    for first, last in ((1, 5), (6, 9)):
        store.commit_delivery(
            DeliveryCommit(
                destination="hooks",
                cursor=last,
                first_seq=first,
                last_seq=last,
                finished_at_ms=last * 1000,
                attempts=1,
                counters={"delivered": last - first + 1},
                latencies_ms=[5],
                cursor_name="destination:hooks#1/2",
            )
        )
    store.commit_delivery(
        DeliveryCommit("hooks", cursor=None, first_seq=0, last_seq=0, finished_at_ms=0, attempts=0)
    )
    assert store.cursors() == {"destination:hooks#1/2": 9}
    assert store.delivery_counters() == {("hooks", "delivered"): 9}
    assert store.latency_histogram("hooks") == {5: 2}
    assert store.delivery_step_for("hooks", 7) == (9000, 1)


MINUTE = 1_767_225_600_000  # 2026-01-01 00:00 UTC: the start of a timeline bucket
DAY_MS = 86_400_000


def counted(destination: str, at_ms: int, counters: dict[str, int]) -> DeliveryCommit:
    """A step that only counts (no cursor, no log range), finished at `at_ms`."""
    return DeliveryCommit(
        destination, cursor=None, first_seq=0, last_seq=-1, finished_at_ms=at_ms, attempts=1,
        counters=counters,
    )  # fmt: skip


def test_timeline_sums_steps_into_the_minute_they_finished_in(store: Store) -> None:
    store.commit_delivery(
        counted("hooks", MINUTE + 1, {"delivered": 3, "filtered:a": 1, "filtered:b": 2})
    )
    store.commit_delivery(
        counted("hooks", MINUTE + 59_999, {"delivered": 2, "parked:http_400": 1, "parked:x": 1})
    )
    store.commit_delivery(counted("hooks", MINUTE + 60_000, {"delivered": 1, "resent": 1}))
    store.commit_delivery(counted("amp", MINUTE, {"delivered": 9}))
    # Nothing the timeline counts: no bucket (a resend that sent nothing, a step of zeros).
    store.commit_delivery(counted("hooks", MINUTE + 180_000, {"resent": 0, "delivered": 0}))
    zero = {"delivered": 0, "filtered": 0, "parked": 0, "retrying": 0}
    assert store.delivery_timeline("hooks", MINUTE) == [
        (MINUTE, {**zero, "delivered": 5, "filtered": 3, "parked": 2}),
        (MINUTE + 60_000, {**zero, "delivered": 1}),
    ]
    assert store.delivery_timeline("amp", 0) == [(MINUTE, {**zero, "delivered": 9})]
    assert store.delivery_timeline("other", 0) == []


def test_timeline_keeps_the_most_events_retrying_in_a_minute(store: Store) -> None:
    for at, size in ((1000, 2), (2000, 3), (3000, 1)):  # fewer later: the most stays
        store.commit_delivery(dataclasses.replace(counted("hooks", MINUTE + at, {}),
                                                  retrying_now=size))  # fmt: skip
    store.commit_delivery(counted("hooks", MINUTE + 4000, {"delivered": 2}))
    store.commit_delivery(
        dataclasses.replace(counted("hooks", MINUTE + 61_000, {}), retrying_now=1)
    )
    store.commit_delivery(counted("hooks", MINUTE + 121_000, {}))  # nothing: no bucket
    assert store.delivery_timeline("hooks", MINUTE) == [
        (MINUTE, {"delivered": 2, "filtered": 0, "parked": 0, "retrying": 3}),
        (MINUTE + 60_000, {"delivered": 0, "filtered": 0, "parked": 0, "retrying": 1}),
    ]


def test_timeline_since_starts_at_the_minute_holding_it(store: Store) -> None:
    for i in range(5):
        store.commit_delivery(counted("hooks", MINUTE + i * 60_000 + 30_000, {"delivered": i + 1}))
    since = store.delivery_timeline("hooks", MINUTE + 2 * 60_000 + 59_999)
    assert [(minute, counts["delivered"]) for minute, counts in since] == [
        (MINUTE + 2 * 60_000, 3),
        (MINUTE + 3 * 60_000, 4),
        (MINUTE + 4 * 60_000, 5),
    ]
    assert store.delivery_timeline("hooks", MINUTE + 5 * 60_000) == []


def test_timeline_drops_buckets_older_than_a_week(backend: Backend) -> None:
    store = backend.open()
    week_old = MINUTE - 7 * DAY_MS
    for at in (MINUTE - 8 * DAY_MS, week_old - 60_000, week_old, week_old + 60_000):
        store.commit_delivery(counted("hooks", at, {"delivered": 1}))
    store.commit_delivery(counted("amp", MINUTE - 8 * DAY_MS, {"delivered": 1}))
    store.commit_delivery(counted("hooks", MINUTE, {"delivered": 1}))  # a new minute: pruned
    minutes = [minute for minute, _ in store.delivery_timeline("hooks", 0)]
    assert minutes == [week_old, week_old + 60_000, MINUTE]
    assert len(store.delivery_timeline("amp", 0)) == 1  # pruned when amp writes, not before
    # Another process (or node) prunes as well, on its first write.
    other = backend.open()
    other.commit_delivery(counted("hooks", MINUTE + 120_000, {"delivered": 1}))
    minutes = [minute for minute, _ in store.delivery_timeline("hooks", 0)]
    assert minutes == [MINUTE, MINUTE + 120_000]


def test_parked_events_retry_and_repark(store: Store) -> None:
    store.commit_delivery(
        DeliveryCommit(
            "hooks", cursor=3, first_seq=1, last_seq=3, finished_at_ms=1, attempts=1,
            parked=[parked("a", 1), parked("b", 2), parked("c", 3)],
        )
    )  # fmt: skip
    store.commit_delivery(
        DeliveryCommit(
            "amp", cursor=1, first_seq=1, last_seq=1, finished_at_ms=1, attempts=1,
            parked=[parked("a", 1)],
        )
    )  # fmt: skip
    a, _, c = store.parked("hooks")
    assert [p.message_id for p in store.parked_for_message("a")] == ["a", "a"]
    assert store.request_parked_retry("hooks", [a.id, c.id]) == 2
    assert store.request_parked_retry("hooks", [a.id]) == 0  # no longer parked
    assert [p.message_id for p in store.parked("hooks")] == ["b"]
    assert [p.id for p in store.parked("hooks", ("retry_requested",))] == [a.id, c.id]
    assert store.request_parked_retry(None) == 2  # everything still parked: b and amp's a
    assert store.parked(states=("parked",)) == []
    assert len(store.parked(states=("parked", "retry_requested"), limit=3)) == 3

    store.repark(a.id, "http_401", 5, b'{"again":1}', b'{"status":401}')
    store.commit_delivery(
        DeliveryCommit(
            "hooks", cursor=None, first_seq=0, last_seq=0, finished_at_ms=2, attempts=1,
            resent_parked_ids=[c.id],
        )
    )  # fmt: skip
    again = {p.id: p for p in store.parked_for_message("a") + store.parked_for_message("c")}
    reparked = again[a.id]
    assert (reparked.state, reparked.reason, reparked.attempts) == ("parked", "http_401", 5)
    assert (again[a.id].request, again[a.id].response) == (b'{"again":1}', b'{"status":401}')
    assert again[c.id].state == "resent"


def test_find_events_scans_the_log(store: Store) -> None:
    store.append(batch(event("a"), event("b")))
    store.append(batch(event("a", at=now_ms() + 10**10)))  # past the window: stored again
    assert [(e.seq, e.message_id) for e in store.find_events("a")] == [(1, "a"), (3, "a")]
    assert store.find_events("nope") == []


# --- leases ------------------------------------------------------------------------------------
def test_leases_expire_and_are_taken_over(store: Store) -> None:
    before = now_ms()
    assert store.claim_lease("destination:hooks", "w1", 0.4)
    assert store.claim_lease("destination:hooks", "w1", 0.4)  # renewal
    assert not store.claim_lease("destination:hooks", "w2", 0.4)
    assert store.claim_lease("archive", "w2", 30)
    [archive, hooks] = store.leases()
    assert (hooks.name, hooks.holder) == ("destination:hooks", "w1")
    # The store's clock is this machine's here, so the expiry is about now + ttl.
    assert before + 300 <= hooks.expires_at_ms <= now_ms() + 500
    assert archive.holder == "w2"
    time.sleep(0.5)
    assert store.claim_lease("destination:hooks", "w2", 30)  # expired: taken over
    assert not store.claim_lease("destination:hooks", "w1", 30)
    store.release_lease("destination:hooks", "w1")  # not the holder: nothing happens
    assert [lease.holder for lease in store.leases()] == ["w2", "w2"]
    store.release_lease("destination:hooks", "w2")
    assert [lease.name for lease in store.leases()] == ["archive"]
    assert store.claim_lease("destination:hooks", "w1", 30)


def test_renewal_extends_a_lease(store: Store) -> None:
    assert store.claim_lease("warehouse:main", "w1", 0.4)
    time.sleep(0.25)
    assert store.claim_lease("warehouse:main", "w1", 0.4)
    time.sleep(0.25)  # past the first expiry, within the renewed one
    assert not store.claim_lease("warehouse:main", "w2", 0.4)


# --- retention ---------------------------------------------------------------------------------
def test_trim_keeps_everything_above_the_cut_and_counts_what_it_removed(store: Store) -> None:
    old, new = now_ms() - 10 * 86_400_000, now_ms()
    store.append(batch(*(event(f"o{i}", at=old) for i in range(5))))
    store.append(batch(*(event(f"n{i}", at=new) for i in range(5))))
    assert store.trim_log(0, new + 1) == 0
    assert store.trim_log(8, old) == 0  # nothing received before the cut-off
    removed = store.trim_log(8, new - 1000)
    left = store.read_after(0, 100)
    assert len(left) == 10 - removed
    # The backends differ in how much they remove (rows or whole partitions), never in this:
    assert {e.message_id for e in left} >= {f"n{i}" for i in range(5)}
    assert store.last_seq() == 10


def test_positions_are_never_handed_out_twice_after_a_trim_of_everything(store: Store) -> None:
    """An idle log whose every event passed retention: the next event still gets the next
    position, not 1 again (consumers would skip it until it passed their old cursors)."""
    old = now_ms() - 10 * 86_400_000
    store.append(batch(*(event(f"o{i}", at=old) for i in range(5))))
    store.trim_log(10**9, now_ms())
    store.append(batch(event("after")))
    (after,) = [e for e in store.read_after(0, 100) if e.message_id == "after"]
    assert after.seq == 6
    assert [e.message_id for e in store.read_after(5, 100)] == ["after"]


def test_oauth_tokens_are_kept_per_destination(store: Store) -> None:
    assert store.oauth_tokens("crm") is None
    store.save_oauth_tokens("crm", "access-1", "refresh-1", 1_000)
    store.save_oauth_tokens("crm", "access-2", None, 2_000)  # no new refresh token: keep the old
    assert store.oauth_tokens("crm") == ("access-2", "refresh-1")
    store.save_oauth_tokens("crm", "access-3", "refresh-2", 3_000)
    assert store.oauth_tokens("crm") == ("access-3", "refresh-2")
    assert store.oauth_tokens("other") is None
    store.forget_oauth_tokens("crm")
    assert store.oauth_tokens("crm") is None
