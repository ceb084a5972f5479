"""Every directive against the cases Segment's own tests and fixtures pin down, plus our edges."""

from __future__ import annotations

from typing import Any

import pytest

from sluice.mapping import MappingError, compile, resolve


def run(mapping: Any, payload: dict[str, Any]) -> Any:
    return resolve(mapping, payload)


# -- @template -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "payload", "expected"),
    [
        pytest.param("Hello, {{who}}!", {"who": "World"}, "Hello, World!", id="basic"),
        pytest.param("Hello, {{who.name}}!", {"who": {"name": "Al"}}, "Hello, Al!", id="nested"),
        pytest.param("{{ who }}", {"who": "x"}, "x", id="spaces-trimmed"),
        pytest.param("Hello, {{name}}!", {}, "Hello, !", id="missing-is-empty"),
        pytest.param("{{oops.yo}}", {}, "", id="missing-nested-is-empty"),
        pytest.param(
            "{{a}} ({{b}})", {"a": "Mr. Rogers", "b": "abc123"}, "Mr. Rogers (abc123)", id="two"
        ),
        pytest.param("{{n}}", {"n": 1}, "1", id="integer"),
        pytest.param("{{n}}", {"n": 1.0}, "1", id="integral-float-like-js"),
        pytest.param("{{n}}", {"n": 1.5}, "1.5", id="float"),
        pytest.param("{{n}}", {"n": -0.25}, "-0.25", id="negative-float"),
        pytest.param("{{n}}", {"n": 1e21}, "1e+21", id="large-float-exponent"),
        pytest.param("{{n}}", {"n": 1e16}, "10000000000000000", id="large-float-digits"),
        pytest.param("{{n}}", {"n": 0.000001}, "0.000001", id="small-float-digits"),
        pytest.param("{{n}}", {"n": 1.5e-7}, "1.5e-7", id="small-float-exponent"),
        pytest.param("{{b}}", {"b": True}, "true", id="boolean-true"),
        pytest.param("{{b}}", {"b": False}, "false", id="boolean-false"),
        pytest.param("{{v}}", {"v": None}, "", id="null-is-empty"),
        pytest.param("{{v}}", {"v": {"bar": "baz"}}, "[object Object]", id="object"),
        pytest.param("{{v}}", {"v": ["a", 1, None, [2, True]]}, "a,1,,2,true", id="array-joined"),
        pytest.param("{{items[1]}}", {"items": ["a", "b"]}, "b", id="index"),
        pytest.param(
            "<b>{{a}} {{{a}}}</b>",
            {"a": "<i>Hi</i>"},
            "<b><i>Hi</i> <i>Hi</i></b>",
            id="no-escaping",
        ),
        pytest.param("{{foo}}}", {"foo": "hello"}, "hello}", id="trailing-brace"),
        pytest.param('Hello, "{{name}}"!', {"name": "W"}, 'Hello, "W"!', id="quotes"),
        pytest.param("{{[unknown]}}", {"unknown": "x"}, "", id="a-bracketed-word-is-one-key"),
        pytest.param("{{['unknown']}}", {"unknown": "x"}, "x", id="quoted-brackets-separate"),
        pytest.param("{{$.userId}}", {"userId": "u1"}, "", id="no-dollar-prefix-in-templates"),
        pytest.param("Hello world", {}, "Hello world", id="no-placeholders"),
        pytest.param("{{{a}}}", {"a": "{{b}}", "b": "B"}, "B", id="triple-then-double-pass"),
    ],
)
def test_template(template: str, payload: dict[str, Any], expected: str) -> None:
    assert run({"@template": template}, payload) == expected


def test_template_from_a_directive() -> None:
    assert run({"@template": {"@path": "$.t"}}, {"t": "Hi {{n}}", "n": "Al"}) == "Hi Al"
    with pytest.raises(MappingError, match=r"^x\.@template: expected a string template, got int$"):
        compile({"x": {"@template": {"@path": "$.t"}}})({"t": 3})


