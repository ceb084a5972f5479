"""Reading, checking and writing workspace files: every error names the file and the path."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.workspace import (
    Destination,
    Source,
    TrackingPlan,
    Warehouse,
    Workspace,
    WorkspaceError,
    dump_workspace,
    load_workspace_file,
    parse_workspace,
)

FULL = """\
workspace: acme
sources:
  - id: web
    name: Web site
    write_keys: [wk_web_0001]
  - id: app
    enabled: false
destinations:
  - id: amp
    type: amplitude
    name: Amplitude
    sources: [web, app]
    settings: {api_key: secret, region: eu}
    filters: [{if: "type = 'track'", drop: true}]
    mappings: [{from: userId, to: user_id}]
warehouses:
  - id: main
    type: duckdb
    settings: {path: warehouse.duckdb}
    sources: [web]
tracking_plans:
  - id: plan
    name: Plan
    sources: [app]
    rules: {events: [{name: Signed Up}]}
"""


def test_parse_full_document() -> None:
    ws = parse_workspace(FULL, "workspace.yaml")
    assert ws == Workspace(
        workspace="acme",
        sources=[
            Source(id="web", name="Web site", write_keys=["wk_web_0001"]),
            Source(id="app", enabled=False),
        ],
        destinations=[
            Destination(
                id="amp",
                type="amplitude",
                name="Amplitude",
                sources=["web", "app"],
                settings={"api_key": "secret", "region": "eu"},
                filters=[{"if": "type = 'track'", "drop": True}],
                mappings=[{"from": "userId", "to": "user_id"}],
            )
        ],
        warehouses=[
            Warehouse(
                id="main", type="duckdb", settings={"path": "warehouse.duckdb"}, sources=["web"]
            )
        ],
        tracking_plans=[
            TrackingPlan(
                id="plan", name="Plan", sources=["app"], rules={"events": [{"name": "Signed Up"}]}
            )
        ],
    )


def test_defaults() -> None:
    ws = parse_workspace("sources: [{id: web}]", None)
    assert ws.workspace == "default"
    assert ws.sources == [Source(id="web", name=None, write_keys=[], enabled=True)]
    assert ws.sources[0].display_name == "web"
    assert (ws.destinations, ws.warehouses, ws.tracking_plans) == ([], [], [])


def test_dump_round_trips() -> None:
    ws = parse_workspace(FULL, None)
    assert parse_workspace(dump_workspace(ws), None) == ws


def test_dump_is_stable_with_sources_first() -> None:
    text = dump_workspace(parse_workspace("tracking_plans: []\nsources: [{id: web}]", None))
    assert text == (
        "workspace: default\n"
        "sources:\n"
        "  - id: web\n"
        "destinations: []\n"
        "warehouses: []\n"
        "tracking_plans: []\n"
    )


def test_dump_quotes_strings_yaml_would_misread() -> None:
    ws = Workspace(
        destinations=[Destination(id="d", type="x", settings={"a": "yes", "b": "12", "c": "null"})]
    )
    assert parse_workspace(dump_workspace(ws), None) == ws


def test_dates_stay_strings() -> None:
    text = "tracking_plans: [{id: p, rules: {events: [{name: A, description: 2024-01-31}]}}]"
    ws = parse_workspace(text, None)
    assert ws.tracking_plans[0].rules == {"events": [{"name": "A", "description": "2024-01-31"}]}


def test_merge_keys_may_be_overridden() -> None:
    text = """\
sources: [{id: web}]
destinations:
  - id: a
    type: webhook
    settings: &common {url: "https://a.example", retries: 3}
  - id: b
    type: webhook
    settings: {<<: *common, url: "https://b.example"}
