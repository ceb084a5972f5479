"""Full FQL evaluation: Segment's documented examples, strict types, nulls, functions and globs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from sluice.fql import FqlError, compile_filter, glob_match

# The event of Segment's FQL reference, with a few more fields for the edge cases.
EVENT: dict[str, Any] = {
    "event": "Button Clicked",
    "type": "track",
    "userId": "",
    "context": {"library": {"name": "analytics.js", "version": "1.0"}},
    "properties": {
        "features": ["discounts", "dark-mode"],
        "enabled": True,
        "disabled": False,
        "nothing": None,
        "total": 30,
        "price": 19.5,
        "one": 1,
        "one_float": 1.0,
        "one_string": "1",
        "zero": 0,
        "word": "Hello World",
        "katakana": "ア",
        "numbers": [1, 2, 3],
        "mixed": [1, "1", True, None],
        "product 1": {"price": "19.99"},
        "a.b": "dotted key",
        "dark-mode": "on",
        "products": [{"sku": "A"}, {"sku": "B"}],
        "object": {"x": 1, "y": [1, 2]},
        "object_copy": {"y": [1, 2], "x": 1},
        "empty_list": [],
        "empty_object": {},
        "padded": " 42 ",
    },
    "traits": {"email": "jane@company.com"},
    "received_at": "2023-04-22T10:00:00.000Z",
}


def check(expr: str, expected: bool, event: Mapping[str, Any] = EVENT) -> None:
    assert compile_filter(expr)(event) is expected, expr


DOCS_EXAMPLES = [
    ("event = 'Button Clicked'", True),
    ("event = 'Screen Tapped'", False),
    ("context.path.path = '/login'", False),
    ("type = 'identify' or type = 'track'", True),
    ("event = 'Button Clicked' and type = 'track'", True),
    ("match( context.library.version, '1.*' )", True),
    ("match( context.library.version, '2.*' )", False),
    ("type = 'track' and ( event = 'Click' or match( event, 'Button *' ) )", True),
    ("!contains( context.library.name, 'js' )", False),
    ("'dark-mode' in properties.features", True),
    ("'blink' in properties.features", False),
    ("( type = 'track' or type = 'identify' ) and "
     "( properties.enabled or match( traits.email, '*@company.com' ) )", True),
    ("!( type in ['track', 'identify'] )", False),
    ("length( userId ) < 1", True),
    ("length( userId ) > 0", False),
]  # fmt: skip


@pytest.mark.parametrize(("expr", "expected"), DOCS_EXAMPLES, ids=[e for e, _ in DOCS_EXAMPLES])
def test_segment_documented_examples(expr: str, expected: bool) -> None:
    check(expr, expected)


COMPARISONS = [
    # (id, expression, result)
    ("number equals number", "properties.total = 30", True),
    ("int equals float", "properties.one = 1.0", True),
    ("float field equals int", "properties.one_float = 1", True),
    ("number is not a string", "properties.one = '1'", False),
    ("string is not a number", "properties.one_string = 1", False),
    ("number is not a bool", "properties.one = true", False),
    ("bool is not a number", "properties.enabled = 1", False),
    ("zero is not false", "properties.zero = false", False),
    ("bool equals bool", "properties.enabled = true", True),
    ("false equals false", "properties.disabled = false", True),
    ("null equals null", "properties.nothing = null", True),
    ("missing equals null", "properties.missing = null", True),
    ("missing deep path is null", "context.page.path.deeper = null", True),
    ("empty string is not null", "userId = null", False),
    ("case-sensitive", "event = 'button clicked'", False),
    ("list equals list", "properties.features = ['discounts', 'dark-mode']", True),
    ("list order matters", "properties.features = ['dark-mode', 'discounts']", False),
    ("list elements are strict", "properties.numbers = [1, 2, '3']", False),
    ("list with floats", "properties.numbers = [1.0, 2, 3]", True),
    ("object equals object", "properties.object = properties.object_copy", True),
    ("object is not a list", "properties.object = properties.features", False),
    ("field equals field", "properties.one = properties.one_float", True),
    ("literal on the left", "'track' = type", True),
    ("!= different types", "properties.one != '1'", True),
    ("!= same value", "properties.total != 30", False),
    ("!= missing vs string", "properties.missing != 'x'", True),
    ("!= null vs null", "properties.nothing != null", False),
    ("!= exists", "event != null", True),
    ("> number", "properties.total > 29", True),
    (">= equal", "properties.total >= 30", True),
    ("< float", "properties.price < 19.6", True),
    ("<= negative", "properties.total <= -1", False),
    ("> between fields", "properties.total > properties.price", True),
    ("> string field is false", "properties.one_string > 0", False),
    ("< string field is false", "properties.one_string < 5", False),
    ("> bool is false", "properties.enabled > 0", False),
    ("> null is false", "properties.nothing > -1", False),
    ("< missing is false", "properties.missing < 1", False),
    ("> string literal is false", "properties.total > '1'", False),
    ("strings are not ordered", "received_at >= '2023-04-21T19:55:00.933Z'", False),
    ("function result ordered", "length(properties.features) >= 2", True),
]


@pytest.mark.parametrize(
    ("expr", "expected"), [c[1:] for c in COMPARISONS], ids=[c[0] for c in COMPARISONS]
)
def test_comparisons(expr: str, expected: bool) -> None:
    check(expr, expected)


MEMBERSHIP = [
    ("string in literal list", "type in ['page', 'track']", True),
    ("string not in literal list", "type in ['page', 'screen']", False),
    ("number in literal list", "properties.total in [10, 30]", True),
    ("float matches int in list", "properties.one_float in [1]", True),
    ("number is not a bool in list", "properties.one in [true]", False),
    ("bool is not a number in list", "properties.enabled in [1]", False),
    ("null in list", "properties.nothing in [null]", True),
    ("missing is null in list", "properties.missing in ['x', null]", True),
    ("empty list", "type in []", False),
    ("number in array field", "2 in properties.numbers", True),
    ("string not equal to number in array field", "'2' in properties.numbers", False),
    ("true in mixed array", "true in properties.mixed", True),
    ("null in mixed array", "null in properties.mixed", True),
    ("'1' in mixed array", "'1' in properties.mixed", True),
    ("field in field", "event in properties.features", False),
    ("array field missing", "'x' in properties.missing", False),
    ("not an array field", "'e' in properties.word", False),
    ("negated membership", "!(type in ['track', 'identify'])", False),
]


@pytest.mark.parametrize(
    ("expr", "expected"), [c[1:] for c in MEMBERSHIP], ids=[c[0] for c in MEMBERSHIP]
)
def test_membership(expr: str, expected: bool) -> None:
    check(expr, expected)


LOGIC = [
    ("bare true field", "properties.enabled", True),
    ("bare false field", "properties.disabled", False),
    ("bare string is not true", "event", False),
    ("bare number is not true", "properties.one", False),
    ("literal true", "true", True),
    ("literal false", "false", False),
    ("literal null", "null", False),
    ("null and true", "properties.nothing and true", False),
    ("missing or true", "properties.missing or type = 'track'", True),
    ("null or null", "properties.nothing or properties.missing", False),
    ("not null is true", "!properties.nothing", True),
    ("not missing is true", "!properties.missing", True),
    ("not string is true", "!event", True),
    ("not true", "!properties.enabled", False),
    ("double negation", "!!properties.enabled", True),
    ("three-way and", "type = 'track' and event != null and properties.total > 1", True),
    ("three-way or", "type = 'a' or type = 'b' or type = 'track'", True),
    ("and short-circuits on false", "type = 'page' and properties.total > 1", False),
    ("precedence: and before or", "type = 'page' and false or true", True),
    ("parentheses change it", "type = 'page' and (false or true)", False),
    ("! binds looser than =", "!type = 'page'", True),
    ("comparing a condition to true", "(type = 'track') = true", True),
    ("non-bool function result is false", "lowercase(event)", False),
]


@pytest.mark.parametrize(("expr", "expected"), [c[1:] for c in LOGIC], ids=[c[0] for c in LOGIC])
def test_boolean_logic_and_truth(expr: str, expected: bool) -> None:
    check(expr, expected)


FUNCTIONS = [
    ("contains", "contains(event, 'Click')", True),
    ("contains is case-sensitive", "contains(event, 'click')", False),
    ("contains empty substring", "contains(event, '')", True),
    ("contains needs strings", "contains(properties.total, '3')", False),
    ("contains with a field substring", "contains(event, type)", False),
    ("length of a string", "length(event) = 14", True),
    ("length counts UTF-8 bytes", "length(properties.katakana) = 3", True),
    ("length of a list", "length(properties.features) = 2", True),
    ("length of an empty list", "length(properties.empty_list) = 0", True),
    ("length of an object is null", "length(properties.object) = null", True),
    ("length of a number is null", "length(properties.total) = null", True),
    ("lowercase", "lowercase(event) = 'button clicked'", True),
    ("uppercase", "uppercase(event) = 'BUTTON CLICKED'", True),
    ("lowercase of a number is null", "lowercase(properties.total) = null", True),
    ("snakecase", "snakecase('test string') = 'test_string'", True),
    ("snakecase keeps case", "snakecase(properties.word) = 'Hello_World'", True),
    ("kebabcase", "kebabcase('test string') = 'test-string'", True),
    ("titlecase", "titlecase('test string') = 'Test String'", True),
    ("titlecase keeps other letters", "titlecase('hello wORLD  x') = 'Hello WORLD  X'", True),
    ("typeof string", "typeof(event) = 'string'", True),
    ("typeof number", "typeof(properties.price) = 'number'", True),
    ("typeof list", "typeof(properties.features) = 'list'", True),
    ("typeof bool", "typeof(properties.enabled) = 'bool'", True),
    ("typeof null", "typeof(properties.nothing) = 'null'", True),
    ("typeof missing", "typeof(properties.missing) = 'null'", True),
    ("typeof object", "typeof(properties.object) = 'object'", True),
    ("typeof literal list", "typeof([1]) = 'list'", True),
    ("bool of true string", "bool('true')", True),
    ("bool of '1'", "bool('1')", True),
    ("bool of false string", "bool('false') = false", True),
    ("bool of other string is null", "bool('yes') = null", True),
    ("bool of number", "bool(properties.total)", True),
    ("bool of zero", "bool(properties.zero) = false", True),
    ("bool of null", "bool(properties.nothing) = false", True),
    ("bool of a list", "bool(properties.features)", True),
    ("bool of an empty list", "bool(properties.empty_list) = false", True),
    ("string of a number", "string(properties.total) = '30'", True),
    ("string of an integral float", "string(properties.one_float) = '1'", True),
    ("string of a float", "string(properties.price) = '19.5'", True),
    ("string of a bool", "string(properties.enabled) = 'true'", True),
    ("string of null", "string(properties.nothing) = 'null'", True),
    ("string of a list", 'string(properties.features) = \'["discounts","dark-mode"]\'', True),
    ("string of a string", "string(event) = 'Button Clicked'", True),
    ("number of a numeric string", "number(properties.one_string) = 1", True),
    ("number of a padded string", "number(properties.padded) = 42", True),
    ("number of a float string", "number('2.5') > 2", True),
    ("number of a word is null", "number(event) = null", True),
    ("number of a bool is null", "number(properties.enabled) = null", True),
    ("number of a number", "number(properties.price) = 19.5", True),
    ("number of 'nan' is null", "number('nan') = null", True),
]


@pytest.mark.parametrize(
    ("expr", "expected"), [c[1:] for c in FUNCTIONS], ids=[c[0] for c in FUNCTIONS]
)
def test_functions(expr: str, expected: bool) -> None:
    check(expr, expected)


NULLS = [
    ("contains(null, string) is false", "contains(properties.nothing, 'x')", False),
    ("!contains(null, string) is true", "!contains(properties.missing, 'x')", True),
    ("length(null) is 0", "length(properties.nothing) = 0", True),
    ("length(missing) is 0", "length(properties.missing) = 0", True),
    ("lowercase(null) is null", "lowercase(properties.nothing) = null", True),
    ("typeof(null) is 'null'", "typeof(null) = 'null'", True),
    ("match(null, string) is false", "match(properties.missing, '*')", False),
    ("a missing object on the way", "properties.missing.deeper.still = null", True),
    ("a string on the way", "event.length = null", True),
]


@pytest.mark.parametrize(("expr", "expected"), [c[1:] for c in NULLS], ids=[c[0] for c in NULLS])
def test_null_handling(expr: str, expected: bool) -> None:
    check(expr, expected)


PATHS = [
    ("escaped space", r"properties.product\ 1.price = '19.99'", True),
    ("escaped dot", r"properties.a\.b = 'dotted key'", True),
    ("unescaped dot goes deeper", "properties.a.b = 'dotted key'", False),
    ("dash in a field name", "properties.dark-mode = 'on'", True),
    ("list position", "properties.products.1.sku = 'B'", True),
    ("list position out of range", "properties.products.5.sku = null", True),
    ("list without position", "properties.products.sku = null", True),
    ("snake_case top-level field", "received_at = '2023-04-22T10:00:00.000Z'", True),
]


@pytest.mark.parametrize(("expr", "expected"), [c[1:] for c in PATHS], ids=[c[0] for c in PATHS])
def test_field_paths(expr: str, expected: bool) -> None:
    check(expr, expected)


GLOBS = [
    # Segment's reference table.
    ("'abcd', 'a*d'", "abcd", "a*d", True),
    ("'', '*'", "", "*", True),
    ("'abc', 'ab'", "abc", "ab", False),
    ("'abcd', 'a??d'", "abcd", "a??d", True),
    ("'abcd', '*d'", "abcd", "*d", True),
    (r"'ab*d', 'ab\*d'", "ab*d", r"ab\*d", True),
    ("'abCd', 'ab[cC]d'", "abCd", "ab[cC]d", True),
    ("'abcd', 'ab[a-z]d'", "abcd", "ab[a-z]d", True),
    ("'abcd', 'ab[A-Z]d'", "abcd", "ab[A-Z]d", False),
    # Edge cases.
    ("escaped star is literal", "abxd", r"ab\*d", False),
    ("star crosses slashes", "a/b/c", "a*", True),
    ("star crosses newlines", "a\nb", "a*b", True),
    ("question mark is one character", "ab", "a?", True),
    ("question mark is not zero characters", "a", "a?", False),
    ("question mark is one non-ASCII character", "aア", "a?", True),
    ("case-sensitive", "ABC", "abc", False),
    ("empty pattern", "", "", True),
    ("empty pattern, non-empty text", "a", "", False),
    ("star alone", "anything at all", "*", True),
    ("negated class", "a1", "a[^a-z]", True),
    ("negated class, no match", "ab", "a[^a-z]", False),
    ("escaped bracket in class", "a]", r"a[\]]", True),
    ("regex characters are literal", "a.b", "a.b", True),
    ("dot is not any character", "axb", "a.b", False),
    ("reversed range", "m", "[z-a]", False),
    ("malformed pattern matches nothing", "a[b", "a[b", False),
    ("whole string only", "xabcx", "abc", False),
    ("many stars", "abcbd", "*b*d", True),
]


@pytest.mark.parametrize(
    ("text", "pattern", "expected"), [c[1:] for c in GLOBS], ids=[c[0] for c in GLOBS]
)
def test_glob_match(text: str, pattern: str, expected: bool) -> None:
    assert glob_match(text, pattern) is expected
    event = {"text": text, "pattern": pattern}
    assert compile_filter("match(text, pattern)")(event) is expected  # a pattern from a field
    if "'" in pattern or "\\" in pattern:
        return
    try:
        predicate = compile_filter(f"match(text, '{pattern}')")  # a literal pattern
    except FqlError:
        assert pattern == "a[b"  # malformed literal patterns are compile errors instead
    else:
        assert predicate(event) is expected


def test_match_needs_strings() -> None:
    check("match(properties.total, '3*')", False)
    check("match(event, properties.total)", False)


def test_all_matches_every_event() -> None:
    for expr in ("all", " all "):
        predicate = compile_filter(expr)
        assert predicate({}) is True
        assert predicate(EVENT) is True
    assert compile_filter("all = true")({"all": True}) is True  # a field, in an expression


class Exploding(Mapping[str, Any]):
    """A mapping that fails on every read, standing for anything unexpected in an event."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("boom")

    def __len__(self) -> int:
        return 1


@pytest.mark.parametrize(
    "expr",
    ["type = 'track'", "context.library.name = 'x'", "!contains(type, 'x')", "length(a) = 0"],
)
def test_evaluation_never_raises(expr: str) -> None:
    assert compile_filter(expr)(Exploding()) is False
    assert compile_filter(expr)({"context": Exploding(), "type": Exploding()}) in (True, False)


def test_evaluation_does_not_modify_the_event() -> None:
    event = {"type": "track", "properties": {"features": ["a"]}}
    snapshot = repr(event)
    compile_filter("'a' in properties.features and lowercase(type) = 'track'")(event)
    assert repr(event) == snapshot