# -- @literal ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        pytest.param({"simple": {"@literal": False}}, {"simple": False}, id="false"),
        pytest.param({"s": {"@literal": ""}}, {"s": ""}, id="empty-string"),
        pytest.param({"s": {"@literal": None}}, {"s": None}, id="null"),
        pytest.param({"s": {"@literal": "123"}}, {"s": "123"}, id="string"),
        pytest.param(
            {"nested": {"@literal": {"a": {"@path": "$.a"}, "b": {"@path": "$.b"}}}},
            {"nested": {"a": "some value"}},
            id="nested-directives-resolved-like-segment",
        ),
    ],
)
def test_literal(mapping: Any, expected: Any) -> None:
    assert run(mapping, {"a": "some value"}) == expected


# -- @if -----------------------------------------------------------------------------------------

IF_PAYLOAD = {"a": 1, "b": True, "c": False, "d": None, "e": "", "z": 0, "l": [], "o": {}}


@pytest.mark.parametrize(
    ("condition", "path", "expected"),
    [
        pytest.param("exists", "$.a", 1, id="exists-value"),
        pytest.param("exists", "$.d", 2, id="exists-null"),
        pytest.param("exists", "$.x", 2, id="exists-missing"),
        pytest.param("exists", "$.e", 1, id="exists-empty-string"),
        pytest.param("exists", "$.c", 1, id="exists-false"),
        pytest.param("exists", "$.z", 1, id="exists-zero"),
        pytest.param("blank", "$.a", 1, id="blank-value"),
        pytest.param("blank", "$.d", 2, id="blank-null"),
        pytest.param("blank", "$.x", 2, id="blank-missing"),
        pytest.param("blank", "$.e", 2, id="blank-empty-string"),
        pytest.param("blank", "$.b", 1, id="blank-true"),
        pytest.param("blank", "$.c", 2, id="blank-false-loose-equality"),
        pytest.param("blank", "$.z", 2, id="blank-zero-loose-equality"),
        pytest.param("blank", "$.l", 2, id="blank-empty-array-loose-equality"),
        pytest.param("blank", "$.o", 1, id="blank-empty-object"),
    ],
)
def test_if_conditions(condition: str, path: str, expected: int) -> None:
    mapping = {"@if": {condition: {"@path": path}, "then": 1, "else": 2}}
    assert run(mapping, IF_PAYLOAD) == expected


@pytest.mark.parametrize(
    ("branches", "expected"),
    [
        pytest.param({"then": True}, {"f": True}, id="then-only"),
        pytest.param({"else": "nope"}, {}, id="missing-then-removes-field"),
        pytest.param({"then": None, "else": 2}, {"f": None}, id="null-then-kept"),
        pytest.param({"then": False, "else": 2}, {"f": False}, id="false-then-kept"),
    ],
)
def test_if_branches_when_true(branches: dict[str, Any], expected: Any) -> None:
    mapping = {"f": {"@if": {"exists": {"@path": "$.a"}, **branches}}}
    assert run(mapping, IF_PAYLOAD) == expected


@pytest.mark.parametrize(
    ("otherwise", "expected"),
    [
        pytest.param("nope", {"f": "nope"}, id="string"),
        pytest.param({"@path": "$.a"}, {"f": 1}, id="directive"),
        pytest.param([], {"f": []}, id="empty-list-is-truthy"),
        pytest.param(False, {}, id="false-else-removes-field-like-segment"),
        pytest.param(0, {}, id="zero-else-removes-field-like-segment"),
        pytest.param(None, {}, id="null-else-removes-field-like-segment"),
    ],
)
def test_if_else_branch(otherwise: Any, expected: Any) -> None:
    mapping = {"f": {"@if": {"exists": {"@path": "$.x"}, "then": 1, "else": otherwise}}}
    assert run(mapping, IF_PAYLOAD) == expected


def test_if_exists_wins_over_blank() -> None:
    mapping = {"@if": {"exists": {"@path": "$.e"}, "blank": {"@path": "$.e"}, "then": 1, "else": 2}}
    assert run(mapping, IF_PAYLOAD) == 1


def test_if_missing_else_removes_field() -> None:
    mapping = {"f": {"@if": {"exists": {"@path": "$.foo"}, "then": True}}}
    assert run(mapping, IF_PAYLOAD) == {}


