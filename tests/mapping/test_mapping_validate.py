"""Validation: valid mappings pass, invalid ones fail with the exact path and message."""

from __future__ import annotations

from typing import Any

import pytest

from sluice.errors import SluiceError
from sluice.mapping import DIRECTIVES, MappingError, compile, validate

VALID = [
    pytest.param({"foo": "bar"}, id="raw-object"),
    pytest.param(["cool", 1, None, True, 1.5], id="raw-array"),
    pytest.param("neat", id="raw-string"),
    pytest.param(123, id="raw-number"),
    pytest.param(None, id="raw-null"),
    pytest.param({"@path": "$.foo.bar"}, id="path"),
    pytest.param({"@path": ["integrations", "A.B"]}, id="path-keys"),
    pytest.param({"@path": {"@path": "$.foo"}}, id="path-from-directive"),
    pytest.param({"a": 1, "b": {"@path": "$.foo.bar"}}, id="path-nested"),
    pytest.param({"@literal": False}, id="literal"),
    pytest.param({"@template": "Hello {{traits.name}}"}, id="template"),
    pytest.param({"@if": {"exists": {"@path": "$.a"}, "then": 1}}, id="if-partial"),
    pytest.param(
        {"@if": {"blank": {"@path": "$.a"}, "else": {"@if": {"exists": 1}}}}, id="if-nested"
    ),
    pytest.param({"@case": {"operator": "lower", "value": {"@path": "$.a"}}}, id="case"),
    pytest.param({"@replace": {"pattern": "a", "value": "abc", "ignorecase": True}}, id="replace"),
    pytest.param({"@arrayPath": ["$.products", {"id": {"@path": "$.productId"}}]}, id="array-path"),
    pytest.param({"@arrayPath": ["$.products", {"id": 1}, "ignored", 42]}, id="array-path-extras"),
    pytest.param({"@flatten": {"value": {"@path": "$.p"}, "separator": "."}}, id="flatten"),
    pytest.param({"@json": {"mode": "decode", "value": {"@path": "$.p"}}}, id="json"),
    pytest.param({"@merge": {"objects": [{"a": 1}, {"@path": "$.p"}]}}, id="merge-no-direction"),
    pytest.param({"@transform": {"apply": {"a": 1}, "mapping": {"@path": "$.a"}}}, id="transform"),
    pytest.param({"@excludeWhenNull": {"@path": "$.a"}}, id="exclude-when-null"),
    pytest.param({"@path": "$.a", "_metadata": {"label": "A"}}, id="metadata-next-to-directive"),
    pytest.param({"_metadata": 1, "a": 2}, id="metadata-in-plain-object"),
]


@pytest.mark.parametrize("mapping", VALID)
def test_valid_mappings(mapping: Any) -> None:
    validate(mapping)
    compile(mapping)


