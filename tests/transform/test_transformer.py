"""Transformations compiled and applied to events (pure: no server), in Segment's semantics."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from sluice.transform.compile import build
from sluice.transform.paths import PathError, parse_path
from sluice.workspace.model_transformations import Transformation


def t(**fields: Any) -> Transformation:
    fields.setdefault("id", "t")
    fields.setdefault("source", "web")
    return msgspec.convert(fields, Transformation)


def apply(ts: list[Transformation], event: dict[str, Any]) -> tuple[dict[str, Any], int]:
    transformer = build(ts)
    assert transformer is not None
    skipped = transformer.apply(event)
    return event, skipped


def test_paths_split_on_dots_with_escapes_and_at_most_four_levels() -> None:
    assert parse_path("order.id") == ("order", "id")
    assert parse_path(r"a\.b.c") == ("a.b", "c")
    assert parse_path("a.b.c.d") == ("a", "b", "c", "d")
    with pytest.raises(PathError, match="at most 4"):
        parse_path("a.b.c.d.e")
    with pytest.raises(PathError, match="empty segment"):
        parse_path("a..b")
    with pytest.raises(PathError, match=r"array element"):
        parse_path("products.$.id")


def test_rename_event_only_for_that_event() -> None:
    rename = t(type="rename_event", event="order_completed", new_event_name="Order Completed")
    event, _ = apply([rename], {"type": "track", "event": "order_completed"})
    assert event["event"] == "Order Completed"
    other, _ = apply([rename], {"type": "track", "event": "Order Completed "})
    assert other["event"] == "Order Completed "  # exact, case- and space-sensitive


def test_property_moves_in_and_out_of_objects_leave_no_empty_husk() -> None:
    move = t(type="rename_properties", event="Checkout",
             renames=[{"old": "order.id", "new": "order_id"},
                      {"old": "total", "new": "totals.gross"},
                      {"old": r"a\.b", "new": "ab"}])  # fmt: skip
    event, skipped = apply(
        [move],
        {"type": "track", "event": "Checkout",
         "properties": {"order": {"id": 7}, "total": 9.5, "a.b": 1, "keep": True}},
    )  # fmt: skip
    assert skipped == 0
    assert event["properties"] == {"order_id": 7, "totals": {"gross": 9.5}, "ab": 1, "keep": True}


def test_a_rename_blocked_by_a_value_in_the_way_is_skipped_and_counted() -> None:
    move = t(type="rename_properties", event="E", renames=[{"old": "x", "new": "plan.name"}])
    event, skipped = apply([move], {"type": "track", "event": "E",
                                    "properties": {"x": 1, "plan": "pro"}})  # fmt: skip
    assert skipped == 1
    assert event["properties"] == {"x": 1, "plan": "pro"}  # nothing lost, nothing overwritten


def test_rename_event_and_rename_properties_of_one_event_both_apply() -> None:
    ts = [
        t(id="a", type="rename_event", event="order_completed", new_event_name="Order Completed"),
        t(id="b", type="rename_properties", event="order_completed",
          renames=[{"old": "revenue", "new": "total"}]),
    ]  # fmt: skip
    event, _ = apply(ts, {"type": "track", "event": "order_completed",
                          "properties": {"revenue": 3}})  # fmt: skip
    assert event == {"type": "track", "event": "Order Completed", "properties": {"total": 3}}


def test_traits_of_identify_and_group_calls() -> None:
    rename = t(type="rename_traits", call="identify", renames=[{"old": "mail", "new": "email"}])
    event, _ = apply([rename], {"type": "identify", "traits": {"mail": "a@b.co"}})
    assert event["traits"] == {"email": "a@b.co"}
    group, _ = apply([rename], {"type": "group", "traits": {"mail": "x"}})
    assert group["traits"] == {"mail": "x"}  # identify only


def test_set_values_and_casing() -> None:
    ts = [
        t(id="v", type="set_values", event="Paid",
          values=[{"paths": ["properties.currency", "context.app.flavour"], "value": "USD"}]),
        t(id="c", type="casing", event="Paid",
          casing={"fql": "lowercase(properties.Plan)", "property": "properties.plan"}),
    ]  # fmt: skip
    event, _ = apply(ts, {"type": "track", "event": "Paid", "properties": {"Plan": "PRO"}})
    assert event["properties"] == {"Plan": "PRO", "plan": "pro", "currency": "USD"}
    assert event["context"] == {"app": {"flavour": "USD"}}


def test_disabled_transformations_do_nothing() -> None:
    off = t(type="rename_event", event="a", new_event_name="b", enabled=False)
    assert build([off]) is None