def test_if_nested_and_partial() -> None:
    mapping = {
        "a": {"@if": {"exists": {"@path": "$.oops"}, "then": {"@path": "$.a"}}},
        "b": {
            "@if": {
                "exists": {"@path": "$.x"},
                "then": 1,
                "else": {"@if": {"blank": {"@path": "$.e"}, "then": 2, "else": 3}},
            }
        },
    }
    assert run(mapping, IF_PAYLOAD) == {"b": 3}


# -- @case ---------------------------------------------------------------------------------------

CASE_PAYLOAD = {
    "a": 1,
    "b": "MAKE ME LOWER CASE",
    "c": "make me upper case",
    "d": None,
    "e": "",
    "f": False,
    "g": "mIXeD StRinG CasING W/ NuMBErs 190wdB",
    "h": {"key1": "with values", "key2": ["hi", True, None]},
}


@pytest.mark.parametrize(
    ("operator", "path", "expected"),
    [
        pytest.param("lower", "$.b", {"x": "make me lower case"}, id="lower"),
        pytest.param("upper", "$.c", {"x": "MAKE ME UPPER CASE"}, id="upper"),
        pytest.param("lower", "$.e", {"x": ""}, id="empty-string"),
        pytest.param(
            "lower", "$.g", {"x": "mixed string casing w/ numbers 190wdb"}, id="mixed-lower"
        ),
        pytest.param(
            "upper", "$.g", {"x": "MIXED STRING CASING W/ NUMBERS 190WDB"}, id="mixed-upper"
        ),
        pytest.param("lower", "$.a", {"x": 1}, id="number-unchanged"),
        pytest.param("lower", "$.d", {"x": None}, id="null-unchanged"),
        pytest.param("lower", "$.f", {"x": False}, id="boolean-unchanged"),
        pytest.param("upper", "$.h", {"x": CASE_PAYLOAD["h"]}, id="object-unchanged"),
        pytest.param("lower", "$.dont_exist", {}, id="missing-removed"),
    ],
)
def test_case(operator: str, path: str, expected: Any) -> None:
    mapping = {"x": {"@case": {"operator": operator, "value": {"@path": path}}}}
    assert run(mapping, CASE_PAYLOAD) == expected


def test_case_on_a_literal_and_without_value() -> None:
    assert run({"x": {"@case": {"operator": "upper", "value": "abc"}}}, {}) == {"x": "ABC"}
    assert run({"x": {"@case": {"operator": "upper"}}}, {}) == {}
    assert run({"x": {"@case": {"operator": "upper", "value": ""}}}, {}) == {}


