"""Applying workspace documents to the real store and exporting them back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from sluice.config import Settings
from sluice.store.base import ConfigObject, EventStore
from sluice.store.base_event_store import SourceRow
from sluice.store.errors import StoreError
from sluice.store.factory import open_store
from sluice.workspace import (
    ApplyReport,
    WorkspaceError,
    apply_workspace,
    dump_workspace,
    ensure_default_source,
    export_workspace,
    parse_workspace,
)

WRITE_KEY = re.compile(r"[A-Za-z0-9_-]{32}")

FULL = """\
workspace: acme
sources:
  - id: web
    name: Web site
    write_keys: [wk_web_0001]
  - id: app
destinations:
  - id: amp
    type: amplitude
    sources: [web]
    settings: {api_key: secret}
    filters: [{if: "type = 'track'"}]
warehouses:
  - id: main
    type: duckdb
    sources: [web, app]
tracking_plans:
  - id: plan
    sources: [app]
    rules: {events: []}
"""


@pytest.fixture(params=["sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    assert request.param == "sqlite"
    opened = open_store(Settings(data_dir=tmp_path))
    yield opened
    opened.close()


def apply_text(store: EventStore, text: str) -> ApplyReport:
    return apply_workspace(store, parse_workspace(text, None))


def test_first_apply_creates_everything(store: EventStore) -> None:
    report = apply_text(store, FULL)
    assert report.created == [
        "workspace/workspace",
        "source/web",
        "source/app",
        "destination/amp",
        "warehouse/main",
        "tracking_plan/plan",
    ]
    assert report.updated == report.deleted == []
    assert list(report.generated_keys) == ["app"]
    assert WRITE_KEY.fullmatch(report.generated_keys["app"])


def test_sources_are_readable_by_the_store(store: EventStore) -> None:
    report = apply_text(store, FULL)
    assert sorted(store.sources(), key=lambda s: s.id) == [
        SourceRow("app", "app", (report.generated_keys["app"],), True),
        SourceRow("web", "Web site", ("wk_web_0001",), True),
    ]


def test_source_body_always_has_all_four_keys(store: EventStore) -> None:
    apply_text(store, "sources: [{id: web, write_keys: [wk_web_0001]}]")
    [obj] = store.list_config("source")
    assert msgspec.json.decode(obj.body) == {
        "id": "web",
        "name": "web",
        "write_keys": ["wk_web_0001"],
        "enabled": True,
    }


def test_apply_twice_changes_nothing(store: EventStore) -> None:
    apply_text(store, FULL)
    version = store.config_version()
    report = apply_text(store, FULL)
    assert not report.changed
    assert report.generated_keys == {}
    assert store.config_version() == version


def test_keys_are_kept_when_omitted(store: EventStore) -> None:
    first = apply_text(store, FULL)
    apply_text(store, FULL.replace("name: Web site", "name: Website"))
    app = next(s for s in store.sources() if s.id == "app")
    assert app.write_keys == (first.generated_keys["app"],)


def test_listed_keys_replace_stored_ones(store: EventStore) -> None:
    apply_text(store, "sources: [{id: web}]")
    report = apply_text(store, "sources: [{id: web, write_keys: [wk_new_0001, wk_new_0002]}]")
    assert report.updated == ["source/web"]
    assert [s.write_keys for s in store.sources()] == [("wk_new_0001", "wk_new_0002")]


def test_objects_missing_from_the_file_are_removed(store: EventStore) -> None:
    apply_text(store, FULL)
    report = apply_text(store, "workspace: acme\nsources: [{id: web, name: Web site}]\n")
    assert report.created == []
    assert report.updated == []
    assert sorted(report.deleted) == [
        "destination/amp",
        "source/app",
        "tracking_plan/plan",
        "warehouse/main",
    ]
    assert [(o.kind, o.id) for o in store.list_config()] == [
        ("source", "web"),
        ("workspace", "workspace"),
    ]


def test_changes_are_reported_as_updates(store: EventStore) -> None:
    apply_text(store, FULL)
    changed = FULL.replace("workspace: acme", "workspace: acme-eu").replace(
        "api_key: secret", "api_key: rotated"
    )
    report = apply_text(store, changed)
    assert report.updated == ["workspace/workspace", "destination/amp"]
    assert report.created == report.deleted == []


def test_dry_run_changes_nothing(store: EventStore) -> None:
    version = store.config_version()
    report = apply_workspace(store, parse_workspace(FULL, None), dry_run=True)
    assert len(report.created) == 6
    assert store.list_config() == []
    assert store.config_version() == version


def test_other_kinds_are_left_alone(store: EventStore) -> None:
    other = ConfigObject("suppression", "user-1", b'{"user_id":"1"}')
    store.put_config(other)
    report = apply_text(store, FULL)
    assert report.deleted == []
    assert other in store.list_config()


def test_export_then_apply_changes_nothing(store: EventStore) -> None:
    apply_text(store, FULL)
    exported = dump_workspace(export_workspace(store))
    report = apply_text(store, exported)
    assert not report.changed
    assert dump_workspace(export_workspace(store)) == exported


def test_export_content(store: EventStore) -> None:
    key = apply_text(store, FULL).generated_keys["app"]
    ws = export_workspace(store)
    expected = parse_workspace(FULL, None)
    expected.sources[1].write_keys = [key]
    expected.sources.reverse()  # the store lists objects by id
    assert ws == expected


def test_export_empty_store(store: EventStore) -> None:
    assert dump_workspace(export_workspace(store)) == (
        "workspace: default\nsources: []\ndestinations: []\nwarehouses: []\ntracking_plans: []\n"
    )


def test_export_refuses_unreadable_objects(store: EventStore) -> None:
    store.put_config(ConfigObject("destination", "amp", b'{"id": "amp"}'))
    with pytest.raises(StoreError, match="invalid destination 'amp'"):
        export_workspace(store)


def test_kept_key_clashing_with_a_listed_key(store: EventStore) -> None:
    apply_text(store, "sources: [{id: web, write_keys: [wk_moved_01]}]")
    with pytest.raises(WorkspaceError) as info:
        apply_text(store, "sources: [{id: web}, {id: app, write_keys: [wk_moved_01]}]")
    assert info.value.path == "sources[0].write_keys"
    assert "listed at sources[1].write_keys[0]" in info.value.message


def test_ensure_default_source(store: EventStore) -> None:
    created = ensure_default_source(store)
    assert created is not None
    source_id, key = created
    assert source_id == "default"
    assert WRITE_KEY.fullmatch(key)
    assert list(store.sources()) == [SourceRow("default", "Default", (key,), True)]
    assert ensure_default_source(store) is None


def test_ensure_default_source_leaves_existing_sources(store: EventStore) -> None:
    apply_text(store, "sources: [{id: web}]")
    assert ensure_default_source(store) is None
    assert [s.id for s in store.sources()] == ["web"]


def test_apply_replaces_the_default_source(store: EventStore) -> None:
    ensure_default_source(store)
    report = apply_text(store, "sources: [{id: web}]")
    assert report.deleted == ["source/default"]
