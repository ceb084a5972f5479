"""`transformations:` and `privacy.pii` in the workspace file: accepted, stored and exported
unchanged, or refused by `sluice apply` with the field named."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sluice.config import Settings
from sluice.store.factory import open_store
from sluice.workspace import WorkspaceError, apply_workspace, export_workspace, parse_workspace
from sluice.workspace.files import dump_workspace

BASE: dict[str, Any] = {
    "sources": [{"id": "web"}, {"id": "app"}],
    "destinations": [
        {"id": "hooks", "type": "webhook", "sources": ["web"],
         "settings": {"url": "http://127.0.0.1:9/x"}},
        {"id": "page", "type": "webhook", "mode": "device", "settings": {}},
    ],
    "transformations": [
        {"id": "rename", "source": "web", "type": "rename_event", "event": "order_completed",
         "new_event_name": "Order Completed"},
        {"id": "props", "source": "web", "destination": "hooks", "type": "rename_properties",
         "event": "order_completed", "renames": [{"old": "order.id", "new": "order_id"}]},
    ],
    "privacy": {"pii": {
        "matchers": [{"name": "loyalty", "classification": "red", "terms": ["loyalty number"]}],
        "sources": {"web": {"red": "block"}},
        "destinations": {"hooks": {"red": "hash", "yellow": "block"}},
    }},
}  # fmt: skip


def parse(doc: dict[str, Any]) -> Any:
    return parse_workspace(yaml.safe_dump(doc), "ws.yaml")


def refused(change: Any) -> WorkspaceError:
    doc = copy.deepcopy(BASE)
    change(doc)
    with pytest.raises(WorkspaceError) as caught:
        parse(doc)
    return caught.value


def test_a_workspace_with_both_is_stored_and_exported_unchanged(tmp_path: Path) -> None:
    ws = parse(BASE)
    store = open_store(Settings(data_dir=tmp_path / "data"))
    try:
        report = apply_workspace(store, ws)
        assert "transformation/rename" in report.created and "privacy/privacy" in report.created
        exported = export_workspace(store)
        assert exported.transformations == sorted(ws.transformations, key=lambda t: t.id)
        assert exported.privacy == ws.privacy
        again = apply_workspace(store, parse_workspace(dump_workspace(exported), None))
        assert not again.changed
    finally:
        store.close()


def _set(path: str, value: Any) -> Any:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = doc
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (_set("transformations/0/source", "nope"), "transformations[0].source", "Unknown source"),
        (_set("transformations/1/destination", "nope"), "transformations[1].destination",
         "Unknown destination"),
        (_set("transformations/1/destination", "page"), "transformations[1].destination",
         "device mode"),
        (_set("transformations/1/source", "app"), "transformations[1].destination",
         "does not receive source 'app'"),
        (_set("transformations/0/new_event_name", None), "transformations[0].new_event_name",
         "needs"),
        (_set("transformations/0/event", None), "transformations[0].event", "names its event"),
        (_set("transformations/0/call", "identify"), "transformations[0].call",
         "applies to track"),
        (_set("transformations/1/renames", [{"old": "a.b.c.d.e", "new": "x"}]),
         "transformations[1].renames[0]", "at most 4"),
        (_set("transformations/1/renames", [{"old": "a", "new": "b"}, {"old": "a", "new": "c"}]),
         "transformations[1].renames[1].old", "renamed twice"),
        (_set("transformations/0/renames", [{"old": "a", "new": "b"}]),
         "transformations[0].renames", "not used by a rename_event"),
        (_set("transformations/0/type", "casing"), "transformations[0].casing", "needs"),
        (_set("transformations/1", {"id": "c", "source": "web", "type": "casing", "event": "E",
                                    "casing": {"fql": "length(properties.a)",
                                               "property": "properties.b"}}),
         "transformations[1].casing.fql", "lowercase"),
        (_set("transformations/1", {"id": "v", "source": "web", "type": "set_values",
                                    "event": "E",
                                    "values": [{"paths": ["userId"], "value": 1}]}),
         "transformations[1].values[0].paths[0]", "must start with"),
        (_set("transformations/1/type", "bogus"), "transformations[1].type", "expected one of"),
        (_set("privacy/pii/sources", {"nope": {"red": "block"}}), "privacy.pii.sources.nope",
         "Unknown source"),
        (_set("privacy/pii/destinations", {"page": {"red": "hash"}}),
         "privacy.pii.destinations.page", "device mode"),
        (_set("privacy/pii/destinations", {"hooks": {}}), "privacy.pii.destinations.hooks",
         "does nothing"),
        (_set("privacy/pii/destinations", {"hooks": {"red": "encrypt"}}),
         "privacy.pii.destinations[...].red", "Invalid enum value"),
        (_set("privacy/pii/matchers", [{"name": "x", "classification": "red", "match": "regex",
                                        "target": "value", "terms": ["(unclosed"]}]),
         "privacy.pii.matchers[0].terms[0]", "Invalid regular expression"),
        (_set("privacy/pii/matchers", [{"name": "x", "classification": "red", "match": "regex",
                                        "terms": ["a{99999999999}"]}]),
         "privacy.pii.matchers[0].terms[0]", "repetition number is too large"),
        (_set("privacy/pii/matchers", [{"name": f"m{i}", "classification": "red",
                                        "terms": ["x"]} for i in range(101)]),
         "privacy.pii.matchers", "at most 100"),
    ],
)  # fmt: skip
def test_refusals_name_the_field(change: Any, path: str, words: str) -> None:
    error = refused(change)
    assert error.path == path, str(error)
    assert words in error.message, str(error)
    assert error.file == "ws.yaml"


def test_one_transformation_per_source_type_event_and_destination() -> None:
    def twice(doc: dict[str, Any]) -> None:
        doc["transformations"].append(
            {"id": "again", "source": "web", "type": "rename_event", "event": "order_completed",
             "new_event_name": "Other"}
        )  # fmt: skip

    error = refused(twice)
    assert error.path == "transformations[2].type"
    assert "transformations[0] is already a rename_event transformation" in error.message
    # The same event for another destination, or another type, is its own transformation.
    doc = copy.deepcopy(BASE)
    doc["transformations"].append(
        {"id": "for-hooks", "source": "web", "destination": "hooks", "type": "rename_event",
         "event": "order_completed", "new_event_name": "Other"}
    )  # fmt: skip
    parse(doc)


def test_sluice_apply_prints_the_file_and_field(tmp_path: Path) -> None:
    doc = copy.deepcopy(BASE)
    doc["transformations"][0]["source"] = "nope"
    file = tmp_path / "ws.yaml"
    file.write_text(yaml.safe_dump(doc))
    done = subprocess.run(
        [sys.executable, "-m", "sluice", "apply", str(file), "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode != 0
    assert f"{file}: transformations[0].source: Unknown source 'nope'" in done.stderr
