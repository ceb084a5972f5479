"""Regulations, legs and suppressions in the store, and the log's erasure, on both backends."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest

from sluice.privacy.errors import RegulationInvalid
from sluice.privacy.regulation import RegulationRequest, create_regulation
from sluice.privacy.suppression import is_suppressed, suppression_key
from sluice.privacy.targets.base import Subject
from sluice.privacy.targets.log import LogTarget
from sluice.store.base import AppendBatch, NewEvent, Store
from sluice.store.base_delivery import DeliveryCommit, NewParked, RetryRow
from sluice.store.base_event_store import Rejection
from sluice.store.base_privacy import LegRow


def request(kind: str, *ids: str, subject: str = "USER_ID") -> RegulationRequest:
    return RegulationRequest(regulation_type=kind, subject_type=subject, subject_ids=list(ids))


def append(store: Store, *users: str, source: str = "web") -> None:
    batch = AppendBatch()
    for user in users:
        message_id = str(uuid.uuid4())
        body = {"type": "track", "event": "Bought", "userId": user, "messageId": message_id}
        batch.events.append(
            NewEvent(
                source, message_id, "track", "Bought", 1_700_000_000_000, msgspec.json.encode(body)
            )
        )
    store.append(batch)


def users_in_log(store: Store) -> list[str]:
    return [msgspec.json.decode(e.payload)["userId"] for e in store.read_after(0, 10_000)]


def test_a_regulation_is_recorded_and_its_legs_and_status_follow(store: Store) -> None:
    version = store.config_version()
    row = create_regulation(store, request("SUPPRESS_WITH_DELETE", "u1", "u2", "u1"))
    assert row.status == "INITIALIZED" and row.subject_ids == ("u1", "u2")
    assert store.config_version() > version  # collectors reload the suppressions
    assert store.suppressed_keys() == {suppression_key("u1"), suppression_key("u2")}
    assert is_suppressed("u1", store.suppressed_keys()) and not is_suppressed(
        "u3", store.suppressed_keys()
    )
    found = store.regulation(row.id)
    assert found == row
    assert [r.id for r in store.pending_regulations()] == [row.id]
    store.record_leg(LegRow(row.id, "log", "RETRYING", "wait", 3, 1))
    store.record_leg(LegRow(row.id, "log", "FINISHED", "done", 2, 2))
    assert store.regulation_legs(row.id) == [LegRow(row.id, "log", "FINISHED", "done", 5, 2)]
    store.set_regulation_status(row.id, "FINISHED", "1 leg(s) finished", 3, over=True)
    done = store.regulation(row.id)
    assert done is not None and done.status == "FINISHED" and done.subject_ids == ()
    assert done.subject_count == 2 and done.finished_at_ms == 3
    assert store.pending_regulations() == []
    assert store.regulation_counts() == {"FINISHED": 1}
    # The suppression outlives the deletion, until UNSUPPRESS.
    lift = create_regulation(store, request("UNSUPPRESS", "u1"))
    assert lift.status == "FINISHED"
    assert store.suppressed_keys() == {suppression_key("u2")}
    assert [r.id for r in store.regulations(limit=10)] == [lift.id, row.id]
    assert [r.id for r in store.regulations(status="INITIALIZED")] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (request("FORGET", "u1"), "regulationType"),
        (request("DELETE_ONLY", "u1", subject="EMAIL"), "subjectType"),
        (request("DELETE_ONLY", "u1", subject="ANONYMOUS_ID"), "subjectType"),
        (request("DELETE_ONLY", "u1", subject="OBJECT_ID"), "subjectType"),
        (request("DELETE_ONLY"), "subjectIds"),
        (request("DELETE_ONLY", *[f"u{i}" for i in range(5001)]), "subjectIds"),
        (request("DELETE_ONLY", "ok", ""), "subjectIds[1]"),
        (request("DELETE_ARCHIVE_ONLY", "a1", subject="ANONYMOUS_ID"), "regulationType"),
    ],
    ids=[
        "type",
        "subject-type",
        "anonymous",
        "object",
        "empty",
        "5001",
        "blank-id",
        "archive-unscoped",
    ],
)
def test_bad_requests_are_refused_naming_the_field(
    store: Store, body: RegulationRequest, field: str
) -> None:
    with pytest.raises(RegulationInvalid) as caught:
        create_regulation(store, body)
    assert caught.value.field == field
    assert store.regulations() == []


def test_the_log_leg_deletes_the_subjects_events_and_keeps_cursors_valid(store: Store) -> None:
    append(store, "gone", "kept", "gone", "kept")
    store.commit_cursor("destination:hook", 2)
    target = LogTarget(store)
    outcome = asyncio.run(target.delete("reg_1", Subject("USER_ID", ("gone",))))
    assert (outcome.status, outcome.removed) == ("FINISHED", 2)
    assert users_in_log(store) == ["kept", "kept"]
    # Positions are never handed out again: the next event lands past every old one.
    append(store, "new")
    assert store.read_after(2, 10)[-1].seq == 5
    assert [e.seq for e in store.read_after(2, 10)] == [4, 5]
    # Idempotent: running it again finds nothing.
    again = asyncio.run(target.delete("reg_1", Subject("USER_ID", ("gone",))))
    assert (again.status, again.removed) == ("FINISHED", 0)
    assert store.unit_stats()["privacy:reg_1"]["log_max_seq"] == 3


def test_the_newest_event_waits_on_sqlite_and_goes_on_postgresql(store: Store) -> None:
    append(store, "kept", "gone")
    target = LogTarget(store)
    outcome = asyncio.run(target.delete("reg_2", Subject("USER_ID", ("gone",))))
    if store.keeps_newest_event:
        assert outcome.status == "RETRYING" and "newest event" in outcome.detail
        assert users_in_log(store) == ["kept", "gone"]
        append(store, "other")
        outcome = asyncio.run(target.delete("reg_2", Subject("USER_ID", ("gone",))))
    assert outcome.status == "FINISHED"
    assert "gone" not in users_in_log(store)


def test_a_source_scoped_log_leg_leaves_other_sources(store: Store) -> None:
    append(store, "gone", "stays", source="web")
    append(store, "gone", "last", source="app")
    outcome = asyncio.run(LogTarget(store, "web").delete("r", Subject("USER_ID", ("gone",))))
    assert outcome.status == "FINISHED"
    assert [
        (e.source_id, msgspec.json.decode(e.payload)["userId"]) for e in store.read_after(0, 9)
    ] == [
        ("web", "stays"),
        ("app", "gone"),
        ("app", "last"),
    ]


def test_many_ids_are_matched_exactly(store: Store) -> None:
    ids = [f"user-{i}" for i in range(40)]
    append(store, "user-1", "user-10", "user-100", "user-39", "last")
    outcome = asyncio.run(LogTarget(store).delete("r", Subject("USER_ID", tuple(ids))))
    assert outcome.removed == 3
    assert users_in_log(store) == ["user-100", "last"]


def _retry(seq: int, user: str) -> RetryRow:
    body = msgspec.json.encode({"type": "track", "userId": user, "messageId": f"m{seq}"})
    return RetryRow(
        "hooks", seq, "send", f"m{seq}", "web", "track", "Bought", 1, 1, 7, "retrying", 1, 1, 1,
        1, "HTTP 500", b'{"method":"POST"}', b'{"status":500}', body,
    )  # fmt: skip


def test_the_log_leg_also_empties_retry_set_parked_and_rejections(store: Store) -> None:
    append(store, "gone", "kept", "last")
    parked = [
        NewParked(f"p{n}", n, "permanent_error", 1, b"{}", b"{}",
                  msgspec.json.encode({"type": "track", "userId": user}))
        for n, user in ((1, "gone"), (2, "kept"))
    ]  # fmt: skip
    store.commit_delivery(
        DeliveryCommit(
            "hooks",
            cursor=None,
            first_seq=0,
            last_seq=-1,
            finished_at_ms=1,
            attempts=1,
            retries=[_retry(1, "gone"), _retry(2, "kept")],
            parked=parked,
        )
    )
    batch = AppendBatch()
    for user in ("gone", "kept"):
        # A rejected item is kept as received, cut at the size limit: not always JSON.
        raw = b'{"type":"track","userId":"%s","properties":{"x":' % user.encode()
        batch.rejections.append(Rejection("web", "invalid_field", "cut", 1, raw))
    store.append(batch)
    outcome = asyncio.run(LogTarget(store).delete("r", Subject("USER_ID", ("gone",))))
    assert (outcome.status, outcome.removed) == ("FINISHED", 4)
    assert [r.message_id for _, r in store.retrying()] == ["m2"]
    assert [p.message_id for p in store.parked()] == ["p2"]
    assert [b"kept" in r.payload for r in store.rejections(10)] == [True]
    assert users_in_log(store) == ["kept", "last"]
