"""ISO-8601 in every variant clients emit, to epoch ms and back to `YYYY-MM-DDTHH:MM:SS.mmmZ`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sluice.spec.timestamps import format_ms, parse_ms

# 2024-01-02T03:04:05Z
BASE = 1_704_164_645_000

PARSE_CASES = [
    ("2024-01-02T03:04:05Z", BASE, "Z, no fraction"),
    ("2024-01-02T03:04:05.123Z", BASE + 123, "Z, milliseconds"),
    ("2024-01-02T03:04:05.1Z", BASE + 100, "Z, tenths"),
    ("2024-01-02T03:04:05.123456Z", BASE + 123, "Z, microseconds"),
    ("2024-01-02T03:04:05.123456789Z", BASE + 123, "Z, nanoseconds"),
    ("2024-01-02T03:04:05.999999Z", BASE + 999, "microseconds truncate, not round"),
    ("2024-01-02T03:04:05+00:00", BASE, "+00:00"),
    ("2024-01-02T03:04:05.123+00:00", BASE + 123, "+00:00 milliseconds (analytics-python)"),
    ("2024-01-02T03:04:05.123-00:00", BASE + 123, "-00:00"),
    ("2024-01-02T05:34:05.123+02:30", BASE + 123, "positive offset"),
    ("2024-01-01T22:04:05.123-05:00", BASE + 123, "negative offset, previous day"),
    ("2024-01-02T08:34:05+0530", BASE, "offset without colon"),
    ("2024-01-02T03:04:05", BASE, "naive means UTC"),
    ("2024-01-02 03:04:05", BASE, "space separator"),
    ("2024-01-02T03:04:05.123456+00:00", BASE + 123, "python isoformat()"),
    ("2024-01-02", BASE - (3 * 3600 + 4 * 60 + 5) * 1000, "date only"),
    ("20240102T030405Z", BASE, "basic format"),
    ("20240102T030405.123Z", BASE + 123, "basic format with fraction"),
    ("2024-01-02T03:04:05,123Z", BASE + 123, "comma as decimal mark"),
    ("1970-01-01T00:00:00.000Z", 0, "epoch"),
    ("1969-12-31T23:59:59.999Z", -1, "before the epoch"),
    ("2000-02-29T12:00:00Z", 951_825_600_000, "leap day"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [(text, ms) for text, ms, _ in PARSE_CASES],
    ids=[label for _, _, label in PARSE_CASES],
)
def test_parse_ms(text: str, expected: int) -> None:
    assert parse_ms(text) == expected


GARBAGE = [
    ("", "empty"),
    ("yesterday", "words"),
    ("2024", "year only (too short)"),
    ("2024-13-01T00:00:00Z", "month 13"),
    ("2024-02-30T00:00:00Z", "February 30"),
    ("2024-01-02T25:00:00Z", "hour 25"),
    ("2024-01-02T03:04:05+25:00", "offset out of range"),
    ("2024-01-02T03:04:05Zjunk", "trailing junk"),
    ("x" * 100, "very long"),
    ("2024-01-02T03:04:05.123Z" + " " * 60, "over 64 characters"),
]


@pytest.mark.parametrize("text", [t for t, _ in GARBAGE], ids=[label for _, label in GARBAGE])
def test_parse_ms_returns_none_for_garbage(text: str) -> None:
    assert parse_ms(text) is None


@pytest.mark.parametrize(
    "value",
    [None, 1_704_164_645_000, 1_704_164_645.5, True, ["2024-01-02"], {"t": 1}, b"2024-01-02"],
    ids=["none", "epoch-int", "epoch-float", "bool", "list", "dict", "bytes"],
)
def test_parse_ms_returns_none_for_non_strings(value: object) -> None:
    assert parse_ms(value) is None


FORMAT_CASES = [
    (BASE, "2024-01-02T03:04:05.000Z", "whole second"),
    (BASE + 7, "2024-01-02T03:04:05.007Z", "padded milliseconds"),
    (BASE + 999, "2024-01-02T03:04:05.999Z", "last millisecond"),
    (0, "1970-01-01T00:00:00.000Z", "epoch"),
    (-1, "1969-12-31T23:59:59.999Z", "before the epoch"),
    (951_825_600_000, "2000-02-29T12:00:00.000Z", "leap day"),
    (253_402_300_799_999, "9999-12-31T23:59:59.999Z", "year 9999"),
]


@pytest.mark.parametrize(
    ("ms", "expected"),
    [(ms, text) for ms, text, _ in FORMAT_CASES],
    ids=[label for _, _, label in FORMAT_CASES],
)
def test_format_ms(ms: int, expected: str) -> None:
    assert format_ms(ms) == expected


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC),
        datetime(2024, 6, 30, 23, 59, 59, 999000, tzinfo=timezone(timedelta(hours=-7))),
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=14))),
    ],
    ids=["utc", "negative-offset", "plus-14"],
)
def test_round_trip_through_isoformat(moment: datetime) -> None:
    ms = parse_ms(moment.isoformat())
    assert ms is not None
    expected = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    assert format_ms(ms) == expected
    assert parse_ms(format_ms(ms)) == ms


def test_format_ms_is_stable_across_its_cache() -> None:
    """Formatting caches each second's prefix; more seconds than it holds still format right."""
    for second in range(9000):
        ms = BASE + second * 1000 + second % 1000
        assert parse_ms(format_ms(ms)) == ms
