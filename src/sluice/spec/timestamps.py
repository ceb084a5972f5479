"""ISO-8601 in, epoch milliseconds inside, `YYYY-MM-DDTHH:MM:SS.mmmZ` out.

Clients emit every ISO-8601 variant (`Z` or offsets, no/milli/micro/nano seconds, Python's
`isoformat`, date only, basic format); Segment hands destinations UTC with milliseconds, so every
timestamp Sluice emits is normalised to that one form.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_ms(value: object) -> int | None:
    """Epoch milliseconds of an ISO-8601 string, or None when it is not one (naive means UTC)."""
    if not isinstance(value, str) or not 8 <= len(value) <= 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    delta = parsed - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


# Events of one moment share their second: format each second once.
_SECOND_PREFIXES: dict[int, str] = {}
_MAX_CACHED_SECONDS = 8192


def format_ms(ms: int) -> str:
    """`2024-01-02T03:04:05.006Z` for epoch milliseconds."""
    second, millis = divmod(ms, 1000)
    prefix = _SECOND_PREFIXES.get(second)
    if prefix is None:
        moment = _EPOCH + timedelta(seconds=second)
        prefix = (
            f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
            f"{moment.minute:02d}:{moment.second:02d}."
        )
        if len(_SECOND_PREFIXES) >= _MAX_CACHED_SECONDS:
            _SECOND_PREFIXES.clear()
        _SECOND_PREFIXES[second] = prefix
    return f"{prefix}{millis:03d}Z"
