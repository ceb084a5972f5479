"""Each flip is sent once whatever the step size: a profile is judged at each of its events (and
at each merge into it), in log order, so one step of the whole log and steps of one event send
the same events with the same messageIds, an entry and an exit within one step included
(hypothesis)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from engage_kit import DAY, T0, Rig, definitions, tracks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluice.engage.emit import flush
from sluice.identity.consumer import IdentityConsumer
from sluice.identity.rules import rules_from
from sluice.identity.tables import SqliteIdentityDb
from sluice.store.sqlite import SqliteStore

ORDERS = {"key": "orders", "kind": "count", "event": "Order Completed", "within_days": 2}
SPENT = {"key": "spent", "kind": "sum", "event": "Order Completed", "property": "total"}
AUDIENCES = [
    # Enters at the second order within 2 days; leaves when one leaves the window.
    {"key": "ordered_twice", "condition": {"events": [
        {"event": "Order Completed", "count": 2, "within_days": 2}]}},
    # Enters at the first order, leaves at the second: both can happen within one step.
    {"key": "ordered_once", "condition": {"computed_traits": [
        {"computed_trait": "orders", "op": "=", "value": 1}]}},
    {"key": "pro_spender", "condition": {
        "traits": [{"trait": "plan", "value": "pro"}],
        "computed_traits": [{"computed_trait": "spent", "op": ">", "value": 20}]}},
]  # fmt: skip
DEFS = definitions([ORDERS, SPENT], AUDIENCES)

users = st.sampled_from(["u1", "u2", "u3"])
anons = st.sampled_from(["a1", "a2", "a3"])
hours = st.integers(0, 30)  # hours after the previous event: windows of 2 days end in between


def _order(user: str | None, anon: str, total: int, gap: int) -> dict[str, Any]:
    body: dict[str, Any] = {"event": "Order Completed", "anonymousId": anon,
                            "properties": {"total": total}}  # fmt: skip
    if user is not None:
        body["userId"] = user
    return {"body": body, "gap": gap}


def _identify(user: str, anon: str, plan: str, gap: int) -> dict[str, Any]:
    body = {"type": "identify", "userId": user, "anonymousId": anon, "traits": {"plan": plan}}
    return {"body": body, "gap": gap}


event = st.one_of(
    st.builds(_order, st.one_of(st.none(), users), anons, st.integers(0, 15), hours),
    st.builds(_identify, users, anons, st.sampled_from(["pro", "free"]), hours),
    st.builds(
        lambda anon, gap: {"body": {"event": "Viewed", "anonymousId": anon}, "gap": gap},
        anons,
        hours,
    ),
)


def sent(stream: list[dict[str, Any]], step: int) -> list[dict[str, Any]]:
    """Engage's events for `stream` in a fresh store, read `step` events at a time, the outbox
    appended after each step as the runner does; without `receivedAt` (the append's time)."""
    with tempfile.TemporaryDirectory(prefix="engage-steps-") as tmp:
        rig = Rig(SqliteStore(Path(tmp) / "log.db"), SqliteIdentityDb(Path(tmp) / "id.db"))
        try:
            consumer = rig.engage(DEFS, step_events=step)  # before the events: all are sent
            at = T0
            for e in stream:
                at += e["gap"] * 3_600_000
                rig.send(e["body"], at_ms=at)
            identity = IdentityConsumer(rig.store, rig.db, "default", rules_from(None))
            identity.prepare()
            identity.run_until_caught_up()
            while consumer.step():
                flush(rig.db, rig.store, "default")
            flush(rig.db, rig.store, "default")
            emitted = rig.emitted()
        finally:
            rig.close()
    for body in emitted:
        del body["receivedAt"]
    return emitted


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event, min_size=1, max_size=30), st.integers(2, 12))
def test_any_step_size_sends_the_same_events(stream: list[dict[str, Any]], step: int) -> None:
    whole = sent(stream, 10_000)
    assert sent(stream, 1) == whole
    assert sent(stream, step) == whole


def test_entered_and_exited_within_one_step_are_both_sent(sqlite_rig: Rig) -> None:
    rig = sqlite_rig
    consumer = rig.engage(DEFS, step_events=10_000)
    rig.send({"userId": "jane", "event": "Order Completed"}, at_ms=T0)
    rig.send({"userId": "jane", "event": "Order Completed"}, at_ms=T0 + DAY // 2)
    rig.run(consumer)
    assert tracks(rig.emitted()) == [
        ("Audience Entered", "ordered_once", "jane"),  # the first order
        ("Audience Entered", "ordered_twice", "jane"),  # the second, in definition order
        ("Audience Exited", "ordered_once", "jane"),
    ]
    emitted = rig.emitted()
    # Each at the time of the event that made it, each with its own messageId.
    times = [e["timestamp"] for e in emitted if e["type"] == "track"]
    assert times == ["2025-12-06T05:46:40.000Z", *["2025-12-06T17:46:40.000Z"] * 2]
    assert len({e["messageId"] for e in emitted}) == len(emitted)
