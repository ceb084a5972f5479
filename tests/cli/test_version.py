"""`sluice --version`, and the one place the version comes from: pyproject.toml's `version`,
read back from the installed package's metadata (sluice/__init__.py), so the two cannot drift."""

from __future__ import annotations

import subprocess
import tomllib
from importlib.metadata import version
from pathlib import Path

import sluice
from server import SLUICE, clean_env

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
VERSION: str = tomllib.loads(PYPROJECT.read_text())["project"]["version"]


def sluice_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SLUICE, *args], env=clean_env(), capture_output=True, text=True, timeout=60
    )


def test_the_version_is_pyprojects() -> None:
    # An install older than pyproject.toml (not re-synced) would fail here, not ship stale.
    assert sluice.__version__ == version("sluice") == VERSION


def test_sluice_version_prints_it_and_exits_0() -> None:
    done = sluice_cli("--version")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"sluice {VERSION}\n", "")


def test_version_wins_over_a_command_and_its_options() -> None:
    # Eager, as --help is: no command runs, nothing is opened.
    done = sluice_cli("--version", "status", "--data-dir", "/nonexistent/sluice")
    assert (done.returncode, done.stdout) == (0, f"sluice {VERSION}\n")


def test_the_help_lists_it() -> None:
    done = sluice_cli("--help")
    assert done.returncode == 0, done.stderr
    assert "--version" in done.stdout
