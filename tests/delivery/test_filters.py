"""Destination filters: the document, Segment's order of actions, fail-closed, and sampling."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sluice.delivery.filters import (
    MAX_FILTERS,
    AllowPropertiesAction,
    DropAction,
    DropPropertiesAction,
    Filter,
    FilterError,
    FilterResult,
    SampleAction,
    apply_filters,
    filter_errors,
    parse_filters,
    sample_fraction,
)
from sluice.errors import SluiceError

EVENT: dict[str, Any] = {
    "type": "track",
    "event": "Order Completed",
    "messageId": "m-1",
    "userId": "u-1",
    "anonymousId": "a-1",
    "properties": {
        "email": "jane@example.com",
        "plan": "pro",
        "total": 30,
        "products": [
            {"sku": "A", "price": 10, "name": "Shoe"},
            {"sku": "B", "price": 20, "name": "Sock"},
            "not an object",
        ],
        "address": {"city": "Paris", "street": "Rue X"},
    },
    "context": {"ip": "1.2.3.4", "library": {"name": "analytics.js"}},
}


def doc(title: str = "f", condition: str = "all", *actions: dict[str, Any], **extra: Any) -> dict:
    return {"title": title, "if": condition, "actions": list(actions), **extra}


def run(*docs: dict[str, Any], event: dict[str, Any] | None = None) -> FilterResult:
    return apply_filters(parse_filters(list(docs)), EVENT if event is None else event)


DROP = {"type": "drop"}


# --- the document ------------------------------------------------------------------------------


def test_parse_a_full_document() -> None:
    [flt] = parse_filters(
        [
            {
                "id": "df_1",
                "sourceId": "src",
                "destinationId": "dst",
                "title": "No PII",
                "description": "strip emails",
                "enabled": False,
                "if": "type = 'track'",
                "actions": [
                    {"type": "DROP"},
                    {"type": "Sample", "percent": 0.5, "path": "userId"},
                    {"type": "DROP_PROPERTIES", "fields": {"properties": ["email"]}},
                    {"type": "allow_properties", "fields": {"": ["type"]}},
                ],
            }
        ]
    )
    assert flt.title == "No PII"
    assert flt.description == "strip emails"
    assert flt.enabled is False
    assert flt.condition == "type = 'track'"
    assert flt.error is None
    assert flt.actions == (
        DropAction(),
        SampleAction(percent=0.5, path="userId"),
        DropPropertiesAction(fields={"properties": ["email"]}),
        AllowPropertiesAction(fields={"": ["type"]}),
    )


def test_defaults() -> None:
    [flt] = parse_filters([doc("t", "all", DROP)])
    assert (flt.enabled, flt.description, flt.error) == (True, None, None)
    assert parse_filters([]) == []


INVALID_DOCS: list[tuple[str, list[Any], int | None, str | None, str]] = [
    # (id, documents, index, field, words in the message)
    ("too many", [doc(str(i), "all", DROP) for i in range(MAX_FILTERS + 1)], MAX_FILTERS, None,
     "at most 10 filters"),
    ("not an object", [doc("t", "all", DROP), "drop"], 1, None, "a filter is an object"),
    ("missing title", [{"if": "all", "actions": [DROP]}], 0, "title", "missing required field"),
    ("missing if", [{"title": "t", "actions": [DROP]}], 0, "if", "missing required field"),
    ("unknown field", [doc("t", "all", DROP, when="all")], 0, "when", "unknown field"),
    ("empty title", [doc("", "all", DROP)], 0, "title", "length >= 1"),
    ("title too long", [doc("x" * 65, "all", DROP)], 0, "title", "length <= 64"),
    ("no actions", [doc("t", "all")], 0, "actions", "length >= 1"),
    ("enabled not a bool", [doc("t", "all", DROP, enabled="yes")], 0, "enabled",
     "Expected `bool`"),
    ("unknown action", [doc("t", "all", {"type": "explode"})], 0, "actions[0].type",
     "expected one of sample, drop, drop_properties, allow_properties"),
    ("action without type", [doc("t", "all", {"percent": 1})], 0, "actions[0].type",
     "missing required field"),
    ("drop with fields", [doc("t", "all", {"type": "drop", "fields": {}})], 0,
     "actions[0].fields", "unknown field"),
    ("sample without percent", [doc("t", "all", {"type": "sample"})], 0, "actions[0].percent",
     "missing required field"),
    ("percent above 1", [doc("t", "all", DROP, {"type": "sample", "percent": 10})], 0,
     "actions[1].percent", "<= 1"),
    ("negative percent", [doc("t", "all", {"type": "sample", "percent": -0.1})], 0,
     "actions[0].percent", ">= 0"),
    ("empty sample path", [doc("t", "all", {"type": "sample", "percent": 0.1, "path": ""})], 0,
     "actions[0].path", "length >= 1"),
    ("fields not an object", [doc("t", "all", {"type": "drop_properties", "fields": ["a"]})], 0,
     "actions[0].fields", "Expected `object`"),
    ("field not a string", [doc("t", "all", {"type": "allow_properties",
                                             "fields": {"properties": [1]}})], 0,
     "actions[0].fields[...][0]", "Expected `str`"),
    ("empty field name", [doc("t", "all", {"type": "drop_properties",
                                           "fields": {"properties": [""]}})], 0,
     "actions[0].fields[...][0]", "length >= 1"),
    ("empty segment", [doc("t", "all", {"type": "drop_properties",
                                        "fields": {"properties": ["a..b"]}})], 0,
     "actions[0].fields.properties", "empty segment"),
    ("empty segment in the object", [doc("t", "all", {"type": "drop_properties",
                                                      "fields": {"properties.": ["a"]}})], 0,
     "actions[0].fields.properties.", "empty segment"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("docs", "index", "field", "words"),
    [c[1:] for c in INVALID_DOCS],
    ids=[c[0] for c in INVALID_DOCS],
)
def test_invalid_documents(
    docs: list[Any], index: int | None, field: str | None, words: str
) -> None:
    with pytest.raises(FilterError) as info:
        parse_filters(docs)
    error = info.value
    assert isinstance(error, SluiceError)
    assert (error.index, error.field) == (index, field)
    assert words in error.message
    assert str(error).startswith(f"filter #{index}")


# --- invalid conditions: refused when new, fail-closed when stored ------------------------------


@pytest.mark.parametrize("enabled", [True, False], ids=["enabled", "disabled"])
def test_strict_parsing_refuses_a_condition_that_does_not_compile(enabled: bool) -> None:
    # New configuration is refused, as a mapping's trigger is: a disabled filter too.
    docs = [doc("ok", "all", DROP), doc("broken", 'userId = oops"', DROP, enabled=enabled)]
    with pytest.raises(FilterError) as info:
        parse_filters(docs, strict=True)
    error = info.value
    assert (error.index, error.field) == (1, "if")
    assert error.message == "unterminated string at position 13 in 'userId = oops\"'"
    assert str(error) == f"filter #1, field if: {error.message}"
    assert [f.title for f in parse_filters(docs[:1], strict=True)] == ["ok"]


def test_filter_errors_name_each_enabled_filter_that_drops_everything() -> None:
    filters = parse_filters(
        [
            doc("ok", "all", DROP),
            doc("broken", "type = ", DROP),
            doc("off", "type = ", DROP, enabled=False),
            doc("leaky", "event =", {"type": "drop_properties", "fields": {"": ["userId"]}}),
        ]
    )
    assert filter_errors(filters) == [
        "filter #1 'broken', field if: expected a value, a field or '(' but the expression"
        " ends at position 7 in 'type = '",
        "filter #3 'leaky', field if: expected a value, a field or '(' but the expression"
        " ends at position 7 in 'event ='",
    ]
    assert filter_errors(parse_filters([doc("ok", "all", DROP)])) == []


def test_invalid_condition_is_kept_and_drops_everything() -> None:
    filters = parse_filters([doc("broken", 'userId = oops"', DROP), doc("ok", "all", DROP)])
    assert filters[0].error is not None
    assert "unterminated string at position 13" in filters[0].error
    assert filters[1].error is None
    for event in (EVENT, {"type": "page"}, {}):
        assert apply_filters(filters, event) == (None, "invalid_filter:broken")


def test_invalid_condition_of_a_property_filter_still_drops() -> None:
    action = {"type": "drop_properties", "fields": {"properties": ["email"]}}
    assert run(doc("leaky", "type = ", action)) == (None, "invalid_filter:leaky")


def test_disabled_invalid_filter_is_ignored() -> None:
    assert run(doc("broken", "type = ", DROP, enabled=False)) == (EVENT, None)


# --- order -------------------------------------------------------------------------------------

SAMPLE_NONE = {"type": "sample", "percent": 0}
DROP_EMAIL = {"type": "drop_properties", "fields": {"properties": ["email"]}}
ALLOW_PLAN = {"type": "allow_properties", "fields": {"properties": ["plan", "email"]}}

ORDER_CASES = [
    # (id, documents, expected reason, or the expected properties when sent)
    ("no filters", [], None, EVENT["properties"]),
    ("drop matching", [doc("tracks", "type = 'track'", DROP)], "filter:tracks", None),
    ("drop not matching", [doc("pages", "type = 'page'", DROP)], None, EVENT["properties"]),
    ("only send: a drop with a negated condition",
     [doc("only orders", "!(event = 'Order Completed')", DROP)], None, EVENT["properties"]),
    ("only send, other event", [doc("only signups", "!(event = 'Signed Up')", DROP)],
     "filter:only signups", None),
    ("conflicting only-sends send nothing",
     [doc("only orders", "!(event = 'Order Completed')", DROP),
      doc("only signups", "!(event = 'Signed Up')", DROP)], "filter:only signups", None),
    ("sample runs before drop, whatever the order",
     [doc("drop all", "all", DROP), doc("sample none", "all", SAMPLE_NONE)],
     "sample:sample none", None),
    ("the first dropping filter names the reason",
     [doc("a", "all", DROP), doc("b", "all", DROP)], "filter:a", None),
    ("drop before property edits",
     [doc("strip", "all", DROP_EMAIL), doc("drop", "all", DROP)], "filter:drop", None),
    ("drop properties, then allow properties",
     [doc("allow", "all", ALLOW_PLAN), doc("strip", "all", DROP_EMAIL)], None, {"plan": "pro"}),
    ("sample that keeps, then edits",
     [doc("keep all", "all", {"type": "sample", "percent": 1}), doc("strip", "all", DROP_EMAIL)],
     None, {k: v for k, v in EVENT["properties"].items() if k != "email"}),
    ("conditions see the event as received",
     [doc("strip", "all", {"type": "drop_properties", "fields": {"properties": ["plan"]}}),
      doc("drop pro", "properties.plan = 'pro'", DROP)], "filter:drop pro", None),
    ("edits of non-matching filters do not apply",
     [doc("strip pages", "type = 'page'", DROP_EMAIL)], None, EVENT["properties"]),
    ("disabled filters do nothing",
     [doc("off", "all", DROP, enabled=False), doc("off2", "all", DROP_EMAIL, enabled=False)],
     None, EVENT["properties"]),
    ("two allow lists keep what both allow",
     [doc("a", "all", ALLOW_PLAN),
      doc("b", "all", {"type": "allow_properties", "fields": {"properties": ["plan", "total"]}})],
     None, {"plan": "pro"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("docs", "reason", "properties"), [c[1:] for c in ORDER_CASES], ids=[c[0] for c in ORDER_CASES]
)
def test_order(docs: list[dict[str, Any]], reason: str | None, properties: Any) -> None:
    event, why = run(*docs)
    assert why == reason
    if reason is None:
        assert event is not None
        assert event["properties"] == properties
    else:
        assert event is None


# --- drop_properties and allow_properties ------------------------------------------------------

PRODUCTS = EVENT["properties"]["products"]

EDITS = [
    # (id, action, the expected event; `...` in a dict means "the rest as in EVENT")
    ("drop properties and context",
     {"type": "drop_properties", "fields": {"properties": ["email"], "context": ["ip"]}},
     {"properties": {**EVENT["properties"], "email": ...},
      "context": {"library": {"name": "analytics.js"}}}),
    ("drop top-level fields",
     {"type": "drop_properties", "fields": {"": ["userId", "anonymousId"]}},
     {"userId": ..., "anonymousId": ...}),
    ("drop a nested field",
     {"type": "drop_properties", "fields": {"properties": ["address.street"]}},
     {"properties": {**EVENT["properties"], "address": {"city": "Paris"}}}),
    ("drop a nested field, dotted object",
     {"type": "drop_properties", "fields": {"properties.address": ["street"]}},
     {"properties": {**EVENT["properties"], "address": {"city": "Paris"}}}),
    ("drop in every array element",
     {"type": "drop_properties", "fields": {"properties": ["products.price"]}},
     {"properties": {**EVENT["properties"], "products": [
         {"sku": "A", "name": "Shoe"}, {"sku": "B", "name": "Sock"}, "not an object"]}}),
    ("drop in every array element, dotted object",
     {"type": "drop_properties", "fields": {"properties.products": ["price", "name"]}},
     {"properties": {**EVENT["properties"], "products": [{"sku": "A"}, {"sku": "B"},
                                                         "not an object"]}}),
    ("drop a whole array",
     {"type": "drop_properties", "fields": {"properties": ["products"]}},
     {"properties": {**EVENT["properties"], "products": ...}}),
    ("drop missing fields changes nothing",
     {"type": "drop_properties", "fields": {"properties": ["nope", "email.deeper"],
                                            "traits": ["email"], "": ["nope"]}},
     {}),
    ("allow properties",
     {"type": "allow_properties", "fields": {"properties": ["plan", "total", "nope"]}},
     {"properties": {"plan": "pro", "total": 30}}),
    ("allow in every array element",
     {"type": "allow_properties", "fields": {"properties": ["products.sku"]}},
     {"properties": {"products": [{"sku": "A"}, {"sku": "B"}, "not an object"]}}),
    ("allow in every array element, dotted object",
     {"type": "allow_properties", "fields": {"properties.products": ["sku"]}},
     {"properties": {**EVENT["properties"], "products": [{"sku": "A"}, {"sku": "B"},
                                                         "not an object"]}}),
    ("allow a whole object wins over its parts",
     {"type": "allow_properties", "fields": {"properties": ["address.city", "address"]}},
     {"properties": {"address": EVENT["properties"]["address"]}}),
    ("allow nested parts",
     {"type": "allow_properties", "fields": {"properties": ["address.city", "plan"]}},
     {"properties": {"plan": "pro", "address": {"city": "Paris"}}}),
    ("allow at the top level",
     {"type": "allow_properties", "fields": {"": ["type", "event", "messageId"]}},
     None),
    ("allow in two objects",
     {"type": "allow_properties", "fields": {"properties": ["plan"], "context": ["ip"]}},
     {"properties": {"plan": "pro"}, "context": {"ip": "1.2.3.4"}}),
    ("allow on a missing object changes nothing",
     {"type": "allow_properties", "fields": {"traits": ["email"]}},
     {}),
]  # fmt: skip


def expected_event(changes: dict[str, Any] | None) -> dict[str, Any]:
    if changes is None:  # the top-level allow case
        return {"type": "track", "event": "Order Completed", "messageId": "m-1"}
    event = {**EVENT, **changes}

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if v is not ...}
        return value

    return strip(event)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("action", "changes"), [c[1:] for c in EDITS], ids=[c[0] for c in EDITS])
def test_property_edits(action: dict[str, Any], changes: dict[str, Any] | None) -> None:
    before = copy.deepcopy(EVENT)
    event, reason = run(doc("edit", "all", action))
    assert reason is None
    assert event == expected_event(changes)
    assert before == EVENT  # never mutated
    if changes == {}:
        assert event is EVENT  # nothing changed: the same object


def test_edits_copy_only_what_changes() -> None:
    event, _ = run(doc("edit", "all", DROP_EMAIL))
    assert event is not None and event is not EVENT
    assert event["properties"] is not EVENT["properties"]
    assert event["context"] is EVENT["context"]
    assert event["properties"]["products"] is EVENT["properties"]["products"]
    assert event["properties"]["address"] is EVENT["properties"]["address"]


def test_array_edit_copies_only_changed_elements() -> None:
    action = {"type": "drop_properties", "fields": {"properties": ["products.price"]}}
    items = [{"sku": "A"}, {"sku": "B", "price": 1}]
    source = {"type": "track", "properties": {"products": items}}
    event, _ = run(doc("edit", "all", action), event=source)
    assert event is not None
    assert event["properties"]["products"][0] is items[0]
    assert event["properties"]["products"][1] == {"sku": "B"}
    assert items[1] == {"sku": "B", "price": 1}


# --- sampling ----------------------------------------------------------------------------------


def sample(percent: float, path: str | None = None, condition: str = "all") -> list[Filter]:
    action: dict[str, Any] = {"type": "sample", "percent": percent}
    if path is not None:
        action["path"] = path
    return parse_filters([doc("s", condition, action)])


def kept(filters: list[Filter], event: dict[str, Any]) -> bool:
    result, reason = apply_filters(filters, event)
    assert (result is None) == (reason == "sample:s")
    return result is not None


def test_sample_fraction_is_a_pure_function_in_range() -> None:
    for value in ("u-1", 42, None, ["a"], {"k": 1}, 1.5, ""):
        fraction = sample_fraction(value)
        assert 0 <= fraction < 1
        assert sample_fraction(value) == fraction
    assert sample_fraction(5.0) == sample_fraction(5)  # JSON.stringify(5.0) is "5"
    assert sample_fraction("5") != sample_fraction(5)


@pytest.mark.parametrize("percent", [0.1, 0.5, 0.9])
def test_sampling_keeps_about_percent(percent: float) -> None:
    filters = sample(percent, "userId")
    count = 20_000
    events = ({"type": "track", "messageId": "m", "userId": f"user-{i}"} for i in range(count))
    share = sum(kept(filters, event) for event in events) / count
    assert abs(share - percent) < 0.02


def test_sampling_by_path_is_the_same_for_a_user() -> None:
    filters = sample(0.5, "userId")
    decisions = {
        user: {kept(filters, {"userId": user, "messageId": f"m-{i}"}) for i in range(20)}
        for user in (f"user-{n}" for n in range(50))
    }
    assert all(len(seen) == 1 for seen in decisions.values())
    assert {True, False} == {next(iter(seen)) for seen in decisions.values()}


def test_sampling_without_path_uses_the_message_id() -> None:
    filters = sample(0.5)
    decisions = [kept(filters, {"messageId": f"m-{i}", "userId": "same"}) for i in range(200)]
    assert 50 < sum(decisions) < 150
    again = [kept(filters, {"messageId": f"m-{i}", "userId": "other"}) for i in range(200)]
    assert decisions == again


def test_sampling_without_message_id_is_still_deterministic() -> None:
    filters = sample(0.5)
    events = [{"type": "track", "n": i} for i in range(100)]
    first = [kept(filters, event) for event in events]
    assert first == [kept(filters, event) for event in events]
    assert 0 < sum(first) < 100


def test_sampling_by_nested_path() -> None:
    filters = sample(0.5, "properties.account.id")
    a = [
        kept(filters, {"properties": {"account": {"id": 7}}, "messageId": str(i)}) for i in range(9)
    ]
    assert len(set(a)) == 1


@pytest.mark.parametrize(("percent", "expected"), [(0, False), (1, True)])
def test_sampling_bounds(percent: float, expected: bool) -> None:
    filters = sample(percent, "userId")
    assert all(kept(filters, {"userId": f"u{i}"}) is expected for i in range(100))


def test_sampling_applies_to_matching_events_only() -> None:
    filters = sample(0, condition="type = 'page'")
    assert apply_filters(filters, {"type": "track"}) == ({"type": "track"}, None)
    assert apply_filters(filters, {"type": "page"}) == (None, "sample:s")


def test_result_is_a_tuple() -> None:
    event, reason = apply_filters([], EVENT)
    assert event is EVENT and reason is None
    assert isinstance(apply_filters([], EVENT), tuple)