# -- @replace ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "value", "expected"),
    [
        pytest.param({"pattern": "_", "replacement": "rrrrr"}, "", "", id="empty-string"),
        pytest.param({"pattern": "_", "replacement": "rrrrr"}, None, "", id="null-gives-empty"),
        pytest.param({"pattern": "_"}, {"a": 1}, "", id="object-gives-empty"),
        pytest.param(
            {"pattern": "WW", "replacement": "oo", "ignorecase": False},
            "cWWl-story-ww",
            "cool-story-ww",
            id="case-sensitive",
        ),
        pytest.param(
            {"pattern": "AaB", "replacement": "nice", "ignorecase": True},
            "aab-----AaB---aab",
            "nice-----nice---nice",
            id="ignorecase",
        ),
        pytest.param(
            {"pattern": "_", "replacement": ""},
            "nomore_underscore",
            "nomoreunderscore",
            id="remove",
        ),
        pytest.param(
            {"pattern": "_", "replacement": "weird"},
            "nomore_underscore",
            "nomoreweirdunderscore",
            id="insert",
        ),
        pytest.param(
            {"pattern": "LOL", "replacement": "YAY"},
            "Well Hello there LOL",
            "Well Hello there YAY",
            id="multi-char",
        ),
        pytest.param(
            {"pattern": "+", "replacement": "_", "global": True},
            "many+different+things",
            "many_different_things",
            id="global",
        ),
        pytest.param(
            {"pattern": "+", "replacement": "_", "global": False},
            "many+different+things",
            "many_different+things",
            id="first-only",
        ),
        pytest.param(
            {"pattern": "aaabbbcccd", "replacement": ""}, "aaabbbcccd", "", id="entire-value"
        ),
        pytest.param(
            {"pattern": "many+"},
            "many+different+things",
            "different+things",
            id="no-replacement-key",
        ),
        pytest.param({"pattern": "true", "replacement": "granted"}, True, "granted", id="boolean"),
        pytest.param({"pattern": "1", "replacement": "granted"}, 1, "granted", id="number"),
        pytest.param({"pattern": ".", "replacement": ","}, 1.5, "1,5", id="float-as-js-string"),
        pytest.param(
            {"pattern": "-", "replacement": " ", "pattern2": "great", "replacement2": "awesome"},
            "something-great!",
            "something awesome!",
            id="two-patterns",
        ),
        pytest.param(
            {
                "pattern": "true",
                "replacement": "granted",
                "pattern2": "false",
                "replacement2": "denied",
            },
            False,
            "denied",
            id="second-pattern-only",
        ),
        pytest.param(
            {"pattern": "A", "replacement": "x", "pattern2": "B", "ignorecase": True},
            "aabb",
            "xx",
            id="flags-apply-to-pattern2",
        ),
        pytest.param(
            {"pattern": "_", "replacement": "rrrrr"}, "abcdefgh", "abcdefgh", id="not-found"
        ),
        pytest.param(
            {"pattern": "_", "replacement": "+", "pattern2": "", "replacement2": ""},
            "abc_defgh",
            "abc+defgh",
            id="empty-pattern2-ignored",
        ),
        pytest.param(
            {"pattern": '"', "pattern2": "\\", "replacement": "", "replacement2": ""},
            'abc"def\\gh',
            "abcdefgh",
            id="regex-characters-literal",
        ),
        pytest.param(
            {"pattern": ".*", "replacement": "!"}, "a.*b", "a!b", id="regex-pattern-literal"
        ),
        pytest.param(
            {"pattern": "b", "replacement": "[$&]"}, "abc", "a[b]c", id="dollar-ampersand"
        ),
        pytest.param({"pattern": "b", "replacement": "$$1"}, "abc", "a$1c", id="dollar-dollar"),
        pytest.param(
            {"pattern": "b", "replacement": "\\n"}, "abc", "a\\nc", id="backslash-literal"
        ),
    ],
)
def test_replace(options: dict[str, Any], value: Any, expected: str) -> None:
    mapping = {"@replace": {**options, "value": {"@path": "$.a"}}}
    assert run(mapping, {"a": value}) == expected


def test_replace_missing_value_gives_empty_string() -> None:
    mapping = {
        "neat": {"@replace": {"pattern": "_", "replacement": "+", "value": {"@path": "$.a"}}}
    }
    assert run(mapping, {"b": "abc_defgh"}) == {"neat": ""}


# -- @arrayPath ----------------------------------------------------------------------------------

PRODUCTS = {"products": [{"productId": "123", "price": 0.5}, {"productId": "456", "price": 0.99}]}
SHAPE = {"product_id": {"@path": "$.productId"}, "monies": {"@path": "$.price"}}


@pytest.mark.parametrize(
    ("argument", "payload", "expected"),
    [
        pytest.param(["$.products"], PRODUCTS, PRODUCTS["products"], id="no-shape"),
        pytest.param(
            ["$.products", SHAPE],
            PRODUCTS,
            [{"product_id": "123", "monies": 0.5}, {"product_id": "456", "monies": 0.99}],
            id="relative-shape",
        ),
        pytest.param(
            [
                {
                    "@if": {
                        "exists": {"@path": "$.products"},
                        "then": {"@path": "$.products"},
                        "else": [],
                    }
                },
                SHAPE,
            ],
            PRODUCTS,
            [{"product_id": "123", "monies": 0.5}, {"product_id": "456", "monies": 0.99}],
            id="directive-source",
        ),
        pytest.param(
            ["$.products", SHAPE], {"products": {"notAnArray": True}}, [{}], id="object-wrapped"
        ),
        pytest.param(
            ["$.properties", SHAPE],
            {"properties": {"productId": "123", "price": 0.5}},
            [{"product_id": "123", "monies": 0.5}],
            id="singular-object",
        ),
        pytest.param(
            [{"@path": "$.products"}, None], PRODUCTS, PRODUCTS["products"], id="null-shape"
        ),
        pytest.param(
            ["$.products", {"id": "static"}], PRODUCTS, [{"id": "static"}] * 2, id="static-shape"
        ),
        pytest.param(["$.products", {}], PRODUCTS, PRODUCTS["products"], id="empty-shape"),
        pytest.param(
            ["$.products", {"@path": "$.productId"}], PRODUCTS, ["123", "456"], id="directive-shape"
        ),
        pytest.param(
            ["$.products", {"@path": "$.nope"}], PRODUCTS, [None, None], id="undefined-items-null"
        ),
        pytest.param(
            ["$.products", SHAPE, {"foo": "bar"}],
            PRODUCTS,
            [{"product_id": "123", "monies": 0.5}, {"product_id": "456", "monies": 0.99}],
            id="extra-items-ignored",
        ),
        pytest.param(["$.name", SHAPE], {"name": "x"}, "x", id="scalar-returned-as-is"),
        pytest.param(
            ["$.products", {"root": {"@path": "$"}}],
            {"products": [1]},
            [{"root": 1}],
            id="item-root",
        ),
    ],
)
def test_array_path(argument: list[Any], payload: dict[str, Any], expected: Any) -> None:
    assert run({"neat": {"@arrayPath": argument}}, payload) == {"neat": expected}


