"""FQL lexing and parsing: the syntax tree of valid expressions, and where invalid ones fail."""

from __future__ import annotations

from typing import Any

import pytest

from sluice.errors import SluiceError
from sluice.fql import FqlError, compile_filter, compile_trigger, parse
from sluice.fql.glob import GlobError, translate
from sluice.fql.parser import MAX_DEPTH, And, Call, Compare, Group, Literal, Node, Not, Or, Path


def shape(node: Node) -> Any:
    """A position-free rendering of a tree, easy to write in a table."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Path):
        return ("path", *node.segments)
    if isinstance(node, Call):
        return (node.name, *(shape(arg) for arg in node.args))
    if isinstance(node, Not):
        return ("!", shape(node.operand))
    if isinstance(node, And | Or):
        return ("and" if isinstance(node, And) else "or", *(shape(i) for i in node.items))
    if isinstance(node, Compare):
        return (node.op, shape(node.left), shape(node.right))
    assert isinstance(node, Group)
    return ("()", shape(node.inner))


TREES = [
    ("string, single quotes", "event = 'Button Clicked'",
     ("=", ("path", "event"), "Button Clicked")),
    ("string, double quotes", 'event = "A"', ("=", ("path", "event"), "A")),
    ("escaped quote", r"event = 'it\'s'", ("=", ("path", "event"), "it's")),
    ("escaped backslash", r"event = 'a\\b'", ("=", ("path", "event"), "a\\b")),
    ("other escapes stay", r"match(event, 'ab\*d')", ("match", ("path", "event"), r"ab\*d")),
    ("integer", "properties.total > 10", (">", ("path", "properties", "total"), 10)),
    ("negative float", "properties.x >= -1.5", (">=", ("path", "properties", "x"), -1.5)),
    ("exponent", "properties.x < 1e3", ("<", ("path", "properties", "x"), 1000.0)),
    ("true false null", "a = true or b = false or c = null",
     ("or", ("=", ("path", "a"), True), ("=", ("path", "b"), False), ("=", ("path", "c"), None))),
    ("list literal", "type in ['track', 'identify']",
     ("in", ("path", "type"), ("track", "identify"))),
    ("mixed list with trailing comma", "x in [1, 'a', true, null, [2],]",
     ("in", ("path", "x"), (1, "a", True, None, (2,)))),
    ("empty list", "x in []", ("in", ("path", "x"), ())),
    ("in an array field", "'dark-mode' in properties.features",
     ("in", "dark-mode", ("path", "properties", "features"))),
    ("nested path", "context.library.version = '1.0'",
     ("=", ("path", "context", "library", "version"), "1.0")),
    ("escaped space in path", r"properties.product\ 1.price = 1",
     ("=", ("path", "properties", "product 1", "price"), 1)),
    ("escaped dot in path", r"properties.a\.b = 1", ("=", ("path", "properties", "a.b"), 1)),
    ("dash and digits in path", "properties.dark-mode.0 = 1",
     ("=", ("path", "properties", "dark-mode", "0"), 1)),
    ("keyword after a dot is a field", "properties.and = 1",
     ("=", ("path", "properties", "and"), 1)),
    ("escaped keyword is a field", r"\and = 1", ("=", ("path", "and"), 1)),
    ("and binds tighter than or", "a = 1 and b = 2 or c = 3",
     ("or", ("and", ("=", ("path", "a"), 1), ("=", ("path", "b"), 2)), ("=", ("path", "c"), 3))),
    ("parentheses", "a = 1 and (b = 2 or c = 3)",
     ("and", ("=", ("path", "a"), 1),
      ("()", ("or", ("=", ("path", "b"), 2), ("=", ("path", "c"), 3))))),
    ("! negates the comparison", "!type = 'track'", ("!", ("=", ("path", "type"), "track"))),
    ("! on a call", "!contains(context.library.name, 'js')",
     ("!", ("contains", ("path", "context", "library", "name"), "js"))),
    ("! on a group", "!(type in ['track','identify'])",
     ("!", ("()", ("in", ("path", "type"), ("track", "identify"))))),
    ("double negation", "!!a", ("!", ("!", ("path", "a")))),
    ("!= is one operator", "a!=1", ("!=", ("path", "a"), 1)),
    ("few spaces", "a<=1 and(b>2)",
     ("and", ("<=", ("path", "a"), 1), ("()", (">", ("path", "b"), 2)))),
    ("spaces inside a call", "length( userId ) < 1", ("<", ("length", ("path", "userId")), 1)),
    ("nested calls", "lowercase(uppercase(event)) = 'x'",
     ("=", ("lowercase", ("uppercase", ("path", "event"))), "x")),
    ("bare field", "properties.enabled", ("path", "properties", "enabled")),
    ("comparison of groups", "(a = 1) = true", ("=", ("()", ("=", ("path", "a"), 1)), True)),
    ("newlines are whitespace", "type = 'track'\n  and event = 'x'",
     ("and", ("=", ("path", "type"), "track"), ("=", ("path", "event"), "x"))),
]  # fmt: skip


@pytest.mark.parametrize(("expr", "expected"), [c[1:] for c in TREES], ids=[c[0] for c in TREES])
def test_parse_tree(expr: str, expected: Any) -> None:
    assert shape(parse(expr)) == expected


INVALID = [
    # (id, expression, position, words in the message)
    ("empty", "", 0, "empty expression"),
    ("only spaces", "   ", 3, "empty expression"),
    ("missing right side", "type = ", 7, "expression ends"),
    ("docs example: stray quote", 'userId = oops"', 13, "unterminated string"),
    ("unterminated string", "event = 'abc", 8, "unterminated string"),
    ("unknown character", "event = #", 8, "unexpected character '#'"),
    ("double equals", "type == 'track'", 5, "'=='"),
    ("unbalanced paren", "(type = 'track'", 15, "expected ')'"),
    ("extra paren", "type = 'track')", 14, "unexpected ')'"),
    ("missing and", "type = 'track' event = 'x'", 15, "combine conditions"),
    ("chained comparison", "a = b = c", 6, "cannot be chained"),
    ("dangling and", "type = 'track' and", 18, "expression ends"),
    ("leading or", "or type = 'x'", 0, "found 'or'"),
    ("trailing dot", "context. = 1", 8, "field name after '.'"),
    ("double dot", "context..ip = 1", 8, "field name after '.'"),
    ("trailing backslash", "a\\", 2, "after '\\'"),
    ("bad decimal", "a = 1.", 6, "digit after the decimal point"),
    ("two decimal points", "a = 1.2.3", 7, "after a number"),
    ("letters after number", "a = 12ab", 6, "after a number"),
    ("bad exponent", "a = 1e", 6, "exponent"),
    ("path in a list", "a in [b]", 6, "literal values"),
    ("unclosed list", "a in ['x'", 9, "expected ',' or ']'"),
    ("missing comma in list", "a in ['x' 'y']", 10, "expected ',' or ']'"),
    ("call on a dotted name", "a.b(1)", 0, "not a function name"),
    ("call missing paren", "contains(event, 'x'", 19, "expected ',' or ')'"),
    ("unknown function", "explode(event)", 0, "unknown function 'explode'"),
    ("wrong arity", "contains(event)", 0, "takes 2 arguments, got 1"),
    ("wrong arity, one", "length(a, b)", 0, "takes 1 argument, got 2"),
    ("in without a list", "a in 'x'", 5, "needs a list"),
    ("malformed glob", "match(event, 'a[b')", 15, "invalid glob pattern"),
    ("glob trailing escape", "match(event, 'ab\\\\')", 16, "unfinished"),
    ("escaped closing quote", "match(event, 'ab\\')", 13, "unterminated string"),
    ("keyword glued to a number", "a = 1and b = 2", 5, "after a number"),
]


@pytest.mark.parametrize(
    ("expr", "position", "words"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_expressions_raise_with_position(expr: str, position: int, words: str) -> None:
    with pytest.raises(FqlError) as info:
        compile_filter(expr)
    assert info.value.position == position
    assert words in info.value.message
    assert f"at position {position}" in str(info.value)


def test_error_is_a_sluice_error_with_a_pointer() -> None:
    with pytest.raises(SluiceError) as info:
        compile_filter("type = 'track' and (event = 'x'")
    error = info.value
    assert isinstance(error, FqlError)
    assert error.expression == "type = 'track' and (event = 'x'"
    assert error.pointer() == "type = 'track' and (event = 'x'\n" + " " * 31 + "^"


def test_long_expressions_are_quoted_around_the_error() -> None:
    expr = "event = 'x' and " * 10 + "#"
    with pytest.raises(FqlError) as info:
        compile_filter(expr)
    text = str(info.value)
    assert text.startswith("unexpected character '#' at position 160 in \"…")
    assert text.endswith('and #"')
    assert len(text) < 140


def test_nesting_is_limited() -> None:
    deep = "(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1)
    with pytest.raises(FqlError, match="nested deeper"):
        parse(deep)
    assert shape(parse("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH))


def test_compiled_expressions_are_cached() -> None:
    assert compile_filter("type = 'track'") is compile_filter("type = 'track'")
    assert compile_trigger('type = "track"') is compile_trigger('type = "track"')


GLOBS = [
    ("star", "a*d", "a.*d"),
    ("stars collapse", "a**", "a.*"),
    ("question mark", "a?", "a."),
    ("class", "[abc]", "[abc]"),
    ("range", "[a-z]", "[a-z]"),
    ("negated class", "[^0-9]", "[^0-9]"),
    ("escaped star", r"ab\*d", r"ab\*d"),
    ("escaped bracket in class", r"[\]]", r"[\]]"),
    ("regex metacharacters are literal", "a.b+(c)", r"a\.b\+\(c\)"),
    ("closing bracket outside a class", "a]", r"a\]"),
    ("reversed range matches nothing", "[z-a]", "(?!)"),
    ("negated reversed range matches anything", "[^z-a]", "."),
]


@pytest.mark.parametrize(("pattern", "regex"), [c[1:] for c in GLOBS], ids=[c[0] for c in GLOBS])
def test_glob_translation(pattern: str, regex: str) -> None:
    assert translate(pattern) == regex


BAD_GLOBS = [
    ("unclosed class", "a[bc", 1),
    ("empty class", "[]", 1),
    ("unescaped dash first", "[-a]", 1),
    ("range without end", "[a-]", 3),
    ("trailing backslash", "ab\\", 2),
    ("backslash at class end", "[a\\", 2),
]


@pytest.mark.parametrize(
    ("pattern", "position"), [c[1:] for c in BAD_GLOBS], ids=[c[0] for c in BAD_GLOBS]
)
def test_bad_globs(pattern: str, position: int) -> None:
    with pytest.raises(GlobError) as info:
        translate(pattern)
    assert info.value.position == position
