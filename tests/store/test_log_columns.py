"""`LogColumns` made from rows and sliced: the same events as the rows they came from."""

from __future__ import annotations

import msgspec

from sluice.store.base import StoredEvent
from sluice.store.columns import LogColumns


def rows(count: int) -> list[StoredEvent]:
    return [
        StoredEvent(
            seq,
            ["web", "ios", "sourcé"][seq % 3],
            f"m-{seq}-é",
            ["track", "page"][seq % 2],
            None if seq % 2 else ["Clicked", "", "Añadido"][seq % 3],
            1_000 + seq,
            msgspec.json.encode({"n": seq, "t": "x" * (seq % 7)}),
        )
        for seq in range(10, 10 + count)
    ]


def test_columns_from_rows_give_the_rows_back() -> None:
    events = rows(50)
    columns = LogColumns.from_rows(events)
    assert len(columns) == 50 and columns.last_seq == events[-1].seq
    assert columns.rows(range(50)) == events
    assert columns.sources == ["ios", "sourcé", "web"]  # in order of first appearance
    assert sorted(columns.events) == ["", "Añadido", "Clicked"]


def test_a_slice_is_those_events_and_slices_again() -> None:
    events = rows(40)
    columns = LogColumns.from_rows(events)
    part = columns.slice(7, 31)
    assert len(part) == 24 and part.last_seq == events[30].seq
    assert part.rows(range(24)) == events[7:31]
    assert part.slice(5, 9).rows(range(4)) == events[12:16]
    assert len(columns.slice(38, 100)) == 2  # past the end: what there is
    assert len(columns.slice(40, 50)) == 0