def test_array_path_missing_removes_field_and_nests() -> None:
    assert run({"neat": {"@arrayPath": ["$.nope", SHAPE]}}, PRODUCTS) == {}
    orders = {"orders": [{"id": 1, "items": [{"sku": "a"}, {"sku": "b"}]}, {"id": 2, "items": []}]}
    mapping = {
        "@arrayPath": [
            "$.orders",
            {"id": {"@path": "$.id"}, "skus": {"@arrayPath": ["$.items", {"@path": "$.sku"}]}},
        ]
    }
    assert run(mapping, orders) == [{"id": 1, "skus": ["a", "b"]}, {"id": 2, "skus": []}]


# -- @flatten ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "separator", "omit_arrays", "expected"),
    [
        pytest.param(
            {"bar": "baz", "aces": {"a": 1, "b": 2}},
            ".",
            None,
            {"bar": "baz", "aces.a": 1, "aces.b": 2},
            id="simple",
        ),
        pytest.param(
            [{"fazz": "bar", "fizz": "baz"}],
            ".",
            None,
            {"0.fazz": "bar", "0.fizz": "baz"},
            id="array-first",
        ),
        pytest.param(
            {"bar": "baz", "aces": [1, 2]},
            ".",
            True,
            {"bar": "baz", "aces": [1, 2]},
            id="omit-arrays",
        ),
        pytest.param(
            {"a": [{"b": 1}, {"c": 2}]}, ".", False, {"a.0.b": 1, "a.1.c": 2}, id="array-of-objects"
        ),
        pytest.param(
            {"a": {"b": {"c": 1}, "d": 2}}, "/", None, {"a/b/c": 1, "a/d": 2}, id="custom-separator"
        ),
        pytest.param(
            {"a": {"b": {"c": [{"d": [{"e": 1}]}]}}},
            ".",
            None,
            {"a.b.c.0.d.0.e": 1},
            id="deep-arrays",
        ),
        pytest.param(
            {"a": {"b": {"c": [{"d": [{"e": 1}]}]}}},
            ".",
            True,
            {"a.b.c": [{"d": [{"e": 1}]}]},
            id="deep-omit-arrays",
        ),
        pytest.param(
            {"a": None, "b": {}, "c": []}, ".", None, {"a": None}, id="null-kept-empty-gone"
        ),
        pytest.param("text", ".", None, {"": "text"}, id="scalar-under-empty-key"),
    ],
)
def test_flatten(value: Any, separator: str, omit_arrays: bool | None, expected: Any) -> None:
    options: dict[str, Any] = {"value": {"@path": "$.foo"}, "separator": separator}
    if omit_arrays is not None:
        options["omitArrays"] = omit_arrays
    assert run({"neat": {"@flatten": options}}, {"foo": value}) == {"neat": expected}


def test_flatten_missing_value_gives_empty_object() -> None:
    mapping = {"neat": {"@flatten": {"value": {"@path": "$.foo"}, "separator": ","}}}
    assert run(mapping, {"bar": {"a": 1}}) == {"neat": {}}


