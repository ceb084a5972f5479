"""Installing Sluice's pinned npm packages once per lockfile for the tests that need them.

The bridge, analytics.js and device mode each install a pinned package into a data dir; the
tests install each into a cache folder named by its lockfile's hash (`SLUICE_TEST_CACHE`,
default ~/.cache/sluice-tests) under a file lock, so parallel runs install once and a lockfile
change installs anew. Within one test run (one process, or all workers of a pytest-xdist run)
the install happens once: a later call would rewrite files a sidecar of another worker may be
reading at that moment.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


def installed_once(name: str, lock_sha: str, install: Callable[[Path], object]) -> Path:
    """A data dir holding the package `install` puts there; fails in CI without node/npm."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail(f"node and npm are needed to install {name}")
        pytest.skip("node/npm not installed")
    base = Path(os.environ.get("SLUICE_TEST_CACHE", "~/.cache/sluice-tests")).expanduser()
    root = base / f"{name}-{lock_sha[:16]}"
    root.mkdir(parents=True, exist_ok=True)
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid-{os.getpid()}"
    marker = root / ".installed-by-run"
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (marker.exists() and marker.read_text() == run):
            install(root)
            marker.write_text(run)
    return root