INVALID = [
    # structure
    pytest.param(
        {"a": 1, "@path": "$.x"},
        "",
        "mixes the directive @path with other keys: a",
        id="mixed-root",
    ),
    pytest.param(
        {"properties": {"name": {"@path": "$.x", "b": 2}}},
        "properties.name",
        "mixes the directive @path with other keys: b",
        id="mixed-nested",
    ),
    pytest.param(
        {"x": {"@path": "a", "@template": "b"}},
        "x",
        "should have one @-prefixed key but it has 2: @path, @template",
        id="two-directives",
    ),
    pytest.param(
        {"x": {"@field": "$.a"}},
        "x.@field",
        f"@field is not a directive; expected one of {', '.join(DIRECTIVES)}",
        id="unknown-directive",
    ),
    pytest.param(
        {"x": {"@liquid": "{{ a }}"}},
        "x.@liquid",
        "@liquid is not supported by Sluice's mapping kit",
        id="liquid",
    ),
    pytest.param(
        {"items": [1, {"@path": 2}]},
        "items[1].@path",
        "should be a string or a mapping directive but it is a number",
        id="inside-list",
    ),
    pytest.param(
        {"a": {1, 2}},
        "a",
        "should be a mapping directive or a JSON value but it is a Python set",
        id="not-json",
    ),
    pytest.param({1: "a"}, "", "keys should be strings but 1 is not", id="non-string-key"),
    # @path, @template
    pytest.param(
        {"properties": {"name": {"@path": 123}}},
        "properties.name.@path",
        "should be a string or a mapping directive but it is a number",
        id="path-number",
    ),
    pytest.param(
        {"neat": {"@path": {}}},
        "neat.@path",
        "should be a string or a mapping directive but it is an object",
        id="path-object",
    ),
    pytest.param(
        {"neat": {"@path": False}},
        "neat.@path",
        "should be a string or a mapping directive but it is a boolean",
        id="path-boolean",
    ),
    pytest.param(
        {"neat": {"@path": ["a", 1]}},
        "neat.@path",
        "should be a string or a mapping directive but it is an array",
        id="path-bad-keys",
    ),
    pytest.param(
        {"@path": {"@path": None}},
        "@path.@path",
        "should be a string or a mapping directive but it is null",
        id="path-nested-bad",
    ),
    pytest.param(
        {"@template": False},
        "@template",
        "should be a string or a mapping directive but it is a boolean",
        id="template-boolean",
    ),
    pytest.param(
        {"g": {"@template": {"foo": "bar"}}},
        "g.@template",
        "should be a string or a mapping directive but it is an object",
        id="template-object",
    ),
    # @if
    pytest.param({"@if": "a"}, "@if", "should be an object but it is a string", id="if-string"),
    pytest.param(
        {"@if": {"@path": "a"}},
        "@if",
        "should be an object but it is a directive",
        id="if-directive",
    ),
    pytest.param(
        {"@if": {"then": 1}},
        "@if",
        'requires an "exists" or a "blank" condition',
        id="if-no-condition",
    ),
    pytest.param(
        {"@if": {"exists": None, "then": 1}},
        "@if",
        'requires an "exists" or a "blank" condition',
        id="if-null-condition",
    ),
    pytest.param(
        {"@if": {"exists": 1, "thne": 1}},
        "@if",
        'has an unknown key "thne"; expected exists, blank, then, else',
        id="if-typo",
    ),
    pytest.param(
        {"f": {"@if": {"exists": {"@path": 1}}}},
        "f.@if.exists.@path",
        "should be a string or a mapping directive but it is a number",
        id="if-nested-invalid",
    ),
    pytest.param(
        {"@if": {"exists": 1, "then": {"@foo": 1}}},
        "@if.then.@foo",
        f"@foo is not a directive; expected one of {', '.join(DIRECTIVES)}",
        id="if-branch-invalid",
    ),
    # @case
    pytest.param(
        {"@case": "not an object"},
        "@case",
        "should be an object but it is a string",
        id="case-string",
    ),
    pytest.param(
        {"@case": {"wrongKey": "lower"}},
        "@case",
        'has an unknown key "wrongKey"; expected operator, value',
        id="case-unknown-key",
    ),
    pytest.param(
        {"@case": {"value": "a"}},
        "@case",
        'should have field "operator" but it does not',
        id="case-no-operator",
    ),
    pytest.param(
        {"@case": {"operator": "snake", "value": "a"}},
        "@case.operator",
        'should be "lower" or "upper" but it is "snake"',
        id="case-bad-operator",
    ),
    pytest.param(
        {"@case": {"operator": 1}},
        "@case.operator",
        'should be "lower" or "upper" but it is a number',
        id="case-operator-number",
    ),
    pytest.param(
        {"@case": {"operator": "lower", "value": 12}},
        "@case.value",
        "should be a string or a mapping directive but it is a number",
        id="case-value-number",
    ),
    # @replace
    pytest.param(
        {"@replace": "abc"},
        "@replace",
        "should be an object but it is a string",
        id="replace-string",
    ),
    pytest.param(
        {"@replace": {"replacement": "g", "value": "a"}},
        "@replace",
        'should have field "pattern" but it does not',
        id="replace-no-pattern",
    ),
    pytest.param(
        {"@replace": {"pattern": "w", "replacement": "g"}},
        "@replace",
        'should have field "value" but it does not',
        id="replace-no-value",
    ),
    pytest.param(
        {"@replace": {"pattern": "waaaaayyytoooooloooong", "value": "a"}},
        "@replace.pattern",
        "should be a string of length 10 or less",
        id="replace-pattern-too-long",
    ),
    pytest.param(
        {"@replace": {"pattern": "", "value": "a"}},
        "@replace.pattern",
        "should be a string of length 1 or greater",
        id="replace-pattern-empty",
    ),
    pytest.param(
        {"@replace": {"pattern": "w", "replacement": "waaaaytooolong", "value": "a"}},
        "@replace.replacement",
        "should be a string of length 10 or less",
        id="replace-replacement-too-long",
    ),
    pytest.param(
        {"@replace": {"pattern": "w", "replacement": None, "value": "a"}},
        "@replace.replacement",
        "should be a string but it is null",
        id="replace-replacement-null",
    ),
    pytest.param(
        {"@replace": {"pattern": "_", "pattern2": "r" * 20, "value": "a"}},
        "@replace.pattern2",
        "should be a string of length 10 or less",
        id="replace-pattern2-too-long",
    ),
    pytest.param(
        {"@replace": {"pattern": "_", "replacement2": "r" * 20, "value": "a"}},
        "@replace.replacement2",
        "should be a string of length 10 or less",
        id="replace-replacement2-too-long",
    ),
    pytest.param(
        {"@replace": {"pattern": "+", "value": "a", "global": "abc"}},
        "@replace.global",
        "should be a boolean but it is a string",
        id="replace-global-string",
    ),
    pytest.param(
        {"@replace": {"pattern": "+", "value": "a", "ignorecase": "abc"}},
        "@replace.ignorecase",
        "should be a boolean but it is a string",
        id="replace-ignorecase-string",
    ),
    pytest.param(
        {"@replace": {"pattern": "+", "value": 1}},
        "@replace.value",
        "should be a string or a mapping directive but it is a number",
        id="replace-value-number",
    ),
    # @arrayPath
    pytest.param(
        {"neat": {"@arrayPath": [True]}},
        "neat.@arrayPath[0]",
        "should be a string or a mapping directive but it is a boolean",
        id="array-path-bad-path",
    ),
    pytest.param(
        {"neat": {"@arrayPath": "bad syntax"}},
        "neat.@arrayPath",
        "should be an array but it is a string",
        id="array-path-string",
    ),
    pytest.param(
        {"neat": {"@arrayPath": []}},
        "neat.@arrayPath",
        "should have a path or a directive as its first item",
        id="array-path-empty",
    ),
    pytest.param(
        {"neat": {"@arrayPath": ["$.p", {"id": {"@path": 1}}]}},
        "neat.@arrayPath[1].id.@path",
        "should be a string or a mapping directive but it is a number",
        id="array-path-bad-shape",
    ),
    # @flatten
    pytest.param(
        {"neat": {"@flatten": "abcdefgh"}},
        "neat.@flatten",
        "should be an object but it is a string",
        id="flatten-string",
    ),
    pytest.param(
        {"@flatten": {"value": {"@path": "$.foo"}}},
        "@flatten",
        'should have field "separator" but it does not',
        id="flatten-no-separator",
    ),
    pytest.param(
        {"@flatten": {"separator": ","}},
        "@flatten",
        'should have field "value" but it does not',
        id="flatten-no-value",
    ),
    pytest.param(
        {"@flatten": {"value": 1, "separator": {"@path": "$.s"}}},
        "@flatten.separator",
        "should be a string but it is a directive",
        id="flatten-separator-directive",
    ),
    pytest.param(
        {"@flatten": {"value": 1, "separator": ""}},
        "@flatten.separator",
        "should be a string of length 1 or greater",
        id="flatten-separator-empty",
    ),
    pytest.param(
        {"@flatten": {"value": 1, "separator": ".", "omitArrays": "yes"}},
        "@flatten.omitArrays",
        "should be a boolean but it is a string",
        id="flatten-omit-arrays-string",
    ),
    # @json
    pytest.param(
        {"neat": {"@json": "not an object"}},
        "neat.@json",
        "should be an object but it is a string",
        id="json-string",
    ),
    pytest.param(
        {"neat": {"@json": {"mode": "oops", "value": 1}}},
        "neat.@json.mode",
        'should be "encode" or "decode" but it is "oops"',
        id="json-bad-mode",
    ),
    pytest.param(
        {"neat": {"@json": {"mode": "encode"}}},
        "neat.@json",
        'should have field "value" but it does not',
        id="json-no-value",
    ),
    pytest.param(
        {"neat": {"@json": {"value": 1}}},
        "neat.@json",
        'should have field "mode" but it does not',
        id="json-no-mode",
    ),
    # @merge
    pytest.param(
        {"oops": {"@merge": [{}, 123]}},
        "oops.@merge",
        "should be an object but it is an array",
        id="merge-array",
    ),
    pytest.param(
        {"@merge": {"direction": "left", "objects": {"oops": True}}},
        "@merge.objects",
        "should be an array but it is an object",
        id="merge-objects-object",
    ),
    pytest.param(
        {"@merge": {"direction": "left", "objects": [{}, 1]}},
        "@merge.objects[1]",
        "should be an object or a mapping directive but it is a number",
        id="merge-item-number",
    ),
    pytest.param(
        {"@merge": {"direction": "up", "objects": [{}]}},
        "@merge.direction",
        'should be "left" or "right" but it is "up"',
        id="merge-bad-direction",
    ),
    pytest.param(
        {"@merge": {"direction": "left"}},
        "@merge",
        'should have field "objects" but it does not',
        id="merge-no-objects",
    ),
    # @transform
    pytest.param(
        {"@transform": "string"},
        "@transform",
        "should be an object but it is a string",
        id="transform-string",
    ),
    pytest.param(
        {"@transform": {"mapping": {"cool": 1}}},
        "@transform",
        'should have field "apply" but it does not',
        id="transform-no-apply",
    ),
    pytest.param(
        {"@transform": {"apply": {"a": 1}}},
        "@transform",
        'should have field "mapping" but it does not',
        id="transform-no-mapping",
    ),
    pytest.param(
        {"@transform": {"apply": "string", "mapping": {}}},
        "@transform.apply",
        "should be an object or a mapping directive but it is a string",
        id="transform-apply-string",
    ),
    pytest.param(
        {"@transform": {"apply": {}, "mapping": "string"}},
        "@transform.mapping",
        "should be an object or a mapping directive but it is a string",
        id="transform-mapping-string",
    ),
    # @excludeWhenNull, @literal
    pytest.param(
        {"x": {"@excludeWhenNull": {"@path": 5}}},
        "x.@excludeWhenNull.@path",
        "should be a string or a mapping directive but it is a number",
        id="exclude-when-null-invalid",
    ),
    pytest.param(
        {"x": {"@literal": {"a": {"@nope": 1}}}},
        "x.@literal.a.@nope",
        f"@nope is not a directive; expected one of {', '.join(DIRECTIVES)}",
        id="literal-invalid-inside",
    ),
]


