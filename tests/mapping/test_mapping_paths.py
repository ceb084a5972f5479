"""Paths, `@path`, and how resolved values are assembled: undefined removed, null kept."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bridge import conftest as bridge_fixtures
from sluice.mapping import UNDEFINED, MappingError, compile, get_path, resolve

bridge_data_dir = bridge_fixtures.bridge_data_dir  # the installed package (tests/bridge)
EVENT: dict[str, Any] = {
    "type": "track",
    "userId": "u1",
    "properties": {
        "name": "Sweater",
        "price": 0,
        "empty": "",
        "none": None,
        "items": [{"sku": "a"}, {"sku": "b", "tags": ["x", "y"]}],
    },
    "integrations": {"Actions Amplitude": {"session_id": 42}, "Company.Billing": {"id": "c1"}},
    "$": "dollar",
}


PATHS = [
    pytest.param("$.userId", "u1", id="leading-dollar-dot"),
    pytest.param("userId", "u1", id="no-dollar"),
    pytest.param("properties.name", "Sweater", id="nested"),
    pytest.param("$.properties.items[1].sku", "b", id="bracket-index"),
    pytest.param("properties.items.1.sku", "b", id="dot-index"),
    pytest.param("properties[items][0][sku]", UNDEFINED, id="bracket-word-is-one-key"),
    pytest.param("properties['items'][0]['sku']", "a", id="quoted-bracket-keys"),
    pytest.param("properties.items[1].tags[0]", "x", id="index-in-nested-list"),
    pytest.param("properties.price", 0, id="zero-is-a-value"),
    pytest.param("properties.empty", "", id="empty-string-is-a-value"),
    pytest.param("properties.none", None, id="null-is-a-value"),
    pytest.param("$.integrations.Actions Amplitude.session_id", 42, id="spaces-in-key"),
    pytest.param("properties.name.", "Sweater", id="trailing-dot-ignored"),
    pytest.param("properties..name", "Sweater", id="empty-segment-ignored"),
    pytest.param("properties.missing", UNDEFINED, id="missing-key"),
    pytest.param("properties.name.first", UNDEFINED, id="through-a-string"),
    pytest.param("properties.none.x", None, id="through-null-gives-null"),
    pytest.param("properties.price.x", 0, id="through-zero-gives-zero"),
    pytest.param("properties.empty.x.y", "", id="through-empty-gives-empty"),
    pytest.param("properties.name.length", 7, id="string-length"),
    pytest.param("properties.items.length", 2, id="list-length"),
    pytest.param("properties.name[0]", "S", id="string-index"),
    pytest.param("properties.items[2]", UNDEFINED, id="index-out-of-range"),
    pytest.param("properties.items[01]", UNDEFINED, id="non-canonical-index"),
    pytest.param("properties.items[-1]", UNDEFINED, id="negative-index"),
    pytest.param("integrations['Actions Amplitude']", {"session_id": 42}, id="quotes-dropped"),
    pytest.param('integrations["Company.Billing"].id', UNDEFINED, id="dots-split-in-quotes"),
    pytest.param("$.{{userId}}", UNDEFINED, id="braces-are-not-special"),
    pytest.param("..", EVENT, id="only-separators-are-the-root"),
]


@pytest.mark.parametrize(("path", "expected"), PATHS)
def test_get_path(path: str, expected: Any) -> None:
    assert get_path(EVENT, path) == expected
    if expected is UNDEFINED:
        assert get_path(EVENT, path) is UNDEFINED


@pytest.mark.parametrize("path", ["$", "$.", "", ".", "$.."], ids=lambda p: repr(p))
def test_root_paths_name_the_whole_payload(path: str) -> None:
    assert get_path(EVENT, path) is EVENT


def test_get_path_takes_a_list_of_keys_literally() -> None:
    assert get_path(EVENT, ["integrations", "Company.Billing", "id"]) == "c1"
    assert get_path(EVENT, ["$"]) == "dollar"


def test_undefined_is_falsy_and_named() -> None:
    assert not UNDEFINED
    assert repr(UNDEFINED) == "UNDEFINED"


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        pytest.param({"neat": {"@path": "$.userId"}}, {"neat": "u1"}, id="simple"),
        pytest.param({"neat": {"@path": "$.oops"}}, {}, id="missing-field-removed"),
        pytest.param({"neat": {"@path": "$.properties.none"}}, {"neat": None}, id="null-kept"),
        pytest.param(
            {"neat": {"@path": "$.properties.none"}, "sweet": {"@path": "$.userId"}},
            {"neat": None, "sweet": "u1"},
            id="null-and-value",
        ),
        pytest.param(
            {"neat": {"@path": ["integrations", "Company.Billing", "id"]}},
            {"neat": "c1"},
            id="list-of-keys",
        ),
        pytest.param({"@path": {"@path": "$.type"}}, UNDEFINED, id="nested-directive-missing"),
        pytest.param({"@path": "$.userId", "_metadata": {"type": "variable"}}, "u1", id="metadata"),
        pytest.param(
            {"x": {"y": {"z": {"@path": "$.nope"}}}, "foo": 1},
            {"x": {"y": {}}, "foo": 1},
            id="nested-objects",
        ),
        pytest.param(
            {"list": [{"@path": "$.nope"}, {"@path": "$.userId"}, {"a": {"@path": "$.nope"}}]},
            {"list": [None, "u1", {}]},
            id="undefined-in-list-becomes-null",
        ),
        pytest.param({"a": {}, "b": [], "c": None}, {"a": {}, "b": [], "c": None}, id="empty-kept"),
        pytest.param({"@path": "$.nope"}, None, id="top-level-undefined-is-none"),
        pytest.param("neat", "neat", id="scalar-mapping"),
        pytest.param(["cool", 1], ["cool", 1], id="list-mapping"),
    ],
)
def test_path_directive_and_assembly(mapping: Any, expected: Any) -> None:
    result = resolve(mapping, EVENT)
    assert result == (None if expected is UNDEFINED else expected)


def test_nested_path_directive_reads_the_path_it_resolves_to() -> None:
    assert resolve({"@path": {"@path": "$.foo"}}, {"foo": "bar", "bar": "baz"}) == "baz"


def test_nested_path_directive_must_resolve_to_a_string() -> None:
    evaluate = compile({"neat": {"@path": {"@path": "$.n"}}})
    with pytest.raises(MappingError) as caught:
        evaluate({"n": 3})
    assert caught.value.path == "neat.@path"
    assert caught.value.message == "expected the path to be a string, got int"


def test_output_does_not_alias_the_event() -> None:
    event = {"properties": {"tags": ["a"], "address": {"city": "Paris"}}}
    out = resolve({"p": {"@path": "$.properties"}, "t": {"@path": "properties.tags"}}, event)
    out["p"]["address"]["city"] = "Lyon"
    out["t"].append("b")
    assert event == {"properties": {"tags": ["a"], "address": {"city": "Paris"}}}


def test_constant_output_is_fresh_each_time() -> None:
    evaluate = compile({"a": {"b": 1}, "c": [1, 2]})
    first = evaluate({})
    first["a"]["b"] = 2
    first["c"].append(3)
    assert evaluate({}) == {"a": {"b": 1}, "c": [1, 2]}


def test_compile_is_cached_by_json() -> None:
    assert compile({"a": {"@path": "$.x"}}) is compile({"a": {"@path": "$.x"}})
    assert compile({"a": 1, "b": 2}) is not compile({"b": 2, "a": 1})


def test_output_keeps_mapping_key_order() -> None:
    out = resolve({"z": 1, "y": {"@path": "$.userId"}, "x": 2}, EVENT)
    assert list(out) == ["z", "y", "x"]


def test_paths_read_as_segments_get_reads_them(bridge_data_dir: Path, tmp_path: Path) -> None:
    """Every path above through actions-core's own `get` in Node, on the same event."""
    core = bridge_data_dir / "bridge" / "node_modules" / "@segment" / "actions-core"
    script = tmp_path / "get.js"
    script.write_text(
        "const { get } = require(process.argv[2] + '/dist/cjs/get.js');"
        "const [event, paths] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(paths.map((p) => { const v = get(event, p);"
        " return v === undefined ? {undefined: true} : {value: v} })))"
    )
    paths = [p.values[0] for p in PATHS]
    # `@path`'s own step (a leading `$.`, `$` for the root) before `get`, as the kit does.
    plain = ["" if p == "$" else p.removeprefix("$.") for p in paths]
    done = subprocess.run(
        ["node", str(script), str(core)], input=json.dumps([EVENT, plain]),
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    theirs = json.loads(done.stdout)
    for path, answer in zip(paths, theirs, strict=True):
        ours = get_path(EVENT, path)
        expected = UNDEFINED if answer.get("undefined") else answer["value"]
        assert ours == expected, (path, ours, expected)
