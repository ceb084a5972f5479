"""`sluice device-mode install`: Segment's built browser destinations, into the data dir.

Why this package: `@segment/browser-destinations` 3.98.0 is the one npm package that ships the
*built* bundles (`dist/web/<folder>/<contenthash>.js`, the very tree Segment's CDN serves under
`/next-integrations/actions/`); the per-destination packages Segment publishes now hold only
compiler output that would need a bundler (docs/device-mode.md). It is pinned by the lockfile
shipped next to this module (`js/`) and installed with `npm ci --ignore-scripts`, as the
bridge's and analytics.js's packages are; then `js/describe.js` writes the catalogue, so nothing
after the install needs Node.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import msgspec

from sluice.bridge.errors import BridgeInstallFailed, NodeUnavailable
from sluice.bridge.install import install_pinned
from sluice.devicemode.catalog import (
    CATALOG_FILE,
    DIR_NAME,
    DeviceCatalog,
    DeviceCatalogDoc,
    DeviceModeNotInstalled,
    write_catalog,
)

PACKAGE = "@segment/browser-destinations"
SHIPPED_FILES = ("package.json", "package-lock.json")
DESCRIBE_TIMEOUT_S = 120


def js_dir() -> Path:
    return Path(str(resources.files("sluice.devicemode") / "js"))


def lock_sha256() -> str:
    """What an install depends on: the lockfile and the describe script."""
    digest = hashlib.sha256((js_dir() / "package-lock.json").read_bytes())
    digest.update((js_dir() / "describe.js").read_bytes())
    return digest.hexdigest()


def package_dir(data_dir: Path) -> Path:
    return Path(data_dir) / DIR_NAME / "node_modules" / "@segment" / "browser-destinations"


def web_dir(data_dir: Path) -> Path:
    """The built tree served under `/next-integrations/actions/`."""
    return package_dir(data_dir) / "dist" / "web"


@dataclass(frozen=True, slots=True)
class DeviceModeState:
    catalog: DeviceCatalog | None  # None: not installed
    folder: Path


def install(
    data_dir: Path, *, node: str | None = None, npm: str | None = None, force: bool = False
) -> DeviceCatalog:
    """Install the pinned package (npm ci, skipped when this lock is in already) and write the
    catalogue (again when the lock or the describe script changed)."""
    target = Path(data_dir) / DIR_NAME
    lock_sha = install_pinned(js_dir(), SHIPPED_FILES, target, npm=npm, force=force)
    script = js_dir() / "describe.js"
    stamp = hashlib.sha256(lock_sha.encode() + script.read_bytes()).hexdigest()
    path = target / CATALOG_FILE
    if not force and path.is_file():
        current = DeviceCatalog.load(data_dir)
        if current.doc.lock_sha256 == stamp:
            return current
    binary = node or shutil.which("node")
    if binary is None:
        raise NodeUnavailable("node is not on PATH: `sluice device-mode install` needs it once")
    try:
        done = subprocess.run(
            [binary, str(script), str(package_dir(data_dir))],
            capture_output=True,
            timeout=DESCRIBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise BridgeInstallFailed(
            f"describing {PACKAGE} took over {DESCRIBE_TIMEOUT_S} s"
        ) from None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.decode(errors="replace").strip().splitlines()[-10:])
        raise BridgeInstallFailed(f"describing {PACKAGE} failed (exit {done.returncode}):\n{tail}")
    doc = msgspec.json.decode(done.stdout, type=DeviceCatalogDoc)
    doc.lock_sha256 = stamp
    write_catalog(doc, path)
    return DeviceCatalog(doc)


def state(data_dir: Path) -> DeviceModeState:
    try:
        catalog: DeviceCatalog | None = DeviceCatalog.load(data_dir)
    except DeviceModeNotInstalled:
        catalog = None
    if catalog is not None and not web_dir(data_dir).is_dir():
        catalog = None  # the catalogue outlived its package (node_modules removed)
    return DeviceModeState(catalog, web_dir(data_dir))
