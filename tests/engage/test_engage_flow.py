"""Engage over a real store and identity graph, on both backends: an audience's flips, a
computed trait sent as an identify, merges, windows ending with the clock, rebuilds."""

from __future__ import annotations

from engage_kit import DAY, T0, Rig, definitions, tracks

ORDERED_TWICE = {
    "key": "ordered_twice",
    "condition": {"events": [{"event": "Order Completed", "count": 2, "within_days": 7}]},
}
ORDERS = {"key": "orders", "kind": "count", "event": "Order Completed"}


def test_audience_entered_once_then_exited_with_time(rig: Rig) -> None:
    consumer = rig.engage(definitions([ORDERS], [ORDERED_TWICE]))
    rig.send({"userId": "jane", "event": "Order Completed"}, at_ms=T0)
    rig.run(consumer)
    assert tracks(rig.emitted()) == []
    rig.send({"userId": "jane", "event": "Order Completed"}, at_ms=T0 + DAY)
    rig.send({"userId": "jane", "event": "Viewed"}, at_ms=T0 + DAY)
    rig.run(consumer)
    rig.run(consumer)
    assert tracks(rig.emitted()) == [("Audience Entered", "ordered_twice", "jane")]
    entered = next(e for e in rig.emitted() if e.get("event") == "Audience Entered")
    assert entered["properties"] == {"audience_key": "ordered_twice", "ordered_twice": True}
    personas = entered["context"]["personas"]
    assert personas["computation_class"] == "audience"
    assert personas["computation_key"] == "ordered_twice"
    assert personas["space_id"] == "default" and personas["computation_id"].startswith("aud_")
    identifies = [e for e in rig.emitted() if e["type"] == "identify"]
    assert [e["traits"] for e in identifies] == [
        {"orders": 1},
        {"orders": 2},
        {"ordered_twice": True},
    ]
    # Seven days after the first order, it leaves the window: the tick sends the exit once.
    consumer.tick(T0 + 7 * DAY)
    consumer.tick(T0 + 8 * DAY)
    rig.run(consumer)
    assert tracks(rig.emitted()) == [
        ("Audience Entered", "ordered_twice", "jane"),
        ("Audience Exited", "ordered_twice", "jane"),
    ]


def test_merge_joins_states_and_rebuild_sends_nothing_again(rig: Rig) -> None:
    defs = definitions([ORDERS], [ORDERED_TWICE])
    consumer = rig.engage(defs)
    rig.send({"anonymousId": "a1", "event": "Order Completed"})
    rig.send({"userId": "jane", "event": "Order Completed"})
    rig.run(consumer)
    assert tracks(rig.emitted()) == []
    rig.send({"type": "identify", "anonymousId": "a1", "userId": "jane"})
    rig.run(consumer)
    assert tracks(rig.emitted()) == [("Audience Entered", "ordered_twice", "jane")]
    before = rig.emitted()
    # A new definition recomputes from the log: the existing audience is not sent again, the
    # new one sends its current members (its initial sync).
    pro = {"key": "big_spenders", "condition": {"computed_traits": [
        {"computed_trait": "orders", "op": ">=", "value": 2}]}}  # fmt: skip
    consumer = rig.engage(definitions([ORDERS], [ORDERED_TWICE, pro]))
    rig.run(consumer)
    new = rig.emitted()[len(before) :]
    assert tracks(new) == [("Audience Entered", "big_spenders", "jane")]


def test_trait_and_nested_conditions(rig: Rig) -> None:
    spent = {"key": "spent", "kind": "sum", "event": "Order Completed", "property": "total"}
    first = {"key": "first_total", "kind": "first", "event": "Order Completed",
             "property": "total", "send_as": "track"}  # fmt: skip
    vip = {"key": "vip", "condition": {
        "traits": [{"trait": "plan", "value": "pro"}],
        "groups": [{"match": "any",
                    "computed_traits": [{"computed_trait": "spent", "op": ">", "value": 100}],
                    "events": [{"event": "Referred", "count": 1}]}],
    }}  # fmt: skip
    consumer = rig.engage(definitions([spent, first], [vip]))
    rig.send({"type": "identify", "userId": "ann", "traits": {"plan": "pro"}})
    rig.send({"userId": "ann", "event": "Order Completed", "properties": {"total": 60}})
    rig.send({"type": "identify", "userId": "bob", "traits": {"plan": "free"}})
    rig.send({"userId": "bob", "event": "Referred"})
    rig.run(consumer)
    assert tracks(rig.emitted()) == []  # ann spent 60; bob is not pro
    rig.send({"userId": "ann", "event": "Order Completed", "properties": {"total": 50}})
    rig.send({"type": "identify", "userId": "bob", "traits": {"plan": "pro"}})
    rig.run(consumer)
    assert sorted(tracks(rig.emitted())) == [
        ("Audience Entered", "vip", "ann"),
        ("Audience Entered", "vip", "bob"),
    ]
    rig.send({"type": "identify", "userId": "ann", "traits": {"plan": "free"}})
    rig.run(consumer)
    assert tracks(rig.emitted())[-1] == ("Audience Exited", "vip", "ann")
    spent_values = [e["traits"]["spent"] for e in rig.emitted() if "spent" in e.get("traits", {})]
    assert spent_values == [60, 110]
    computed = [e for e in rig.emitted() if e.get("event") == "Trait Computed"]
    assert [e["properties"] for e in computed] == [{"trait_key": "first_total", "first_total": 60}]


def test_recomputing_after_a_tick_does_not_enter_again(rig: Rig) -> None:
    consumer = rig.engage(definitions([ORDERS], [ORDERED_TWICE]))
    rig.send({"userId": "jane", "event": "Order Completed"}, at_ms=T0)
    rig.send({"userId": "jane", "event": "Order Completed"}, at_ms=T0 + DAY)
    rig.run(consumer)
    consumer.tick(T0 + 10 * DAY)  # both orders out of the window: exited
    rig.run(consumer)
    sent = tracks(rig.emitted())
    assert [t[0] for t in sent] == ["Audience Entered", "Audience Exited"]
    other = {"key": "viewers", "condition": {"events": [{"event": "Viewed"}]}}
    consumer = rig.engage(definitions([ORDERS], [ORDERED_TWICE, other]))  # recompute
    rig.run(consumer)
    assert tracks(rig.emitted()) == sent  # judged at the tick's clock: still out
