"""Sluice as someone installs it from a release: `uv build` makes the sdist and, from the sdist,
the wheel (so the wheel proves the sdist is complete: C sources, setup.py, templates); the wheel
is installed with uv's pip into a fresh virtual environment, and `sluice serve` runs from there,
in a folder outside this checkout, and takes an event.

The install uses the versions uv.lock pins (the ones every other test runs against), from uv's
cache when it has them: what is tested here is the package, not a newer release of a dependency.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import time
import tomllib
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec
import pytest

from server import basic, clean_env, free_port, http_request, require

REPO = Path(__file__).resolve().parents[1]
UI = REPO / "src" / "sluice" / "ui"
C_SOURCES = (
    "src/sluice/warehouse/_scan.c",
    "src/sluice/warehouse/_scan.h",
    "src/sluice/warehouse/_scan_json.c",
    "src/sluice/warehouse/_scan_outputs.c",
    "src/sluice/warehouse/_pool.c",
    "src/sluice/warehouse/_pool.h",
    "src/sluice/warehouse/_pgcopy.c",
    "src/sluice/warehouse/_group.c",
    "src/sluice/warehouse/_group.h",
    "src/sluice/warehouse/_group_survey.c",
    "src/sluice/warehouse/_group_repeated.c",
    "src/sluice/warehouse/_group_order.c",
    "src/sluice/lake/_distinct.c",
    "src/sluice/store/_sqlite_read.c",
    "src/sluice/store/_sqlite_columns.c",
    "src/sluice/store/_sqlite_read.h",
    "src/sluice/_same_bytes.h",
)
EXTENSIONS = {
    "sluice/warehouse/_scan",
    "sluice/warehouse/_pgcopy",
    "sluice/warehouse/_group",
    "sluice/lake/_distinct",
}
SQLITE_EXTENSION = "sluice/store/_sqlite_read"  # built where SQLite's header is found too
VERSION: str = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
COMMAND_TIMEOUT_S = 300  # a build or an install from an empty cache downloads
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def run(command: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
    )
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def ui_files() -> list[str]:
    """The templates and static files, as paths inside the `sluice` package."""
    files = [*(UI / "templates").glob("*.html"), *(UI / "static").iterdir()]
    assert len(files) > 3, files
    return sorted(str(f.relative_to(REPO / "src")) for f in files if f.is_file())


# What ships of npm: the pinned manifests and lockfiles (`sluice bridge install` and `sluice
# analytics-js install` run `npm ci` with them), never an installed package.
BRIDGE_JS = (
    "bridge/js/package.json", "bridge/js/package-lock.json", "bridge/js/sidecar.js",
    "analyticsjs/js/package.json", "analyticsjs/js/package-lock.json",
)  # fmt: skip


def from_npm_or_tests(name: str) -> bool:
    if name.endswith(BRIDGE_JS):
        return False
    return "node_modules" in name or "tests/" in name or name.endswith((".mjs", "package.json"))


def has_compiler() -> bool:
    """What setup.py needs to build the C extensions (it leaves them out otherwise)."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"], "Python.h")
    return shutil.which(cc) is not None and headers.exists()


def has_sqlite_header() -> bool:
    """What the log's compiled reader needs besides (setup.py leaves it out without it)."""
    folders = [
        Path(sysconfig.get_paths()["include"]),
        Path("/usr/include"),
        Path("/usr/local/include"),
    ]
    return any((folder / "sqlite3.h").exists() for folder in folders)


def installed_env() -> dict[str, str]:
    """No `SLUICE_*`, and nothing that would lead the venv's Python back to this checkout."""
    env = clean_env({"SLUICE_WORKERS": "1"})
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require(shutil.which("uv") is not None, "uv is not installed")
    out = tmp_path_factory.mktemp("dist")
    run(["uv", "build", "--out-dir", str(out), str(REPO)], cwd=out)
    return out


