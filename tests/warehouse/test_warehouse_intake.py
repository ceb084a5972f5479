"""The compiled grouping of events (`_group.c`) against intake.py's Python one, on random logs.

Both must keep, drop and order the same events: random pieces mix sources (some not wanted,
two sharing a schema), calls, track names (some missing from the log, found in the payload),
`integrations.Warehouses` options, repeated messageIds (in the piece and from earlier pieces)
and payloads that are not JSON.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from sluice.store.base import StoredEvent
from sluice.warehouse import compiled, intake
from sluice.warehouse.intake import Split, split, split_python
from sluice.warehouse.shape import ExactPlanNeeded

pytestmark = pytest.mark.skipif(compiled.group() is None, reason="_group.c is not built")

SCHEMAS = {"web": "web", "ios": "apps", "android": "apps", "server": "server"}


def random_events(rng: random.Random, count: int, first_seq: int) -> list[StoredEvent]:
    events = []
    for seq in range(first_seq, first_seq + count):
        source = rng.choice(list(SCHEMAS))
        call = rng.choice(["track", "track", "track", "page", "identify", "group"])
        name = rng.choice(["Signed Up", "Order Completed", "Wählen"]) if call == "track" else None
        msg: dict[str, Any] = {"type": call, "messageId": f"m{rng.randrange(count * 2)}"}
        if name is not None:
            msg["event"] = name
            if rng.random() < 0.1:  # the log has no name: the payload gives it
                name = rng.choice([None, ""])
        if rng.random() < 0.1:
            msg["integrations"] = {"Warehouses": rng.choice([{"all": False}, {"all": True}])}
        if rng.random() < 0.05:
            msg["note"] = "Warehouses in a text only"
        payload = msgspec.json.encode(msg)
        events.append(StoredEvent(seq, source, msg["messageId"], call, name, 0, payload))
    return events


def outcome(fn: Callable[..., Split], pieces: list[list[StoredEvent]], sources: Any) -> Any:
    """Each piece's split as plain values, and the messageIds seen at the end."""
    seen: dict[str, set[str]] = {}
    results = []
    for events in pieces:
        try:
            got = fn(events, sources, SCHEMAS.__getitem__, "wh1", seen)
        except ExactPlanNeeded:
            results.append("exact")
            continue
        parts = [
            (key, e.seq.to_pylist(), e.message_id.to_pylist(), list(e.payloads))
            for key, e in got.parts.items()
        ]
        results.append((parts, got.aside, got.skipped, got.duplicates))
    return results, seen


@pytest.mark.parametrize("seed", range(40))
def test_compiled_grouping_equals_python(seed: int) -> None:
    rng = random.Random(seed)
    pieces, seq = [], 1
    for _ in range(rng.randint(1, 4)):
        size = rng.randint(1, 300)
        pieces.append(random_events(rng, size, seq))
        seq += size
    if seed % 7 == 0:  # a payload that is not JSON, with "Warehouses" in it
        bad = pieces[0][0]
        pieces[0][0] = bad._replace(payload=b'{"integrations": {"Warehouses"')
    sources = rng.choice([(), ("web", "ios"), ("server",), ("nowhere",)])
    compiled_result = outcome(split, pieces, sources)
    python_result = outcome(split_python, pieces, sources)
    assert compiled_result == python_result
    grouped = any(r != "exact" and r[0] for r in compiled_result[0])
    assert grouped or seed % 7 == 0 or sources == ("nowhere",)


def test_one_source_one_group_and_all_dropped() -> None:
    rng = random.Random(1)
    events = [
        e._replace(source_id="web", type="page", event=None, message_id=f"p{e.seq}")
        for e in random_events(rng, 50, 1)
    ]
    for sources in [(), ("ios",)]:
        assert outcome(split, [events, events], sources) == outcome(
            split_python, [events, events], sources
        )


def test_without_the_extension_python_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(compiled.DISABLE_ENV, "1")
    called = []
    monkeypatch.setattr(intake, "split_python", lambda *a: called.append(a) or Split())
    split(random_events(random.Random(2), 5, 1), (), SCHEMAS.__getitem__, "wh1", {})
    assert called


def test_events_c_cannot_read_are_grouped_in_python() -> None:
    """A payload that is not a bytes object (here a bytearray): the C passes refuse the piece
    and Python groups it, with the same result as asking Python directly."""
    events = random_events(random.Random(3), 40, 1)
    events[5] = events[5]._replace(payload=bytearray(events[5].payload))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        compiled.group().survey(events)  # type: ignore[union-attr]
    assert outcome(split, [events], ()) == outcome(split_python, [events], ())
