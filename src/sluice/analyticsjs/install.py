"""`sluice analytics-js install`: analytics-next's browser build into `<data dir>/analytics-js/`.

The package is pinned by the lockfile shipped next to this module (`js/`); `npm ci
--ignore-scripts` installs exactly it (as the bridge's install does), and a marker with the
lockfile's sha256 makes a second install of the same lock skip npm. What Sluice serves from it:
the UMD build's `dist/umd/` folder — `standalone.js` (what Segment's CDN serves as
`analytics.min.js`) and the chunks analytics.js loads from `<its CDN>/analytics-next/bundles/`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sluice.bridge.install import install_pinned
from sluice.errors import SluiceError

PACKAGE = "@segment/analytics-next"
SHIPPED_FILES = ("package.json", "package-lock.json")
DIR_NAME = "analytics-js"
STANDALONE = "standalone.js"
# The only files served: the UMD build's scripts and their source maps, by plain name.
SERVED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.js(\.map)?\Z")
INSTALL_HINT = "run `sluice analytics-js install` (needs npm once)"


class AnalyticsJsNotInstalled(SluiceError):
    """analytics-next is not installed in this data dir."""


def js_dir() -> Path:
    return Path(str(resources.files("sluice.analyticsjs") / "js"))


def lock_sha256() -> str:
    return hashlib.sha256((js_dir() / "package-lock.json").read_bytes()).hexdigest()


def umd_dir(data_dir: Path) -> Path:
    return (
        Path(data_dir) / DIR_NAME / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd"
    )


@dataclass(frozen=True, slots=True)
class AnalyticsJsState:
    version: str | None  # None: not installed
    folder: Path


def install(data_dir: Path, *, npm: str | None = None, force: bool = False) -> AnalyticsJsState:
    """Install the pinned package (npm ci) unless the same lock is installed already."""
    install_pinned(js_dir(), SHIPPED_FILES, Path(data_dir) / DIR_NAME, npm=npm, force=force)
    found = state(data_dir)
    if found.version is None:
        raise AnalyticsJsNotInstalled(f"npm ci ran but {STANDALONE} is missing in {found.folder}")
    return found


def state(data_dir: Path) -> AnalyticsJsState:
    folder = umd_dir(data_dir)
    if not (folder / STANDALONE).is_file():
        return AnalyticsJsState(None, folder)
    manifest = folder.parent.parent / "package.json"
    match = re.search(rb'"version"\s*:\s*"([^"]+)"', manifest.read_bytes())
    return AnalyticsJsState(match.group(1).decode() if match else "?", folder)


def served_file(data_dir: Path, name: str) -> Path:
    """The installed file for a served name (`standalone.js`, a bundle); raises
    `AnalyticsJsNotInstalled`, or `FileNotFoundError` for a name that is not one of them."""
    folder = umd_dir(data_dir)
    if not (folder / STANDALONE).is_file():
        raise AnalyticsJsNotInstalled(f"analytics.js is not installed here: {INSTALL_HINT}")
    if not SERVED_NAME.match(name):
        raise FileNotFoundError(name)
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(name)
    return path
