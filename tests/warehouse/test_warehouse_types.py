"""Column types: the first value decides, later values are cast when safe or discarded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from sluice.store.base import StoredEvent
from sluice.warehouse.base import ColumnType
from sluice.warehouse.naming import Namer
from sluice.warehouse.planner import Planner
from sluice.warehouse.types import BigInt, Unfit, fit, infer, parse_timestamp

C = ColumnType
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

INFER = [
    ("text", C.VARCHAR),
    ("2026-11-28T10:00:00.123Z", C.TIMESTAMP),
    ("2026-11-28T10:00:00+02:00", C.TIMESTAMP),
    ("2026-11-28 10:00:00", C.TIMESTAMP),
    ("2026-11-28", C.TIMESTAMP),
    ("20261128", C.VARCHAR),  # a number, not a date
    ("2026-13-01", C.VARCHAR),
    ("11/28/2026", C.VARCHAR),
    (True, C.BOOLEAN),
    (3, C.INTEGER),
    (3.5, C.FLOAT),
    (BigInt(2**64), C.VARCHAR),
]


@pytest.mark.parametrize(("value", "expected"), INFER, ids=[repr(v) for v, _ in INFER])
def test_a_new_column_takes_the_type_of_its_first_value(value: Any, expected: ColumnType) -> None:
    assert infer(value) is expected


def test_timestamps_become_aware_utc() -> None:
    assert parse_timestamp("2026-11-28T12:00:00+02:00") == datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert parse_timestamp("2026-11-28T10:00:00") == datetime(2026, 11, 28, 10, tzinfo=UTC)
    moment = parse_timestamp("2026-11-28T10:00:00.5Z")
    assert moment is not None and moment.tzinfo is UTC
    assert parse_timestamp("soon") is None


FITS = [
    (3, C.FLOAT, 3.0),
    (3.0, C.INTEGER, 3),
    (3, C.VARCHAR, "3"),
    (3.5, C.VARCHAR, "3.5"),
    (True, C.VARCHAR, "true"),
    (datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC), C.VARCHAR, "2026-01-02T03:04:05.006Z"),
    ("2026-01-02", C.TIMESTAMP, datetime(2026, 1, 2, tzinfo=UTC)),
    (BigInt(2**64), C.FLOAT, float(2**64)),
    (BigInt(2**64), C.VARCHAR, str(2**64)),
]


@pytest.mark.parametrize(
    ("value", "column_type", "expected"), FITS, ids=[f"{v!r}->{t}" for v, t, _ in FITS]
)
def test_safe_casts(value: Any, column_type: ColumnType, expected: Any) -> None:
    result = fit(value, column_type)
    assert result == expected and type(result) is type(expected)


UNFIT = [
    (3.5, C.INTEGER, "a fractional number in an integer column"),
    ("x", C.INTEGER, "text in an integer column"),
    (True, C.INTEGER, "a boolean in an integer column"),
    (BigInt(2**64), C.INTEGER, "integer out of 64-bit range"),
    ("x", C.FLOAT, "text in a float column"),
    (1, C.BOOLEAN, "an integer in a boolean column"),
    ("soon", C.TIMESTAMP, "not an ISO-8601 timestamp"),
    (7, C.TIMESTAMP, "an integer in a timestamp column"),
]


@pytest.mark.parametrize(
    ("value", "column_type", "reason"), UNFIT, ids=[f"{v!r}->{t}" for v, t, _ in UNFIT]
)
def test_unsafe_casts_say_why(value: Any, column_type: ColumnType, reason: str) -> None:
    with pytest.raises(Unfit) as caught:
        fit(value, column_type)
    assert caught.value.reason == reason


def events(*properties: dict[str, Any]) -> list[StoredEvent]:
    return [
        StoredEvent(
            seq,
            "web",
            f"m{seq}",
            "track",
            "Paid",
            0,
            msgspec.json.encode(
                {"type": "track", "event": "Paid", "messageId": f"m{seq}", "properties": props}
            ),
        )
        for seq, props in enumerate(properties, 1)
    ]


def test_conflicting_values_are_discarded_and_the_row_still_loads() -> None:
    planner = Planner("main", Namer(120), lambda schema: {})
    p = planner.plan(
        events(
            {"amount": 10, "note": "2026-01-01", "flag": True},
            {"amount": 10.5, "note": "later", "flag": "yes"},
            {"amount": 11.0, "note": "2026-02-01", "flag": False},
        ),
        NOW,
    )
    (batch,) = [b for b in p.batches if b.table == "paid"]
    assert batch.columns["amount"] is C.INTEGER  # the first value decides
    assert batch.columns["note"] is C.TIMESTAMP
    assert [r.get("amount") for r in batch.rows] == [10, None, 11]
    assert [r.get("flag") for r in batch.rows] == [True, None, False]
    assert [(d.table, d.column, d.row_id, d.value, d.reason) for d in p.discards] == [
        ("paid", "amount", "m2", "10.5", "a fractional number in an integer column"),
        ("paid", "note", "m2", "later", "not an ISO-8601 timestamp"),
        ("paid", "flag", "m2", "yes", "text in a boolean column"),
    ]


def test_existing_column_types_win_over_new_values() -> None:
    existing = {"paid": {"amount": C.FLOAT, "note": C.VARCHAR}}
    planner = Planner("main", Namer(120), lambda schema: existing if schema == "web" else {})
    p = planner.plan(events({"amount": 3, "note": "2026-01-01", "extra": 1}), NOW)
    (batch,) = [b for b in p.batches if b.table == "paid"]
    assert batch.rows[0]["amount"] == 3.0 and type(batch.rows[0]["amount"]) is float
    assert batch.rows[0]["note"] == "2026-01-01"
    new = {(t, c) for _, t, c, _ in p.new_columns}
    assert ("paid", "extra") in new and ("paid", "amount") not in new


def test_a_widened_standard_column_is_typed_per_table() -> None:
    # tracks.received_at was widened to varchar by hand; the event table still has a timestamp.
    existing = {"tracks": {"received_at": C.VARCHAR}, "paid": {"received_at": C.TIMESTAMP}}
    planner = Planner("main", Namer(120), lambda schema: existing)
    msg = {
        "type": "track",
        "event": "Paid",
        "messageId": "m1",
        "receivedAt": "2026-11-28T10:00:00Z",
    }
    p = planner.plan(
        [StoredEvent(1, "web", "m1", "track", "Paid", 0, msgspec.json.encode(msg))], NOW
    )
    by = {b.table: b for b in p.batches}
    assert by["tracks"].rows[0]["received_at"] == "2026-11-28T10:00:00.000Z"
    assert by["paid"].rows[0]["received_at"] == datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert p.discards == []


def test_offsets_are_converted_to_utc() -> None:
    tz = timezone(timedelta(hours=-5))
    assert fit("2026-11-28T05:00:00-05:00", C.TIMESTAMP) == datetime(2026, 11, 28, 5, tzinfo=tz)


def test_a_standard_value_that_does_not_fit_is_discarded_from_both_track_tables() -> None:
    existing = {"tracks": {"user_id": C.INTEGER}, "paid": {"user_id": C.INTEGER}}
    planner = Planner("main", Namer(120), lambda schema: existing)
    msg = {"type": "track", "event": "Paid", "messageId": "m1", "userId": "ada"}
    p = planner.plan(
        [StoredEvent(1, "web", "m1", "track", "Paid", 0, msgspec.json.encode(msg))], NOW
    )
    assert sorted((d.table, d.column, d.row_id, d.value) for d in p.discards) == [
        ("paid", "user_id", "m1", "ada"),
        ("tracks", "user_id", "m1", "ada"),
    ]
    assert all("user_id" not in b.rows[0] for b in p.batches)


def test_a_trait_that_does_not_fit_users_names_the_user() -> None:
    existing = {"users": {"age": C.INTEGER}}
    planner = Planner("main", Namer(120), lambda schema: existing)
    msg = {"type": "identify", "messageId": "m1", "userId": "ada", "traits": {"age": "old"}}
    p = planner.plan(
        [StoredEvent(1, "web", "m1", "identify", None, 0, msgspec.json.encode(msg))], NOW
    )
    assert [(d.table, d.row_id) for d in p.discards] == [("users", "ada")]


def test_integers_past_64_bits_never_reach_a_bigint_column() -> None:
    """Found by bench/fuzz.py: a page `name` of 2**63 made every load fail (pyarrow overflow)."""
    assert infer(2**63) is ColumnType.VARCHAR and infer(2**63 - 1) is ColumnType.INTEGER
    assert fit(2**63, ColumnType.VARCHAR) == str(2**63)
    for value in (2**63, -(2**63) - 1):
        with pytest.raises(Unfit, match="64-bit"):
            fit(value, ColumnType.INTEGER)
    with pytest.raises(Unfit, match="out of range"):
        fit(10**400, ColumnType.FLOAT)
