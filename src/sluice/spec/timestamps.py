"""ISO-8601 in, epoch milliseconds inside, `YYYY-MM-DDTHH:MM:SS.mmmZ` out.

Clients emit every ISO-8601 variant (`Z` or offsets, no/milli/micro/nano seconds, Python's
`isoformat`, date only, basic format); Segment hands destinations UTC with milliseconds, so every
timestamp Sluice emits is normalised to that one form.

Read: every RFC 3339 date-time and the ISO-8601 forms libraries and languages write: `T`, `t` or a
space between date and time; `Z`, `z`, `+05:30`, `+0530`, `+05` or no zone at all (naive means
UTC); none to any number of fractional digits after `.` or `,` (truncated to the millisecond);
basic format (`20240102T030405Z`); date only. `datetime.fromisoformat` (C) reads nearly all of
them at once; only what it refuses (lower-case `z`, leap seconds, garbage) goes on to a regular
expression, so the forms of nearly every event pay nothing for the rarer ones.

Leap seconds: RFC 3339 allows second `60` (`2016-12-31T23:59:60Z`). Sluice reads it as the last
millisecond of its minute, `23:59:59.999`, whatever its fraction: the event stays in its minute
and day (a warehouse's daily partition, a report's bucket, the year it happened in), still sorts
before the next second, and no timestamp Sluice writes ever shows second 60, which most tools
downstream refuse (epoch time has no leap seconds). The leap-second table is not consulted: `:60`
reads the same in any minute, as the grammar allows it and a client that rounds 59.9996 up writes
it.

Range: only years 1 to 9999 in UTC exist here, as in Python's `datetime` and in the warehouses.
A value outside them, as written (JavaScript's `+275760-09-13T00:00:00Z`) or once converted to UTC
(`0001-01-01T00:00:00+01:00`), is not a time: `parse_ms` says None, as for any garbage.
`format_ms` never raises: milliseconds outside the range are written as its first or last one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH: Final = datetime(1970, 1, 1)
_fromisoformat: Final = datetime.fromisoformat  # a global, not an attribute lookup per call

MIN_MS: Final = -62_135_596_800_000  # 0001-01-01T00:00:00.000Z
MAX_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_TEXT_LENGTH: Final = 64

# What `fromisoformat` refuses but RFC 3339 allows (lower-case `t`/`z`, second 60), in the same
# extended or basic forms. Checked field by field below, after the match.
_RFC3339: Final = re.compile(
    r"""
    (\d{4})-?(\d\d)-?(\d\d)                   # date
    [Tt\ ]
    (\d\d):?(\d\d)(?::?(\d\d)(?:[.,](\d*))?)? # time: seconds and fraction optional
    (?:[Zz]|([+-])(\d\d)(?::?(\d\d))?)?       # zone: none means UTC
    """,
    re.VERBOSE | re.ASCII,
)


def parse_ms(value: object) -> int | None:
    """Epoch milliseconds of an ISO-8601 string, or None when it is not one (naive means UTC)."""
    if not isinstance(value, str) or not 8 <= len(value) <= MAX_TEXT_LENGTH:
        return None
    try:
        parsed = _fromisoformat(value)
    except ValueError:
        return _parse_rfc3339(value)
    delta = parsed - (_NAIVE_EPOCH if parsed.tzinfo is None else _EPOCH)
    ms = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    return ms if MIN_MS <= ms <= MAX_MS else None


def _parse_rfc3339(text: str) -> int | None:
    """The slow path: what `fromisoformat` refuses, read by hand (see the module docstring)."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, sign, off_hours, off_minutes = match.groups()
    leap = second == "60"
    whole_second = 59 if leap else int(second or 0)
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), whole_second)
    except ValueError:  # month 13, February 30, hour 24, second 61, year 0
        return None
    delta = moment - _NAIVE_EPOCH
    ms = (delta.days * 86_400 + delta.seconds) * 1000
    if leap:
        ms += 999
    elif fraction:
        ms += int(f"{fraction[:3]:0<3}")
    if sign is not None:
        hours, minutes = int(off_hours), int(off_minutes or 0)
        if hours > 23 or minutes > 59:
            return None
        offset_ms = (hours * 60 + minutes) * 60_000
        ms = ms - offset_ms if sign == "+" else ms + offset_ms
    return ms if MIN_MS <= ms <= MAX_MS else None


# Events of one moment share their second: format each second once.
_SECOND_PREFIXES: dict[int, str] = {}
_MAX_CACHED_SECONDS = 8192
_MIN_SECOND: Final = MIN_MS // 1000
_MAX_SECOND: Final = MAX_MS // 1000


def format_ms(ms: int) -> str:
    """`2024-01-02T03:04:05.006Z` for epoch milliseconds, clamped to years 1 to 9999."""
    second, millis = divmod(ms, 1000)
    prefix = _SECOND_PREFIXES.get(second)
    if prefix is None:
        # Only seconds in range are cached, so a cache hit needs no range check.
        if not _MIN_SECOND <= second <= _MAX_SECOND:
            return format_ms(MIN_MS if second < 0 else MAX_MS)
        moment = _EPOCH + timedelta(seconds=second)
        prefix = (
            f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
            f"{moment.minute:02d}:{moment.second:02d}."
        )
        if len(_SECOND_PREFIXES) >= _MAX_CACHED_SECONDS:
            _SECOND_PREFIXES.clear()
        _SECOND_PREFIXES[second] = prefix
    return f"{prefix}{millis:03d}Z"
