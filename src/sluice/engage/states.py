"""Mergeable per-profile states of computed traits: add an event, merge two, read the value.

A state is a map day → partial (day = the event's received_at in whole UTC days; a trait
without a window keeps one bucket, day 0). Each kind's partial combines associatively and
commutatively, so the state of a merged profile is the merge of both states, and equals the
state computed over the union of their events:

    count                    n
    sum, avg, min, max       [n, sum, min, max] of the numeric values
    most_frequent            {value: count}, at most MAX_VALUES values
    first, last              [received_at_ms, seq, value]: the earliest / latest by (time, seq)
    unique_list/_count       sorted values, at most MAX_VALUES

Values inside maps and lists are kept as their JSON text (a profile's values may be of any
JSON type); the trait's value decodes them. A window of W days keeps the buckets of the last W
days up to the log's clock: older buckets are dropped when read or expired.
"""

from __future__ import annotations

from typing import Any

import msgspec

DAY_MS = 86_400_000
MAX_VALUES = 10_000  # Segment keeps at most 10,000 property values per trait
NUMERIC = ("sum", "avg", "min", "max")
_encode = msgspec.json.Encoder(order="sorted").encode
_decode = msgspec.json.decode

State = dict[int, Any]


def day_of(ms: int) -> int:
    return ms // DAY_MS


def bucket_of(received_at_ms: int, window_days: int | None) -> int:
    return day_of(received_at_ms) if window_days is not None else 0


def first_day(clock_ms: int, window_days: int | None) -> int:
    """The oldest bucket still inside the window at this clock (0 for no window)."""
    return day_of(clock_ms) - window_days + 1 if window_days is not None else 0


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def partial(kind: str, value: Any, received_at_ms: int, seq: int) -> Any:
    """One event's partial, or None when the event's value does not count for this kind."""
    if kind == "count":
        return 1
    if value is None:
        return None
    if kind in NUMERIC:
        return [1, value, value, value] if is_number(value) else None
    text = _encode(value).decode()
    if kind == "most_frequent":
        return {text: 1}
    if kind in ("first", "last"):
        return [received_at_ms, seq, text]
    return [text]  # unique_list, unique_count


def combine(kind: str, a: Any, b: Any) -> Any:
    """Two partials of one kind as one (associative, commutative)."""
    if kind == "count":
        return a + b
    if kind in NUMERIC:
        return [a[0] + b[0], a[1] + b[1], min(a[2], b[2]), max(a[3], b[3])]
    if kind == "most_frequent":
        merged = dict(a)
        for value, n in b.items():
            merged[value] = merged.get(value, 0) + n
        if len(merged) > MAX_VALUES:  # the most frequent, then the first alphabetically
            kept = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_VALUES]
            merged = dict(kept)
        return merged
    if kind == "first":
        return a if (a[0], a[1]) <= (b[0], b[1]) else b
    if kind == "last":
        return a if (a[0], a[1]) >= (b[0], b[1]) else b
    return sorted(set(a) | set(b))[:MAX_VALUES]


def add(kind: str, state: State, bucket: int, part: Any) -> None:
    state[bucket] = combine(kind, state[bucket], part) if bucket in state else part


def merge(kind: str, a: State, b: State) -> State:
    result = dict(a)
    for bucket, part in b.items():
        add(kind, result, bucket, part)
    return result


def expire(state: State, clock_ms: int, window_days: int | None) -> State:
    """The state without the buckets the window has left."""
    if window_days is None:
        return state
    oldest = first_day(clock_ms, window_days)
    return {day: part for day, part in state.items() if day >= oldest}


def expires_day(state: State, window_days: int | None) -> int | None:
    """The first day at which one of the state's buckets leaves the window (None: never)."""
    if window_days is None or not state:
        return None
    return min(state) + window_days


def value(kind: str, state: State, clock_ms: int, window_days: int | None) -> Any:
    """The trait's value at this clock (None when no event in the window counts)."""
    parts = list(expire(state, clock_ms, window_days).values())
    if kind == "count":
        return sum(parts)
    if not parts:
        return None
    total = parts[0]
    for part in parts[1:]:
        total = combine(kind, total, part)
    if kind == "sum":
        return total[1]
    if kind == "avg":
        return total[1] / total[0]
    if kind == "min":
        return total[2]
    if kind == "max":
        return total[3]
    if kind == "most_frequent":
        best, n = min(total.items(), key=lambda kv: (-kv[1], kv[0]))
        return _decode(best) if n >= 2 else None  # Segment: needs 2 occurrences
    if kind in ("first", "last"):
        return _decode(total[2])
    if kind == "unique_count":
        return len(total)
    return [_decode(text) for text in total]


def dump(state: State) -> str:
    return _encode(sorted(state.items())).decode()


def load(text: str) -> State:
    return {int(day): part for day, part in _decode(text)}
