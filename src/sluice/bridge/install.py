"""`sluice bridge install`: the pinned npm package into `<data_dir>/bridge/`, then its catalogue.

The lockfile (with the overrides the package needs: an installable AWS Kinesis client, fast-uri
3.0.6 so ajv accepts schema keys with spaces, xml-js that one destination requires without
declaring it) ships in the wheel next to `sidecar.js`; `npm ci --ignore-scripts` installs
exactly it, no install scripts run. A marker with the lockfile's sha256 makes a second install
of the same lock skip npm, and the catalogue is rewritten only when the lock or the sidecar
changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sluice.bridge.catalog import CATALOG_FILE, Catalog, CatalogDoc, build_catalog, write_catalog
from sluice.bridge.errors import BridgeInstallFailed, BridgeNotInstalled, NodeUnavailable
from sluice.bridge.sidecar import Sidecar

MIN_NODE = (18, 17)
SHIPPED_FILES = ("package.json", "package-lock.json", "sidecar.js")
PACKAGE = "@segment/action-destinations"
MARKER = ".sluice-lock-sha256"
NPM_TIMEOUT_S = 900


@dataclass(frozen=True, slots=True)
class BridgeState:
    """What is installed in a data dir (for `sluice bridge status`)."""

    bridge_dir: Path
    package_version: str | None
    catalogue: Catalog | None
    node_version: str | None
    node_error: str | None


def js_dir() -> Path:
    """The shipped package.json, lockfile and sidecar.js."""
    return Path(str(resources.files("sluice.bridge") / "js"))


def bridge_dir_of(data_dir: Path) -> Path:
    return Path(data_dir) / "bridge"


def lock_sha256() -> str:
    return hashlib.sha256((js_dir() / "package-lock.json").read_bytes()).hexdigest()


def node_version(node: str | None = None) -> str:
    """The version of `node`, refusing one missing or older than the package needs."""
    binary = node or shutil.which("node")
    if binary is None:
        raise NodeUnavailable(
            "node is not on PATH: the bridge needs Node.js 18.17 or newer "
            "(e.g. `apt install nodejs npm`, or https://nodejs.org)"
        )
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        raise NodeUnavailable(
            f"cannot run {binary} ({exc.strerror or exc}): the bridge needs Node.js 18.17 or newer"
        ) from None
    found = re.match(r"v?(\d+)\.(\d+)\.(\d+)", out.stdout.strip())
    if not found:
        raise NodeUnavailable(f"{binary} --version said {out.stdout.strip()!r}: not Node.js?")
    version = tuple(int(x) for x in found.groups())
    if version[:2] < MIN_NODE:
        raise NodeUnavailable(
            f"Node.js {found.group(0)} is too old: the bridge needs 18.17 or newer "
            f"({binary}; upgrade Node.js, then run `sluice bridge install` again)"
        )
    return found.group(0).lstrip("v")


def npm_binary(npm: str | None = None) -> str:
    binary = npm or shutil.which("npm")
    if binary is None:
        raise NodeUnavailable(
            "npm is not on PATH: `sluice bridge install` needs it once to install the pinned "
            "package (e.g. `apt install npm`)"
        )
    return binary


def install(
    data_dir: Path,
    *,
    node: str | None = None,
    npm: str | None = None,
    force: bool = False,
    echo: Callable[[str], None] | None = None,
) -> Catalog:
    """Install the pinned package into `<data_dir>/bridge` and write its catalogue."""
    say = echo or (lambda line: None)
    version = node_version(node)
    target = bridge_dir_of(data_dir)
    say_npm = f"installing {PACKAGE} with npm ci into {target} (Node.js {version})"
    sha = install_pinned(js_dir(), SHIPPED_FILES, target, npm=npm, force=force,
                         before_npm=lambda: say(say_npm))  # fmt: skip
    sidecar_sha = hashlib.sha256((target / "sidecar.js").read_bytes()).hexdigest()
    path = target / CATALOG_FILE
    if not force and path.exists():
        try:
            current = Catalog.load(path)
        except Exception:
            current = None  # unreadable: write it again
        if current and (current.doc.lock_sha256, current.doc.sidecar_sha256) == (sha, sidecar_sha):
            return current
    say("writing the catalogue of destinations")
    doc = asyncio.run(_describe(target, node, sha, sidecar_sha))
    write_catalog(doc, path)
    return Catalog(doc)


def install_pinned(
    source: Path,
    files: tuple[str, ...],
    target: Path,
    *,
    npm: str | None = None,
    force: bool = False,
    before_npm: Callable[[], None] | None = None,
) -> str:
    """Copy a shipped manifest and lockfile (`files` of `source`) into `target` and `npm ci`
    there, unless a marker says this lockfile is installed already (the bridge's install and
    analytics.js's). Returns the lockfile's sha256."""
    target.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copyfile(source / name, target / name)
    sha = hashlib.sha256((target / "package-lock.json").read_bytes()).hexdigest()
    marker = target / "node_modules" / MARKER
    if force or not marker.exists() or marker.read_text().strip() != sha:
        binary = npm_binary(npm)
        if before_npm is not None:
            before_npm()
        npm_ci(binary, target)
        marker.write_text(sha + "\n")
    return sha


def npm_ci(npm: str, target: Path) -> None:
    """`npm ci --ignore-scripts` of the lockfile in `target` (also for analyticsjs/)."""
    command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
    try:
        done = subprocess.run(
            command, cwd=target, capture_output=True, text=True, timeout=NPM_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise BridgeInstallFailed(
            f"npm ci did not finish in {NPM_TIMEOUT_S} s in {target}"
        ) from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise BridgeInstallFailed(
            f"npm ci failed in {target} (exit {done.returncode}); npm said:\n{tail}"
        )


async def _describe(target: Path, node: str | None, lock_sha: str, sidecar_sha: str) -> CatalogDoc:
    sidecar = Sidecar(target, node=node)
    raw_path = target / "catalog.raw.json"
    try:
        await sidecar.catalog(raw_path)
    finally:
        await sidecar.stop()
    raw = json.loads(raw_path.read_bytes())
    raw_path.unlink()
    return build_catalog(raw, lock_sha256=lock_sha, sidecar_sha256=sidecar_sha)


def state(data_dir: Path, node: str | None = None) -> BridgeState:
    """What `sluice bridge status` shows; never starts the sidecar."""
    target = bridge_dir_of(data_dir)
    package = target / "node_modules" / "@segment" / "action-destinations" / "package.json"
    version = json.loads(package.read_bytes()).get("version") if package.exists() else None
    try:
        catalogue: Catalog | None = Catalog.load(target / CATALOG_FILE)
    except BridgeNotInstalled:
        catalogue = None
    try:
        node_found, node_error = node_version(node), None
    except NodeUnavailable as exc:
        node_found, node_error = None, str(exc)
    return BridgeState(target, version, catalogue, node_found, node_error)