# -- @json ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        pytest.param("encode", "bar", {"neat": '"bar"'}, id="encode-string"),
        pytest.param("encode", {"bar": "baz"}, {"neat": '{"bar":"baz"}'}, id="encode-object"),
        pytest.param("encode", ["bar", "baz"], {"neat": '["bar","baz"]'}, id="encode-array"),
        pytest.param("encode", None, {"neat": "null"}, id="encode-null"),
        pytest.param(
            "encode",
            {"n": 1.0, "m": 2.5, "b": False},
            {"neat": '{"n":1,"m":2.5,"b":false}'},
            id="encode-numbers-like-js",
        ),
        pytest.param("encode", "é\n", {"neat": '"é\\n"'}, id="encode-unicode-kept"),
        pytest.param("decode", '"bar"', {"neat": "bar"}, id="decode-string"),
        pytest.param("decode", '{"bar":"baz"}', {"neat": {"bar": "baz"}}, id="decode-object"),
        pytest.param("decode", '["bar","baz"]', {"neat": ["bar", "baz"]}, id="decode-array"),
        pytest.param("decode", "null", {"neat": None}, id="decode-null"),
        pytest.param("decode", 123, {"neat": 123}, id="decode-non-string"),
        pytest.param("decode", "{oops", {"neat": "{oops"}, id="decode-invalid-returns-input"),
        pytest.param("decode", "NaN", {"neat": "NaN"}, id="decode-nan-is-not-json"),
        pytest.param("decode", "", {"neat": ""}, id="decode-empty-string"),
    ],
)
def test_json(mode: str, value: Any, expected: Any) -> None:
    mapping = {"neat": {"@json": {"mode": mode, "value": {"@path": "$.foo"}}}}
    assert run(mapping, {"foo": value}) == expected


def test_json_of_falsy_literals() -> None:
    assert run({"@json": {"mode": "encode", "value": False}}, {}) == "false"
    assert run({"@json": {"mode": "decode", "value": ""}}, {}) == ""


def test_json_of_missing_value_removes_field() -> None:
    mapping = {"neat": {"@json": {"mode": "encode", "value": {"@path": "$.bad"}}}}
    assert run(mapping, {"foo": 1}) == {}


# -- @merge --------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["left", "right"])
def test_merge_same_either_way(direction: str) -> None:
    assert run({"@merge": {"direction": direction, "objects": []}}, {}) == {}
    assert run({"@merge": {"direction": direction, "objects": [{"cool": True}]}}, {}) == {
        "cool": True
    }


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param(
            {"direction": "right", "objects": [{"cool": True}, {"cool": "you bet"}]},
            {"cool": "you bet"},
            id="right",
        ),
        pytest.param(
            {"objects": [{"cool": True}, {"cool": "you bet"}]},
            {"cool": "you bet"},
            id="default-is-right",
        ),
        pytest.param(
            {"direction": "left", "objects": [{"cool": True}, {"cool": "you bet"}]},
            {"cool": True},
            id="left",
        ),
        pytest.param(
            {"direction": "right", "objects": [{"cool": True}, {"@path": "foo"}]},
            {"cool": True, "bar": "baz", "hey": "you"},
            id="directive-right",
        ),
        pytest.param(
            {"direction": "right", "objects": [{"cool": True, "hey": "there"}, {"@path": "foo"}]},
            {"cool": True, "hey": "you", "bar": "baz"},
            id="directive-overwrites",
        ),
        pytest.param(
            {"direction": "left", "objects": [{"cool": True, "hey": "there"}, {"@path": "foo"}]},
            {"bar": "baz", "hey": "there", "cool": True},
            id="directive-left",
        ),
        pytest.param(
            {"direction": "right", "objects": [{"@path": "$.hello"}, {"@path": "foo"}]},
            {"bar": "baz", "hey": "you"},
            id="unresolved-object-skipped",
        ),
        pytest.param(
            {"objects": [{"hey": 1}, {"hey": {"@path": "$.nope"}}]},
            {},
            id="undefined-field-wins-like-object-assign",
        ),
    ],
)
def test_merge(options: dict[str, Any], expected: Any) -> None:
    assert run({"@merge": options}, {"foo": {"bar": "baz", "hey": "you"}}) == expected


# -- @transform ----------------------------------------------------------------------------------


