"""Merges and audiences: a profile merged away was sent as a member; when the merged profile is
not one, an exit is sent (a destination must not keep the merged-away ids as members), also
when the merge is read during a recomputation; when it is one, nothing is sent twice."""

from __future__ import annotations

from typing import Any

from engage_kit import SPACE, T0, Rig, definitions, tracks

from sluice.identity.consumer import IdentityConsumer
from sluice.identity.rules import rules_from

ORDERS = {"key": "orders", "kind": "count", "event": "Order Completed"}
ORDERED_ONCE = {"key": "ordered_once", "condition": {"computed_traits": [
    {"computed_trait": "orders", "op": "=", "value": 1}]}}  # fmt: skip
ORDERED = {"key": "ordered", "condition": {"events": [{"event": "Order Completed"}]}}


def order(**ids: str) -> dict[str, Any]:
    return {"event": "Order Completed", **ids}


def members(rig: Rig, audience: str) -> set[str]:
    rows = rig.db.execute(
        "SELECT profile_id FROM audience_members WHERE space = ? AND audience_key = ?"
        " AND member = 1",
        [SPACE, audience],
    )
    return {str(r[0]) for r in rows}


def merged(rig: Rig) -> tuple[str, str]:
    ((loser, winner),) = rig.db.execute("SELECT loser, winner FROM merges")
    return str(loser), str(winner)


def test_a_member_merged_into_a_non_member_exits(rig: Rig) -> None:
    consumer = rig.engage(definitions([ORDERS], [ORDERED_ONCE, ORDERED]))
    for body in (order(userId="jane"), order(userId="jane"), order(anonymousId="a1")):
        rig.send(body, at_ms=T0 + 1000)  # jane: two orders, not "ordered once"; a1: one
        rig.run(consumer)
    assert tracks(rig.emitted()) == [
        ("Audience Entered", "ordered_once", "jane"),  # at jane's first order
        ("Audience Entered", "ordered", "jane"),
        ("Audience Exited", "ordered_once", "jane"),
        ("Audience Entered", "ordered_once", "a1"),
        ("Audience Entered", "ordered", "a1"),
    ]
    before = len(rig.emitted())
    rig.send({"type": "identify", "anonymousId": "a1", "userId": "jane"}, at_ms=T0 + 2000)
    rig.run(consumer)
    loser, winner = merged(rig)
    new = rig.emitted()[before:]
    # Three orders: the merged profile is not "ordered once"; a1 was sent as a member: one
    # exit, with the merged profile's ids (a1's among them). Both were "ordered": nothing.
    assert tracks(new) == [("Audience Exited", "ordered_once", "jane")]
    exited = next(e for e in new if e.get("event") == "Audience Exited")
    assert (exited["userId"], exited["anonymousId"]) == ("jane", "a1")
    assert members(rig, "ordered_once") == set()
    assert members(rig, "ordered") == {winner}
    assert loser not in {p for a in ("ordered", "ordered_once") for p in members(rig, a)}
    rig.run(consumer)
    assert len(rig.emitted()) == before + len(new)  # sent once


def test_a_member_merged_into_a_non_member_enters_with_the_merged_ids(rig: Rig) -> None:
    consumer = rig.engage(definitions([ORDERS], [ORDERED]))
    rig.send({"userId": "jane", "event": "Viewed"})
    rig.send(order(anonymousId="a1"), at_ms=T0 + 1000)
    rig.run(consumer)
    assert tracks(rig.emitted()) == [("Audience Entered", "ordered", "a1")]
    rig.send({"type": "identify", "anonymousId": "a1", "userId": "jane"}, at_ms=T0 + 2000)
    rig.run(consumer)
    loser, winner = merged(rig)
    assert winner in members(rig, "ordered") and loser not in members(rig, "ordered")
    # jane's profile (the older) won and was not a member: the merged profile, known by
    # jane's id now, enters; a1's membership is taken over, not sent again.
    assert tracks(rig.emitted()) == [
        ("Audience Entered", "ordered", "a1"),
        ("Audience Entered", "ordered", "jane"),
    ]


def test_the_exit_is_sent_when_the_merge_is_read_by_a_recomputation(rig: Rig) -> None:
    defs = definitions([ORDERS], [ORDERED_ONCE])
    consumer = rig.engage(defs)
    rig.send(order(userId="jane"), order(userId="jane"))
    rig.send(order(anonymousId="a1"), at_ms=T0 + 1000)
    rig.run(consumer)
    assert tracks(rig.emitted())[-1] == ("Audience Entered", "ordered_once", "a1")
    before = len(rig.emitted())
    # The merge is in the log before Engage reads it, and the definitions change: it is read
    # with emission off, then the sweep compares.
    rig.send({"type": "identify", "anonymousId": "a1", "userId": "jane"}, at_ms=T0 + 2000)
    identity = IdentityConsumer(rig.store, rig.db, SPACE, rules_from(None))
    identity.prepare()
    identity.run_until_caught_up()
    consumer = rig.engage(definitions([ORDERS], [ORDERED_ONCE, ORDERED]))
    rig.run(consumer)
    new = tracks(rig.emitted()[before:])
    assert ("Audience Exited", "ordered_once", "jane") in new
    assert [t for t in new if t[1] == "ordered_once"] == [
        ("Audience Exited", "ordered_once", "jane")
    ]
    assert members(rig, "ordered_once") == set()


def test_an_exit_goes_under_each_of_the_profiles_ids(rig: Rig) -> None:
    """Segment sends every id combination for an exit: a destination that was told of the
    member by an older anonymous id (here one a merge brought in) must be told it left."""
    consumer = rig.engage(definitions([ORDERS], [ORDERED_ONCE]))
    rig.send(order(anonymousId="a1"), at_ms=T0 + 1000)
    rig.run(consumer)
    rig.send({"type": "identify", "anonymousId": "a2", "userId": "jane",
              "traits": {"email": "jane@example.com"}}, at_ms=T0 + 2000)  # fmt: skip
    rig.send({"type": "identify", "anonymousId": "a1", "userId": "jane"}, at_ms=T0 + 3000)
    rig.run(consumer)
    before = len(rig.emitted())
    rig.send(order(userId="jane"), at_ms=T0 + 4000)  # a second order: not "ordered once"
    rig.run(consumer)
    new = rig.emitted()[before:]
    exits = [e for e in new if e.get("event") == "Audience Exited"]
    audience = [e for e in new if e["context"]["personas"]["computation_class"] == "audience"]
    identifies = [e for e in audience if e["type"] == "identify"]
    # The newest anonymous id is carried first, then each other id of the profile.
    assert [(e["userId"], e["anonymousId"]) for e in exits] == [("jane", "a2"), ("jane", "a1")]
    assert [(e["anonymousId"], e["traits"]) for e in identifies] == [
        ("a2", {"ordered_once": False}),
        ("a1", {"ordered_once": False}),
    ]
    assert all(e["context"]["traits"] == {"email": "jane@example.com"} for e in new)
    assert len({e["messageId"] for e in audience}) == len(audience) == 4
    rig.run(consumer)
    assert len(rig.emitted()) == before + len(new)  # sent once
    # Entries are sent under the newest ids only, as before.
    entered = [e for e in rig.emitted()[:before] if e.get("event") == "Audience Entered"]
    assert len(entered) == 1