@pytest.mark.parametrize(("mapping", "path", "message"), INVALID)
def test_invalid_mappings(mapping: Any, path: str, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        validate(mapping)
    assert (caught.value.path, caught.value.message) == (path, message)


def test_error_is_a_sluice_error_and_reads_path_first() -> None:
    with pytest.raises(SluiceError) as caught:
        validate({"properties": {"name": {"@path": 123}}})
    assert str(caught.value) == (
        "properties.name.@path: should be a string or a mapping directive but it is a number"
    )
    with pytest.raises(MappingError) as root:
        validate({"@if": {"then": 1}})
    assert str(root.value) == '@if: requires an "exists" or a "blank" condition'


def test_compile_validates() -> None:
    unsupported = r"^x\.@liquid: @liquid is not supported by Sluice's mapping kit$"
    with pytest.raises(MappingError, match=unsupported):
        compile({"x": {"@liquid": "{{ a }}"}})
    with pytest.raises(MappingError, match="a Python set"):
        compile({"a": {1}})


def test_liquid_is_checked_as_segment_checks_it_where_segments_code_runs_it() -> None:
    """A bridged destination's mapping is evaluated by Segment's kit, which has @liquid."""
    validate({"x": {"@liquid": "{{ properties.a | upcase }}"}}, liquid=True)
    with pytest.raises(MappingError, match=r"^x\.@liquid: should be a string but it is a number$"):
        validate({"x": {"@liquid": 1}}, liquid=True)
    with pytest.raises(MappingError, match="length 1000 or less"):
        validate({"x": {"@liquid": "a" * 1001}}, liquid=True)
    with pytest.raises(MappingError, match="not supported"):  # the flag does not leak
        validate({"x": {"@liquid": "{{ a }}"}})
