"""ISO-8601 in every variant clients emit, to epoch ms and back to `YYYY-MM-DDTHH:MM:SS.mmmZ`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sluice.spec.timestamps import MAX_MS, MIN_MS, format_ms, parse_ms

# 2024-01-02T03:04:05Z
BASE = 1_704_164_645_000
# 2016-12-31T23:59:59.999Z: where the leap second 2016-12-31T23:59:60Z is read.
LEAP = 1_483_228_799_999

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
    # RFC 3339 5.6: "T" and "Z" may be lower case.
    ("2024-01-02t03:04:05z", BASE, "lower-case t and z"),
    ("2024-01-02T03:04:05z", BASE, "lower-case z"),
    ("2024-01-02t03:04:05Z", BASE, "lower-case t"),
    ("2024-01-02t03:04:05.123z", BASE + 123, "lower-case, milliseconds"),
    ("2024-01-02t03:04:05.123456789z", BASE + 123, "lower-case, nanoseconds"),
    ("2024-01-02 03:04:05.123z", BASE + 123, "space separator, lower-case z"),
    ("20240102t030405z", BASE, "basic format, lower case"),
    ("2024-01-02t03:04z", BASE - 5000, "lower-case z, no seconds"),
    ("2024-01-02T03:04Z", BASE - 5000, "no seconds"),
    # Offsets in every spelling.
    ("2024-01-02T08:04:05+05", BASE, "offset +05"),
    ("2024-01-02T08:34:05.123+05:30", BASE + 123, "offset +05:30"),
    ("2024-01-01T21:34:05-0530", BASE, "offset -0530"),
    ("2024-01-02T17:04:05+14:00", BASE, "offset +14:00"),
    ("2024-01-02 03:04:05.123+00", BASE + 123, "PostgreSQL text, +00"),
    ("2024-01-02t08:34:05.123+05:30", BASE + 123, "lower-case t, offset"),
    # Leap seconds: the last millisecond of their minute (see the module docstring).
    ("2016-12-31T23:59:60Z", LEAP, "leap second"),
    ("2016-12-31T23:59:60.000Z", LEAP, "leap second, milliseconds"),
    ("2016-12-31T23:59:60.5Z", LEAP, "leap second, any fraction"),
    ("2016-12-31T23:59:60.999999999Z", LEAP, "leap second, nanoseconds"),
    ("2016-12-31t23:59:60z", LEAP, "leap second, lower case"),
    ("2016-12-31 23:59:60", LEAP, "leap second, naive"),
    ("20161231T235960Z", LEAP, "leap second, basic format"),
    ("2017-01-01T05:29:60+05:30", LEAP, "leap second, positive offset"),
    ("2016-12-31T18:59:60-0500", LEAP, "leap second, negative offset"),
    ("2015-06-30T23:59:60Z", 1_435_708_799_999, "leap second of June 2015"),
    ("9999-12-31t23:59:60z", MAX_MS, "leap second ending year 9999"),
    ("2024-01-02T03:04:60Z", BASE + 54_999, "second 60 in any minute"),
    # The range: years 1 to 9999 once in UTC.
    ("0001-01-01T00:00:00Z", MIN_MS, "first millisecond of year 1"),
    ("9999-12-31T23:59:59.999Z", MAX_MS, "last millisecond of year 9999"),
    ("0001-01-01T01:00:00+01:00", MIN_MS, "year 1 through an offset"),
    ("9999-12-31T22:59:59.999999-01:00", MAX_MS, "year 9999 through an offset"),
    ("9999-12-31T23:59:59Z", MAX_MS - 999, "last whole second of year 9999"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [(text, ms) for text, ms, _ in PARSE_CASES],
    ids=[label for _, _, label in PARSE_CASES],
)
def test_parse_ms(text: str, expected: int) -> None:
    assert parse_ms(text) == expected


DIGITS = "987654321"
ZONES = {"Z": "Z", "z": "lower-z", "+00:00": "offset", "": "naive"}
FRACTIONS = [
    (
        f"{digits}-digits-{label}",
        f"05{'.' if digits else ''}{DIGITS[:digits]}{zone}",
        BASE + int(f"{DIGITS[:digits]:0<3}"[:3]),
    )
    for digits in range(10)
    for zone, label in ZONES.items()
]


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(seconds, ms) for _, seconds, ms in FRACTIONS],
    ids=[label for label, _, _ in FRACTIONS],
)
def test_parse_ms_reads_zero_to_nine_fractional_digits(seconds: str, expected: int) -> None:
    """`05.9876` is 987 ms (truncated, never rounded), after `T`, `t` or a space alike."""
    for separator in ("T", "t", " "):
        assert parse_ms(f"2024-01-02{separator}03:04:{seconds}") == expected


def test_a_leap_second_sorts_between_its_neighbours() -> None:
    before = parse_ms("2016-12-31T23:59:59.998Z")
    leap = parse_ms("2016-12-31T23:59:60.500Z")
    after = parse_ms("2017-01-01T00:00:00.000Z")
    assert before is not None and leap is not None and after is not None
    assert before < leap < after
    assert format_ms(leap) == "2016-12-31T23:59:59.999Z"


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
    ("2024-01-02T03:04:61Z", "second 61"),
    ("2024-01-02t03:04:61z", "second 61, lower case"),
    ("2024-01-02T24:00:00Z", "hour 24"),
    ("2016-12-31T23:59:60+25:00", "leap second, offset out of range"),
    ("2016-12-31T23:59:60+05:60", "leap second, offset minutes out of range"),
    ("2016-12-31T23:59:60Zjunk", "leap second, trailing junk"),
    ("2024-13-01t00:00:00z", "lower case, month 13"),
    ("2024-01-02T03:04:05zz", "two zones"),
    ("1704164645000", "epoch milliseconds as a string"),
    (" 2024-01-02T03:04:05Z", "leading space"),
    ("0000-01-01T00:00:00Z", "year 0"),
    ("0001-01-01T00:00:00+01:00", "before year 1 once in UTC"),
    ("0001-01-01T00:59:59.999+01:00", "last millisecond before year 1"),
    ("9999-12-31T23:59:59-01:00", "after year 9999 once in UTC"),
    ("9999-12-31T23:00:60-01:00", "leap second after year 9999 once in UTC"),
    ("10000-01-01T00:00:00Z", "year 10000"),
    ("+275760-09-13T00:00:00.000Z", "JavaScript's extended year"),
]


@pytest.mark.parametrize("text", [t for t, _ in GARBAGE], ids=[label for _, label in GARBAGE])
def test_parse_ms_returns_none_for_garbage(text: str) -> None:
    assert parse_ms(text) is None


@pytest.mark.parametrize(
    "value",
    [None, 1_704_164_645_000, 1_704_164_645, 1_704_164_645.5, 0, -1, 10**30, True,
     ["2024-01-02"], {"t": 1}, b"2024-01-02"],
    ids=["none", "epoch-ms-int", "epoch-seconds-int", "epoch-float", "zero", "negative", "huge",
         "bool", "list", "dict", "bytes"],
)  # fmt: skip
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
    (MIN_MS, "0001-01-01T00:00:00.000Z", "first millisecond of year 1"),
    # Out of range: clamped, never an OverflowError.
    (MAX_MS + 1, "9999-12-31T23:59:59.999Z", "one past year 9999, clamped"),
    (MIN_MS - 1, "0001-01-01T00:00:00.000Z", "one before year 1, clamped"),
    (2**63, "9999-12-31T23:59:59.999Z", "2**63, clamped"),
    (-(2**63), "0001-01-01T00:00:00.000Z", "-2**63, clamped"),
    (10**100, "9999-12-31T23:59:59.999Z", "googol, clamped"),
    (-(10**100), "0001-01-01T00:00:00.000Z", "minus googol, clamped"),
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


def test_clamping_does_not_reach_the_cache() -> None:
    """A clamped value is not cached under its own second: in-range seconds still format right."""
    for ms in (MAX_MS + 1_000, MIN_MS - 1_000, MAX_MS + 1, MIN_MS - 1):
        format_ms(ms)
    assert format_ms(MAX_MS - 999) == "9999-12-31T23:59:59.000Z"
    assert format_ms(MIN_MS + 1_001) == "0001-01-01T00:00:01.001Z"
    assert format_ms(BASE) == "2024-01-02T03:04:05.000Z"


@pytest.mark.parametrize(
    "text",
    ["2016-12-31T23:59:60Z", "2024-01-02t03:04:05.5z", "0001-01-01T00:00:00Z",
     "9999-12-31T23:59:59.999Z", "2024-01-02T08:34:05.123456789+05:30"],
    ids=["leap-second", "lower-case", "year-1", "year-9999", "nanoseconds-offset"],
)  # fmt: skip
def test_what_parses_formats_and_parses_back(text: str) -> None:
    ms = parse_ms(text)
    assert ms is not None
    assert parse_ms(format_ms(ms)) == ms