def only(folder: Path, pattern: str) -> Path:
    found = list(folder.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_the_sdist_holds_the_c_sources_and_the_ui_files(dist: Path) -> None:
    sdist = only(dist, f"sluice-{VERSION}.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    expected = {"pyproject.toml", "setup.py", "README.md", "CHANGELOG.md", "LICENSE", "NOTICE"}
    expected |= set(C_SOURCES)
    expected |= {f"src/{name}" for name in ui_files()}
    expected |= {f"src/sluice/{name}" for name in BRIDGE_JS}
    assert expected <= names, sorted(expected - names)
    assert not [name for name in names if from_npm_or_tests(name)]


def test_the_wheel_holds_the_ui_files_and_nothing_from_npm(dist: Path) -> None:
    wheel = only(dist, f"sluice-{VERSION}-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    licenses = f"sluice-{VERSION}.dist-info/licenses"
    expected = {*ui_files(), "sluice/py.typed", f"{licenses}/LICENSE", f"{licenses}/NOTICE"}
    expected |= {f"sluice/{name}" for name in BRIDGE_JS}
    assert expected <= names, sorted(expected - names)
    assert not [name for name in names if from_npm_or_tests(name)]
    if has_compiler():
        built = {name.split(".", 1)[0] for name in names if name.endswith(".so")}
        expected = EXTENSIONS | ({SQLITE_EXTENSION} if has_sqlite_header() else set())
        assert built == expected, sorted(names)


@contextlib.contextmanager
def serving(sluice: Path, data_dir: Path, cwd: Path) -> Iterator[tuple[int, Path]]:
    """`<venv>/bin/sluice serve` until /healthz answers; its port and its output's file."""
    port = free_port()
    log_path = cwd / "serve.log"
    command = [str(sluice), "serve", "--port", str(port), "--data-dir", str(data_dir)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=installed_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # granian's workers and Sluice's worker go with one signal
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            code = proc.poll()
            assert code is None, f"sluice serve exited ({code}):\n{log_path.read_text()}"
            with contextlib.suppress(OSError):
                if http_request(port, "GET", "/healthz", timeout=1.0).status == 200:
                    break
            assert time.monotonic() < deadline, f"no /healthz:\n{log_path.read_text()}"
            time.sleep(0.05)
        yield port, log_path
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT_S)


def test_the_wheel_installs_into_a_fresh_venv_and_serves_outside_the_checkout(
    dist: Path, tmp_path: Path
) -> None:
    wheel = only(dist, f"sluice-{VERSION}-*.whl")
    venv = tmp_path / "venv"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert not elsewhere.resolve().is_relative_to(REPO)
    constraints = tmp_path / "constraints.txt"
    run(
        ["uv", "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes",
         "--no-header", "--quiet", "--project", str(REPO), "--output-file", str(constraints)],
        cwd=tmp_path,
    )  # fmt: skip
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    run(
        ["uv", "pip", "install", "--python", str(python), "-c", str(constraints), str(wheel)],
        cwd=tmp_path,
    )

    env = installed_env()
    sluice = venv / "bin" / "sluice"
    assert run([str(sluice), "--version"], cwd=elsewhere, env=env) == f"sluice {VERSION}\n"
    # The package imported is the venv's, not this checkout's src/.
    probe = "import sluice, sluice.warehouse.compiled as c; print(sluice.__file__, c._scan is None)"
    where, no_compiled = run([str(python), "-c", probe], cwd=elsewhere, env=env).split()
    assert Path(where).is_relative_to(venv), where
    if has_compiler():
        assert no_compiled == "False", "the wheel's C extensions did not import"

    data_dir = elsewhere / "data"
    with serving(sluice, data_dir, elsewhere) as (port, log_path):
        # The first start makes a source and prints its write key, once.
        match = re.search(r"write key (\S+)", log_path.read_text())
        assert match, log_path.read_text()
        event = {"userId": "user-1", "event": "Signed Up", "properties": {"plan": "pro"}}
        headers = {"Authorization": basic(match.group(1)), "Content-Type": "application/json"}
        answer = http_request(port, "POST", "/v1/track", msgspec.json.encode(event), headers)
        assert (answer.status, answer.json()) == (200, {"success": True})
        ui = http_request(port, "GET", "/setup")  # the first-run screen: no admin yet
        assert ui.status == 200 and b"<form" in ui.body, ui  # its templates are in the venv
        css = http_request(port, "GET", "/static/ui.css")
        assert css.status == 200 and css.body == (UI / "static" / "ui.css").read_bytes()

    shown = run([str(sluice), "events", "--json", "--data-dir", str(data_dir)], elsewhere, env)
    stored = [msgspec.json.decode(line) for line in shown.splitlines()]
    assert [(e["event"], e["userId"]) for e in stored] == [("Signed Up", "user-1")]
