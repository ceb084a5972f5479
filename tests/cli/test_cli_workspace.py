"""`sluice apply` and `sluice export`, run as the real command in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sluice.config import Settings
from sluice.store.factory import open_store

SLUICE = [sys.executable, "-m", "sluice"]

WORKSPACE = """\
workspace: acme
sources:
  - id: web
    write_keys: [wk_web_0001]
  - id: app
destinations:
  - id: amp
    type: amplitude
    sources: [web]
    settings:
      api_key: amp_key_1
"""


def sluice(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    return subprocess.run(
        [*SLUICE, *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_apply_prints_a_summary_and_the_generated_key(tmp_path: Path) -> None:
    write(tmp_path / "workspace.yaml", WORKSPACE)
    result = sluice("apply", "workspace.yaml", "--data-dir", "data", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        "Applied workspace.yaml: 4 created, 0 updated, 0 deleted.",
        "  + workspace/workspace",
        "  + source/web",
        "  + source/app",
        "  + destination/amp",
    ]
    assert lines[5] == "Generated write keys (`sluice export` shows them again):"
    match = re.fullmatch(r"  app: ([A-Za-z0-9_-]{32})", lines[6])
    assert match is not None
    store = open_store(Settings(data_dir=tmp_path / "data"))
    try:
        keys = {s.id: s.write_keys for s in store.sources()}
    finally:
        store.close()
    assert keys == {"web": ("wk_web_0001",), "app": (match[1],)}


def test_apply_twice_reports_no_changes(tmp_path: Path) -> None:
    write(tmp_path / "workspace.yaml", WORKSPACE)
    sluice("apply", "workspace.yaml", "--data-dir", "data", cwd=tmp_path)
    result = sluice("apply", "workspace.yaml", "--data-dir", "data", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "No changes: the store already matches workspace.yaml.\n"


def test_apply_removes_what_the_file_no_longer_lists(tmp_path: Path) -> None:
    write(tmp_path / "workspace.yaml", WORKSPACE)
    sluice("apply", "workspace.yaml", "--data-dir", "data", cwd=tmp_path)
    write(tmp_path / "smaller.yaml", "workspace: acme\nsources: [{id: web}]\n")
    result = sluice("apply", "smaller.yaml", "--data-dir", "data", "--dry-run", cwd=tmp_path)
    assert result.stdout == (
        "Would apply smaller.yaml: 0 created, 0 updated, 2 deleted.\n"
        "  - destination/amp\n"
        "  - source/app\n"
    )
    result = sluice("apply", "smaller.yaml", "--data-dir", "data", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Applied smaller.yaml: 0 created, 0 updated, 2 deleted.\n")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        pytest.param(
            "sources:\n  - id: web\n  - id: app\n    write_keys: wk_app_0001\n",
            "ws.yaml: sources[1].write_keys: Expected array, got str",
            id="wrong-type",
        ),
        pytest.param(
            "sources: [{id: web, enabld: false}]\n",
            "ws.yaml: sources[0].enabld: Unknown field (did you mean 'enabled'? expected one of:"
            " id, name, write_keys, enabled, webhook)",
            id="unknown-field",
        ),
        pytest.param(
            "sources: [{id: web}]\ndestinations: [{id: a, type: x, sources: [app]}]\n",
            "ws.yaml: destinations[0].sources[0]: Unknown source 'app'",
            id="unknown-source",
        ),
        pytest.param(
            "sources: [{id: web\n",
            "ws.yaml: line 2, column 1: Invalid YAML: expected ',' or '}', but got '<stream end>'"
            " (while parsing a flow mapping)",
            id="yaml-syntax",
        ),
    ],
)
def test_apply_invalid_file_exits_2_without_traceback(
    tmp_path: Path, text: str, error: str
) -> None:
    write(tmp_path / "ws.yaml", text)
    result = sluice("apply", "ws.yaml", "--data-dir", "data", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", error + "\n")


def test_apply_missing_file(tmp_path: Path) -> None:
    result = sluice("apply", "nope.yaml", "--data-dir", "data", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "nope.yaml: Cannot read the file: No such file or directory\n"


def test_apply_kept_key_clash_names_the_file(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "sources: [{id: web, write_keys: [wk_moved_01]}]\n")
    sluice("apply", "a.yaml", "--data-dir", "data", cwd=tmp_path)
    write(tmp_path / "b.yaml", "sources: [{id: web}, {id: app, write_keys: [wk_moved_01]}]\n")
    result = sluice("apply", "b.yaml", "--data-dir", "data", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("b.yaml: sources[0].write_keys: Source 'web' keeps")


def test_export_round_trips_through_apply(tmp_path: Path) -> None:
    write(tmp_path / "workspace.yaml", WORKSPACE)
    sluice("apply", "workspace.yaml", "--data-dir", "data", cwd=tmp_path)
    exported = sluice("export", "--data-dir", "data", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith("workspace: acme\nsources:\n  - id: app\n")
    write(tmp_path / "exported.yaml", exported.stdout)
    result = sluice("apply", "exported.yaml", "--data-dir", "data", cwd=tmp_path)
    assert result.stdout == "No changes: the store already matches exported.yaml.\n"


def test_export_to_a_file(tmp_path: Path) -> None:
    write(tmp_path / "workspace.yaml", WORKSPACE)
    sluice("apply", "workspace.yaml", "--data-dir", "data", cwd=tmp_path)
    stdout = sluice("export", "--data-dir", "data", cwd=tmp_path).stdout
    result = sluice("export", "--data-dir", "data", "--output", "out.yaml", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "")
    assert (tmp_path / "out.yaml").read_text(encoding="utf-8") == stdout
