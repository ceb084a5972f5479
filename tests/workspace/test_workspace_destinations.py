"""Destinations checked against their type before a workspace is applied: settings, filters,
mappings and triggers, with the field named; and stored filters that predate the check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sluice.config import Settings
from sluice.delivery.config import compile_destination
from sluice.delivery.filters import filter_errors
from sluice.delivery.plan import decide
from sluice.store.base import ConfigObject
from sluice.store.factory import open_store
from sluice.workspace import WorkspaceError, parse_workspace
from sluice.workspace.destinations import check_destinations

DROP = [{"type": "drop"}]
WORKSPACE = """\
sources: [{id: web, write_keys: [wk_web_0001]}]
destinations:
  - id: hook
    type: webhook
    sources: [web]
    settings: {urls: ["http://127.0.0.1:9/hook"]}
"""


def check(**destination: Any) -> None:
    hook = {"id": "hook", "type": "webhook", "settings": {"urls": ["http://127.0.0.1:9/x"]}}
    check_destinations(parse_workspace(msgspec.json.encode({"destinations": [
        {"id": "first", "type": "webhook", "settings": {"urls": ["http://127.0.0.1:9/y"]}},
        {**hook, **destination},
    ]}).decode(), None))  # fmt: skip


def refused(**destination: Any) -> WorkspaceError:
    with pytest.raises(WorkspaceError) as info:
        check(**destination)
    return info.value


FILTER_ERRORS = [
    # (id, filters, path, message)
    ("condition", [{"title": "t", "if": "all", "actions": DROP},
                   {"title": "u", "if": 'userId = oops"', "actions": DROP}],
     "destinations[1].filters[1].if",
     "unterminated string at position 13 in 'userId = oops\"'"),
    ("condition of a disabled filter",
     [{"title": "t", "if": "type = ", "actions": DROP, "enabled": False}],
     "destinations[1].filters[0].if",
     "expected a value, a field or '(' but the expression ends at position 7 in 'type = '"),
    ("action", [{"title": "t", "if": "all", "actions": [{"type": "explode"}]}],
     "destinations[1].filters[0].actions[0].type",
     "Invalid value 'explode'; expected one of sample, drop, drop_properties, allow_properties"),
    ("missing field", [{"if": "all", "actions": DROP}],
     "destinations[1].filters[0].title", "Object missing required field `title`"),
    ("too many", [{"title": str(i), "if": "all", "actions": DROP} for i in range(11)],
     "destinations[1].filters[10]", "a destination has at most 10 filters, got 11"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("filters", "path", "message"),
    [case[1:] for case in FILTER_ERRORS],
    ids=[case[0] for case in FILTER_ERRORS],
)
def test_a_filter_that_cannot_work_is_refused_with_its_field(
    filters: list[dict[str, Any]], path: str, message: str
) -> None:
    error = refused(filters=filters)
    assert (error.path, error.message) == (path, message)


def test_a_trigger_is_refused_the_same_way() -> None:
    mapping = {"action": "send", "trigger": "type = ", "mapping": {"@path": "$"}}
    error = refused(mappings=[mapping])
    assert error.path == "destinations[1].mappings[0].trigger"
    assert "at position 7 in 'type = '" in error.message


def test_valid_filters_pass() -> None:
    check(filters=[{"title": "t", "if": "type = 'page' and userId = null", "actions": DROP}])


def _sluice(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    return subprocess.run(
        [sys.executable, "-m", "sluice", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("dry_run", [False, True], ids=["apply", "dry-run"])
def test_sluice_apply_refuses_a_filter_that_does_not_compile(tmp_path: Path, dry_run: bool) -> None:
    path = tmp_path / "workspace.yaml"
    path.write_text(WORKSPACE)
    assert _sluice("apply", path, "--data-dir", "data", cwd=tmp_path).returncode == 0
    condition = "userId = 'test"  # the closing quote is missing
    filters = f'[{{title: No tests, if: "{condition}", actions: [{{type: drop}}]}}]'
    path.write_text(f"{WORKSPACE}    filters: {filters}\n")
    result = _sluice(
        "apply", path, "--data-dir", "data", *(["--dry-run"] if dry_run else []), cwd=tmp_path
    )
    assert result.returncode == 2, result.stdout
    assert result.stderr.strip() == (
        f"{path}: destinations[0].filters[0].if:"
        ' unterminated string at position 9 in "userId = \'test"'
    )
    store = open_store(Settings(data_dir=tmp_path / "data"))
    try:
        (hook,) = store.list_config("destination")
    finally:
        store.close()
    assert "filters" not in msgspec.json.decode(hook.body)  # nothing was applied


def test_a_stored_filter_from_before_the_check_still_drops_every_event(tmp_path: Path) -> None:
    # A document stored before the check (or written by other means) is not refused when read:
    # delivery keeps the fail-closed rule, and says which filter is why.
    store = open_store(Settings(data_dir=tmp_path))
    try:
        body = {
            "id": "hook",
            "type": "webhook",
            "settings": {"urls": ["http://127.0.0.1:9/hook"]},
            "filters": [{"title": "No tests", "if": "userId = 'test", "actions": DROP}],
        }
        store.put_config(ConfigObject("destination", "hook", msgspec.json.encode(body)))
        (stored,) = store.list_config("destination")
    finally:
        store.close()
    config = compile_destination(stored.body)
    assert decide(config, {"type": "track", "event": "E", "userId": "u"}) == (
        "invalid_filter:No tests",
        [],
    )
    assert filter_errors(config.filters) == [
        "filter #0 'No tests', field if: unterminated string at position 9 in \"userId = 'test\""
    ]