"""
    ws = parse_workspace(text, None)
    assert ws.destinations[1].settings == {"url": "https://b.example", "retries": 3}


INVALID = [
    pytest.param(
        "sources:\n  - id: web\n  - id: app\n    write_keys: wk_app_0001\n",
        "sources[1].write_keys",
        "Expected array, got str",
        id="wrong-type",
    ),
    pytest.param(
        "sources: []\nsorces: []\n",
        "sorces",
        "Unknown field (did you mean 'sources'? expected one of: workspace, sources,"
        " destinations, warehouses, tracking_plans, identity, computed_traits, audiences)",
        id="unknown-top-level-field",
    ),
    pytest.param(
        "sources: [{id: web, write_key: [wk_web_0001]}]",
        "sources[0].write_key",
        "Unknown field (did you mean 'write_keys'? expected one of: id, name, write_keys,"
        " enabled, webhook)",
        id="unknown-source-field",
    ),
    pytest.param(
        "sources: [{id: web}]\ndestinations: [{id: a, type: x, filter: []}]",
        "destinations[0].filter",
        "Unknown field (did you mean 'filters'? expected one of: id, type, name, mode, enabled,"
        " sources, settings, filters, mappings, consent_categories, delivery)",
        id="unknown-destination-field",
    ),
    pytest.param(
        "sources: [{name: Web}]",
        "sources[0].id",
        "Missing required field",
        id="missing-id",
    ),
    pytest.param(
        "destinations: [{id: amp}]",
        "destinations[0].type",
        "Missing required field",
        id="missing-type",
    ),
    pytest.param(
        "sources: [{id: Web}]",
        "sources[0].id",
        "Expected an id: 1 to 64 characters of a-z, 0-9, '_' and '-', starting with a letter"
        " or digit",
        id="bad-id",
    ),
    pytest.param(
        "sources: [{id: " + "a" * 65 + "}]",
        "sources[0].id",
        "Expected an id: 1 to 64 characters of a-z, 0-9, '_' and '-', starting with a letter"
        " or digit",
        id="id-too-long",
    ),
    pytest.param(
        "sources: [{id: web, write_keys: [short]}]",
        "sources[0].write_keys[0]",
        "Expected a write key: 8 to 128 characters of A-Z, a-z, 0-9, '_' and '-'",
        id="write-key-too-short",
    ),
    pytest.param(
        "sources: [{id: web, write_keys: [wk_web_0001, 'has space']}]",
        "sources[0].write_keys[1]",
        "Expected a write key: 8 to 128 characters of A-Z, a-z, 0-9, '_' and '-'",
        id="write-key-bad-character",
    ),
    pytest.param(
        "sources:\n  - id: web\n  - id: app\n  - id: web\n",
        "sources[2].id",
        "Duplicate id 'web' (also at sources[0])",
        id="duplicate-source-id",
    ),
    pytest.param(
        "sources: [{id: web}]\ndestinations: [{id: a, type: x}, {id: a, type: y}]",
        "destinations[1].id",
        "Duplicate id 'a' (also at destinations[0])",
        id="duplicate-destination-id",
    ),
    pytest.param(
        "sources:\n"
        "  - {id: web, write_keys: [wk_shared_01]}\n"
        "  - {id: app, write_keys: [wk_app_0001, wk_shared_01]}\n",
        "sources[1].write_keys[1]",
        "Duplicate write key (also at sources[0].write_keys[0])",
        id="duplicate-write-key",
    ),
    pytest.param(
        "sources: [{id: web}]\ndestinations: [{id: a, type: x, sources: [web, mobile]}]",
        "destinations[0].sources[1]",
        "Unknown source 'mobile'",
        id="unknown-source-reference",
    ),
    pytest.param(
        "sources: [{id: web}]\nwarehouses: [{id: w, type: duckdb, sources: [app]}]",
        "warehouses[0].sources[0]",
        "Unknown source 'app'",
        id="unknown-source-in-warehouse",
    ),
    pytest.param(
        "sources: [{id: web}]\ntracking_plans: [{id: p, sources: [web, web]}]",
        "tracking_plans[0].sources[1]",
        "Source 'web' is listed twice",
        id="source-listed-twice",
    ),
    pytest.param(
        "warehouses: [{id: w, type: mysql}]",
        "warehouses[0].type",
        "Invalid enum value 'mysql', expected one of: duckdb, postgres, lake",
        id="bad-warehouse-type",
    ),
    pytest.param(
        "sources: [{id: web, enabled: maybe}]",
        "sources[0].enabled",
        "Expected bool, got str",
        id="bad-bool",
    ),
    pytest.param(
        "destinations: [{id: a, type: x, settings: {1: one}}]",
        "destinations[0].settings",
        "Expected str, got int in a key (quote the key)",
        id="non-string-settings-key",
    ),
    pytest.param(
        "tracking_plans: [{id: p, rules: {events: {on: true}}}]",
        "tracking_plans[0].rules.events",
        "Expected a string key, got bool True (quote the key)",
        id="nested-yaml-boolean-key",
    ),
    pytest.param(
        "destinations: [{id: a, type: x, settings: {blob: !!binary aGVsbG8=}}]",
        "destinations[0].settings.blob",
        "Expected a string, number, boolean, null, list or mapping, got bytes",
        id="non-json-value",
    ),
    pytest.param(
        "destinations: [{id: a, type: x, mappings: [{scale: .nan}]}]",
        "destinations[0].mappings[0].scale",
        "Expected a finite number",
        id="nan",
    ),
    pytest.param(
        "warehouses: [{id: w, type: duckdb, settings: {max_event_tables: -1}}]",
        "warehouses[0].settings.max_event_tables",
        "Expected a whole number of event tables per source, 0 or more, got -1",
        id="negative-max-event-tables",
    ),
    pytest.param(
        "warehouses: [{id: w, type: postgres, settings: {max_event_tables: '100'}}]",
        "warehouses[0].settings.max_event_tables",
        "Expected a whole number of event tables per source, 0 or more, got '100'",
        id="max-event-tables-as-text",
    ),
    pytest.param(
        "- id: web\n",
        "",
        "Expected object, got array",
        id="document-not-a-mapping",
    ),
    pytest.param(
        "",
        "",
        "The document is empty (write `sources: []` to mean a workspace with nothing in it)",
        id="empty-document",
    ),
    pytest.param(
        "sources:\n  - id: web\n    name: [Web\n",
        "line 4, column 1",
        "Invalid YAML: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence)",
        id="yaml-syntax-error",
    ),
    pytest.param(
        "sources:\n  - id: web\n    id: app\n",
        "line 3, column 5",
        "Invalid YAML: duplicate key 'id'",
        id="yaml-duplicate-key",
    ),
]


@pytest.mark.parametrize(("text", "path", "message"), INVALID)
def test_invalid_documents(text: str, path: str, message: str) -> None:
    with pytest.raises(WorkspaceError) as info:
        parse_workspace(text, "workspace.yaml")
    assert (info.value.file, info.value.path, info.value.message) == (
        "workspace.yaml",
        path,
        message,
    )
    expected = f"workspace.yaml: {path}: {message}" if path else f"workspace.yaml: {message}"
    assert str(info.value) == expected


def test_error_without_file() -> None:
    with pytest.raises(WorkspaceError, match=r"^sources\[0\]\.id: Missing required field$"):
        parse_workspace("sources: [{}]", None)


def test_load_file(tmp_path: Path) -> None:
    path = tmp_path / "workspace.yaml"
    path.write_text(FULL, encoding="utf-8")
    assert load_workspace_file(path) == parse_workspace(FULL, None)


def test_load_file_names_the_file_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "workspace.yaml"
    path.write_text("sources: [{id: web, write_keys: wk}]", encoding="utf-8")
    with pytest.raises(WorkspaceError) as info:
        load_workspace_file(path)
    assert str(info.value) == f"{path}: sources[0].write_keys: Expected array, got str"


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(WorkspaceError) as info:
        load_workspace_file(path)
    assert str(info.value) == f"{path}: Cannot read the file: No such file or directory"


def test_load_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "workspace.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(WorkspaceError) as info:
        load_workspace_file(path)
    assert str(info.value) == f"{path}: Not a UTF-8 text file"
