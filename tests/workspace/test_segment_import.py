"""`sluice import segment FILE` (issue 18, scope 4): a Segment workspace export, written from the
Public API's documented response shapes (segment_export/export.json: GET /sources, GET
/destinations, GET /destination/{id}/filters, GET /destinations/{id}/subscriptions), becomes a
workspace file that `sluice apply` takes as it is; what cannot be mapped is named with why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge import conftest as bridge_fixtures
from sluice.workspace.segment_import import SegmentExportError, convert

EXPORT = Path(__file__).parent / "segment_export" / "export.json"
bridge_data_dir = bridge_fixtures.bridge_data_dir  # the installed bridge (tests/bridge)


def sluice(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    return subprocess.run(
        [sys.executable, "-m", "sluice", *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def imported(tmp_path: Path, data_dir: Path) -> tuple[dict[str, Any], str]:
    done = sluice("import", "segment", EXPORT, "-o", "ws.yaml", "--data-dir", data_dir,
                  cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return yaml.safe_load((tmp_path / "ws.yaml").read_text()), done.stderr


def test_an_export_becomes_a_workspace_that_applies(tmp_path: Path) -> None:
    ws, said = imported(tmp_path, tmp_path / "data")
    assert ws["workspace"] == "acme-prod"
    assert [(s["id"], s.get("write_keys"), s.get("enabled", True)) for s in ws["sources"]] == [
        ("web-site", ["vYq4Q5LCbqhX9m2sDpPnYx2b3Gk7tF1a"], True),
        ("ios_app", ["Lq2wE3rT4yU5iO6pA7sD8fG9hJ0kZ1xC"], False),
    ]
    by_id = {d["id"]: d for d in ws["destinations"]}
    assert {i: (d["type"], d["sources"]) for i, d in by_id.items()} == {
        "amplitude-prod": ("amplitude", ["web-site"]),
        "mixpanel": ("mixpanel", ["ios_app"]),
        "order-hook": ("webhook-actions", ["web-site"]),
    }
    amplitude = by_id["amplitude-prod"]
    assert amplitude["settings"] == {"apiKey": "amp-api-key-1234", "secretKey": "amp-secret-5678",
                                     "endpoint": "europe"}  # fmt: skip
    assert [(m["name"], m["action"], m["trigger"], m.get("enabled", True))
            for m in amplitude["mappings"]] == [
        ("Track Calls", "logEventV2", 'type = "track"', True),
        ("Identify Calls", "identifyUser", 'type = "identify"', False),
    ]  # fmt: skip
    assert amplitude["mappings"][0]["mapping"]["event_type"] == {"@path": "$.event"}
    assert amplitude["filters"][0] == {
        "title": "Drop test users", "description": "internal traffic", "if": "userId = 'test'",
        "actions": [{"type": "DROP"}], "enabled": True,
    }  # fmt: skip
    assert "mappings" not in by_id["mixpanel"]  # no subscriptions: the presets apply
    # What was left out, and why, on stderr.
    assert "imported 2 sources, 3 destinations" in said
    assert "source ios_app: 1 write key(s) not usable" in said
    assert "destination Mixpanel (wHeRtYuIoPaSdFgHjKlZxC): settings.apiRegion" in said
    assert "destination Google Analytics (gA1bC2dE3fG4hI5jK6lM7n): google-analytics is a " \
           "classic (non-Actions) destination" in said  # fmt: skip
    assert "actions-braze-cloud is one of Segment's Actions destinations" in said
    assert "run `sluice bridge install`" in said

    applied = sluice("apply", "ws.yaml", "--data-dir", "data", cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert "6 created" in applied.stdout
    exported = yaml.safe_load(sluice("export", "--data-dir", "data", cwd=tmp_path).stdout)
    assert [d["id"] for d in exported["destinations"]] == list(by_id)


def test_with_the_bridge_segments_own_destinations_come_along(
    tmp_path: Path, bridge_data_dir: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "bridge").symlink_to(bridge_data_dir / "bridge")
    ws, said = imported(tmp_path, data_dir)
    braze = next(d for d in ws["destinations"] if d["id"] == "braze")
    assert braze["type"] == "segment:braze" and braze["settings"]["app_id"] == "braze-app-1"
    assert "actions-braze-cloud" not in said
    applied = sluice("apply", "ws.yaml", "--data-dir", "data", cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "not JSON"),
        ('{"sources": [], "audiences2": []}', "unknown parts ['audiences2']"),
        ('{"sources": {"data": {"sources": "web"}}}', "`sources`: expected a list of objects"),
        ('{"subscriptions": [{"id": "s1"}]}', "an item has no destinationId"),
        (
            '{"sources": [], "destinations": [{"id": "d1", "metadata": {"slug": "actions-slack"},'
            ' "settings": ["not", "an", "object"]}]}',
            "settings: expected an object, got list",
        ),
    ],
    ids=["not-json", "unknown-part", "not-a-list", "no-destination-id", "settings-not-object"],
)
def test_a_bad_export_is_refused_naming_the_file(tmp_path: Path, content: str, words: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    done = sluice("import", "segment", bad, "--data-dir", "data", cwd=tmp_path)
    assert done.returncode == 2 and str(bad) in done.stderr and words in done.stderr, done.stderr
    assert not (tmp_path / "data").exists()  # nothing was set up


def test_bare_lists_and_items_naming_their_destination_are_read_too() -> None:
    export = json.loads(EXPORT.read_text())
    bare = {
        "sources": export["sources"]["data"]["sources"],
        "destinations": export["destinations"]["data"]["destinations"][:1],
        "subscriptions": export["subscriptions"]["fP7qoQw2HTWt9WdMr718gn"]["data"]["subscriptions"],
        "filters": [],
    }
    result = convert(bare)
    (amplitude,) = result.document["destinations"]
    assert [m["action"] for m in amplitude["mappings"]] == ["logEventV2", "identifyUser"]
    with pytest.raises(SegmentExportError, match="expected a JSON object"):
        convert([])  # type: ignore[arg-type]
