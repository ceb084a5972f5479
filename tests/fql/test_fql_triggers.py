"""Actions triggers: the FQL subset of `@segment/destination-subscriptions`, with its semantics."""

from __future__ import annotations

from typing import Any

import pytest

from sluice.fql import FqlError, compile_trigger

TRACK = {"type": "track", "event": "Order Completed", "userId": "u1", "properties": {}}


def track(**properties: Any) -> dict[str, Any]:
    return {**TRACK, "properties": properties}


# (id, trigger, event, matches)
CASES: list[tuple[str, str, dict[str, Any], bool]] = [
    # Segment's typical defaults.
    ("type track", 'type = "track"', TRACK, True),
    ("type identify", 'type = "identify"', TRACK, False),
    ("track and event", 'type = "track" and event = "Order Completed"', TRACK, True),
    ("track and other event", 'type = "track" and event = "Order Completed"',
     {**TRACK, "event": "Product Added"}, False),
    ("identify or track", 'type = "identify" or type = "track"', {"type": "identify"}, True),
    ("identify or track, page", 'type = "identify" or type = "track"', {"type": "page"}, False),
    ("audience entered", 'event = "Audience Entered"', {"event": "Audience Entered"}, True),
    ("single quotes too", "type = 'track'", TRACK, True),
    ("type != group", 'type != "group"', TRACK, True),
    ("name", 'name = "Home"', {"type": "page", "name": "Home"}, True),
    ("userId", 'userId = "u1"', TRACK, True),
    # `=` compares the string form.
    ("string equals string", 'properties.value = "x"', track(value="x"), True),
    ("string differs", 'properties.value = "x"', track(value="y"), False),
    ("number literal vs number", "properties.value = 123", track(value=123), True),
    ("number literal vs numeric string", "properties.value = 123", track(value="123"), True),
    ("string literal vs number", 'properties.value = "123"', track(value=123), True),
    ("number literal vs 0", "properties.value = 123", track(value=0), False),
    ("integral float", "properties.value = 5", track(value=5.0), True),
    ("float literal", "properties.value = 5.0", track(value=5), True),
    ("float value", 'properties.value = "2.5"', track(value=2.5), True),
    ("true vs true", "properties.value = true", track(value=True), True),
    ("true vs 'true'", "properties.value = true", track(value="true"), True),
    ("true vs false", "properties.value = true", track(value=False), False),
    ("false vs false", "properties.value = false", track(value=False), True),
    ("quoted 'true' vs true", 'properties.premium = "true"', track(premium=True), True),
    ("list string form", 'properties.value = "a,b"', track(value=["a", "b"]), True),
    ("object string form", 'properties.value = "[object Object]"', track(value={"a": 1}), True),
    ("missing is 'undefined'", 'properties.value = "undefined"', track(), True),
    ("!= string", 'properties.value != "x"', track(value="x"), False),
    ("!= other string", 'properties.value != "x"', track(value="y"), True),
    ("!= number vs numeric string", "properties.value != 123", track(value="123"), False),
    ("!= number vs other", "properties.value != 123", track(value=456), True),
    ("!= on a missing field", 'properties.value != "x"', track(), True),
    # null means "does not exist".
    ("= null on missing", "properties.value = null", track(), True),
    ("= null on null", "properties.value = null", track(value=None), True),
    ("= null on a value", "properties.value = null", track(value="x"), False),
    ("= null on empty string", "properties.value = null", track(value=""), False),
    ("!= null on a value", "properties.value != null", track(value="abcx"), True),
    ("!= null on false", "properties.value != null", track(value=False), True),
    ("!= null on missing", "properties.value != null", track(), False),
    ("!= null on null", "properties.value != null", track(value=None), False),
    ("userId exists", "userId != null", TRACK, True),
    ("userId does not exist", "userId != null", {"type": "track"}, False),
    ("event missing = null", "event = null", {"type": "page"}, True),
    # Ordering needs numbers.
    ("< number", "properties.value < 10", track(value=5), True),
    ("< numeric string", "properties.value < 10", track(value="5"), True),
    ("< equal", "properties.value < 10", track(value=10), False),
    ("<= equal string", "properties.value <= 10", track(value="10"), True),
    ("<= greater", "properties.value <= 10", track(value=11), False),
    ("> greater string", "properties.value > 10", track(value="11"), True),
    ("> equal", "properties.value > 10", track(value=10), False),
    (">= equal", "properties.value >= 10", track(value=10), True),
    (">= smaller string", "properties.value >= 10", track(value="5"), False),
    ("string literal bound", 'properties.value > "10"', track(value=11), True),
    ("float bound", "properties.value > 1.5", track(value=2), True),
    ("padded numeric string", "properties.value > 1", track(value=" 2 "), True),
    ("> on a word", "properties.value > 1", track(value="abc"), False),
    ("> on an empty string", "properties.value > -1", track(value=""), False),
    ("> on null", "properties.value > -1", track(value=None), False),
    ("> on missing", "properties.value > -1", track(), False),
    ("> on a bool", "properties.value > 0", track(value=True), False),
    ("> on a list", "properties.value > 0", track(value=[1]), False),
    ("> on 'Infinity'", "properties.value > 0", track(value="Infinity"), False),
    # contains / match need strings.
    ("contains", 'contains(properties.value, "b")', track(value="abc"), True),
    ("contains, no", 'contains(properties.value, "b")', track(value="xyz"), False),
    ("contains on a number", 'contains(properties.value, "1")', track(value=123), False),
    ("contains on missing", 'contains(properties.value, "b")', track(), False),
    ("!contains", '!contains(properties.value, "b")', track(value="abc"), False),
    ("!contains, yes", '!contains(properties.value, "b")', track(value="xyz"), True),
    ("!contains on missing", '!contains(properties.value, "b")', track(), False),
    ("!contains on a number", '!contains(properties.value, "b")', track(value=1), False),
    ("contains on event", 'contains(event, "Order")', TRACK, True),
    ("starts with", 'match(properties.value, "x*")', track(value="xabc"), True),
    ("starts with, no", 'match(properties.value, "x*")', track(value="abc"), False),
    ("!starts with", '!match(properties.value, "x*")', track(value="abc"), True),
    ("!starts with, no", '!match(properties.value, "x*")', track(value="xabc"), False),
    ("ends with", 'match(properties.value, "*x")', track(value="abcx"), True),
    ("ends with, no", 'match(properties.value, "*x")', track(value="abc"), False),
    ("!ends with", '!match(properties.value, "*x")', track(value="abc"), True),
    ("!ends with, no", '!match(properties.value, "*x")', track(value="abcx"), False),
    ("match on missing", 'match(properties.value, "x*")', track(), False),
    ("!match on missing", '!match(properties.value, "x*")', track(), False),
    ("match is case-sensitive", 'match(event, "order*")', TRACK, False),
    ("match on event name", 'match(event, "Order*")', TRACK, True),
    # properties and traits are the same thing, chosen by the call type.
    ("properties on identify reads traits", 'properties.plan = "pro"',
     {"type": "identify", "traits": {"plan": "pro"}}, True),
    ("traits on identify", 'traits.plan = "pro"',
     {"type": "identify", "traits": {"plan": "pro"}}, True),
    ("traits on group", 'traits.plan = "pro"', {"type": "group", "traits": {"plan": "pro"}}, True),
    ("traits on track reads properties", "traits.logins >= 10", track(logins=12), True),
    ("traits on track ignore context.traits", 'traits.plan = "pro"',
     {**TRACK, "context": {"traits": {"plan": "pro"}}}, False),
    ("nested property", 'properties.address.city = "Paris"',
     track(address={"city": "Paris"}), True),
    ("list position", 'properties.products.0.sku = "A"', track(products=[{"sku": "A"}]), True),
    ("null on the way is null", "properties.address.city = null", track(address=None), True),
    ("null on the way, string form", 'properties.a.b = "null"', track(a=None), True),
    ("context", 'context.ip = "1.1.1.1"', {"context": {"ip": "1.1.1.1"}}, True),
    ("context, other ip", 'context.ip = "1.1.1.1"', {"context": {"ip": "8.8.8.8"}}, False),
    ("context missing", 'context.ip = "1.1.1.1"', {"type": "track"}, False),
    ("escaped field name", 'properties.product\\ 1 = "x"', track(**{"product 1": "x"}), True),
    # Groups.
    ("and of three", 'event = "Product Added" and properties.price >= 100 and '
     'properties.premium = "true"',
     {"event": "Product Added", "properties": {"price": 150, "premium": True}}, True),
    ("and with an or group", 'type = "track" and (event = "Product Added" or '
     'event = "Order Completed")', TRACK, True),
    ("and with an or group, no", 'type = "track" and (event = "Product Added" or '
     'event = "Signed Up")', TRACK, False),
    ("or of and groups", '(event = "Product Added" and properties.price >= 100) or '
     '(event = "Order Completed" and properties.total >= 500)',
     {"event": "Order Completed", "properties": {"total": 600}}, True),
    ("or of and groups, no", '(event = "Product Added" and properties.price >= 100) or '
     '(event = "Order Completed" and properties.total >= 500)',
     {"event": "Order Completed", "properties": {"total": 60}}, False),
    ("identify and traits", '(event = "identify" and traits.logins >= 100) or '
     '(event = "Signed Up" and traits.age >= 50)',
     {"type": "track", "event": "Signed Up", "properties": {"age": 51}}, True),
    ("whole trigger in parentheses", '(type = "track")', TRACK, True),
    ("or of four", 'event = "a" or event = "b" or event = "c" or event = "Order Completed"',
     TRACK, True),
    # Spellings Segment's parser takes and its presets use (Pinterest, Amazon, Equals).
    ("upper-case AND", 'type = "track" AND event = "Order Completed"', TRACK, True),
    ("upper-case AND, other event", 'type = "track" AND event = "Signed Up"', TRACK, False),
    ("mixed-case Or", 'type = "page" Or type = "track"', TRACK, True),
    ("bare word value", "type = track or type = page", TRACK, True),
    ("bare word value, no match", "type = identify or type = group", TRACK, False),
    ("a quoted AND stays a string", 'event = "AND"', {"event": "AND"}, True),
    ("a word on the right is a string", "event = name", {"event": "name", "name": "x"}, True),
    ("a path on the right too", "event = properties.b", {"event": "properties.b"}, True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("trigger", "event", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_trigger(trigger: str, event: dict[str, Any], expected: bool) -> None:
    assert compile_trigger(trigger)(event) is expected


def test_triggers_never_raise() -> None:
    predicate = compile_trigger('properties.a.b = "x" and context.ip != null')
    assert predicate({}) is False
    assert predicate({"properties": "not an object", "context": 5}) is False
    assert predicate({"properties": {"a": ["x"]}, "context": {"ip": "1"}}) is False


INVALID = [
    # (id, trigger, position, words in the message)
    ("empty", "", 0, "cannot be empty"),
    ("blank", "   ", 0, "cannot be empty"),
    ("all is a filter, not a trigger", "all", 0, "expected a condition"),
    ("bare word", "typo", 0, "expected a condition"),
    ("missing operator and value", "type", 0, "expected a condition"),
    ("missing value", "type = ", 7, "expression ends"),
    ("invalid operator", 'type * "32456"', 5, "unexpected character '*'"),
    ("unknown top-level field", 'anonymousId = "a"', 0, "triggers can test"),
    ("whole properties object", "properties = null", 0, "triggers can test"),
    ("dotted event", 'event.name = "x"', 0, "triggers can test"),
    ("literal on the left", '"track" = type', 0, "expected a field"),
    ("list value", 'type = ["track"]', 7, "expected a string, number"),
    ("in", 'type in ["track", "page"]', 5, "'in' is not supported"),
    ("ordering against a word", 'properties.total > "abc"', 19, "needs a number"),
    ("ordering against null", "properties.total > null", 19, "needs a number"),
    ("ordering against a bool", "properties.total > true", 19, "needs a number"),
    ("other function", "length(userId) > 0", 0, "expected a field"),
    ("other function alone", 'lowercase(event) = "x"', 0, "expected a field"),
    ("unsupported function call", "typeof(event)", 0, "not supported in triggers"),
    ("contains with a field", "contains(event, name)", 16, "needs a string"),
    ("contains arity", "contains(event)", 0, "takes a field and a string"),
    ("match without a star", 'match(event, "abc")', 13, "prefix*"),
    ("match with a middle star", 'match(event, "a*c")', 13, "prefix*"),
    ("match with two stars", 'match(event, "*a*")', 13, "prefix*"),
    ("match with a question mark", 'match(event, "a?*")', 13, "prefix*"),
    ("negated comparison", '!type = "track"', 0, "'!' may only precede"),
    ("negated group", '!(type = "track")', 0, "'!' may only precede"),
    ("two levels of parentheses", 'type = "a" and (event = "b" or (name = "c"))', 31,
     "one level of parentheses"),
    ("double parentheses", '((type = "track"))', 1, "one level of parentheses"),
    ("mixing and with or", 'type = "a" and event = "b" or name = "c"', 0,
     "mixing 'and' and 'or'"),
    ("mixing or with and", 'type = "a" or event = "b" and name = "c"', 14,
     "mixing 'and' and 'or'"),
    ("bare field in a group", 'type = "a" and properties.flag', 15, "expected a condition"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("trigger", "position", "words"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_outside_the_subset_is_rejected(trigger: str, position: int, words: str) -> None:
    with pytest.raises(FqlError) as info:
        compile_trigger(trigger)
    assert info.value.position == position
    assert words in info.value.message