def test_transform_simple_and_payload_replaced() -> None:
    mapping = {
        "@transform": {
            "apply": {"foo": {"@path": "$.a"}},
            "mapping": {"cool": {"@path": "$.foo"}, "gone": {"@path": "$.b"}},
        }
    }
    assert run(mapping, {"a": 1, "b": 2}) == {"cool": 1}


def test_transform_composed_with_flatten() -> None:
    mapping = {
        "@transform": {
            "apply": {
                "properties": {"@flatten": {"value": {"@path": "$.properties"}, "separator": "_"}}
            },
            "mapping": {
                "properties": {"@path": "$.properties"},
                "topLevel": {"@path": "$.properties.nested_a"},
            },
        }
    }
    payload = {
        "properties": {"test": "value", "another": "thing", "nested": {"a": "special", "b": 2}},
        "otherStuff": "foo",
    }
    assert run(mapping, payload) == {
        "properties": {"test": "value", "another": "thing", "nested_a": "special", "nested_b": 2},
        "topLevel": "special",
    }


# -- @excludeWhenNull ----------------------------------------------------------------------------

NULLS = {"foo": {"bar": None, "aces": {"a": 1, "b": 2, "c": None, "d": {"a": None}, "l": [None]}}}


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        pytest.param({"x": {"@excludeWhenNull": {"@path": "$.foo.bar"}}}, {}, id="null-removed"),
        pytest.param(
            {"x": {"@excludeWhenNull": {"@path": "$.foo.bar"}}, "y": {"@path": "$.foo.aces.a"}},
            {"y": 1},
            id="other-fields-kept",
        ),
        pytest.param(
            {"x": {"neat": {"@excludeWhenNull": {"@path": "$.foo.bar"}}}},
            {"x": {}},
            id="nested-field",
        ),
        pytest.param(
            {"neat": {"@excludeWhenNull": {"@path": "$.foo"}}},
            {"neat": {"aces": {"a": 1, "b": 2, "d": {}, "l": [None]}}},
            id="nested-nulls-removed-lists-kept",
        ),
        pytest.param({"x": {"@excludeWhenNull": {"@path": "$.nope"}}}, {}, id="missing-removed"),
        pytest.param({"x": {"@excludeWhenNull": {"@literal": 0}}}, {"x": 0}, id="falsy-kept"),
        pytest.param({"x": {"@path": "$.foo.bar"}}, {"x": None}, id="without-it-null-kept"),
    ],
)
def test_exclude_when_null(mapping: Any, expected: Any) -> None:
    assert run(mapping, NULLS) == expected


def test_exclude_when_null_composed_with_other_directives() -> None:
    def exclude(inner: Any) -> Any:
        return {"@excludeWhenNull": inner}

    bar = {"@path": "$.foo.bar"}
    mapping = {
        "massive": {
            "pathNull": exclude(bar),
            "templateEmpty": exclude({"@template": "{{foo.bar}}"}),
            "literalNull": exclude({"@literal": None}),
            "ifNull": exclude({"@if": {"exists": {"@path": "$.foo.x"}, "then": 1, "else": None}}),
            "caseNull": exclude({"@case": {"operator": "upper", "value": bar}}),
            "replaceNull": exclude(
                {"@replace": {"pattern": "-", "replacement": "n", "value": bar}}
            ),
            "jsonNull": exclude({"@json": {"mode": "decode", "value": bar}}),
            "jsonNullEncode": exclude({"@json": {"mode": "encode", "value": bar}}),
            "transformNull": exclude(
                {
                    "@transform": {
                        "apply": {"properties": bar},
                        "mapping": {"properties": exclude({"@path": "$.properties"})},
                    }
                }
            ),
            "transformNull2": exclude(
                {
                    "@transform": {
                        "apply": {"properties": exclude(bar)},
                        "mapping": {"properties": {"@path": "$.properties"}},
                    }
                }
            ),
            "transformValue": exclude(
                {
                    "@transform": {
                        "apply": {"properties": bar},
                        "mapping": {"properties": {"@path": "$.properties"}},
                    }
                }
            ),
        }
    }
    assert run(mapping, NULLS) == {
        "massive": {
            "templateEmpty": "",
            "replaceNull": "",
            "jsonNullEncode": "null",
            "transformNull": {},
            "transformNull2": {},
            "transformValue": {},
        }
    }
