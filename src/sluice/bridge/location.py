"""Where this process finds the installed bridge, and its one sidecar.

The bridge lives in the data dir (`<data dir>/bridge/`), and a destination document names only
its type (`segment:<slug>`), so whatever compiles destinations (the worker, `sluice apply`, the
UI) needs the data dir without being handed it: the CLI sets it from `--data-dir`, the server's
processes find it in `SLUICE_DATA_DIR` (`sluice serve` exports it). One sidecar per process:
Node costs ~70 MB and a start of its own; every bridged destination of a worker process shares
it (docs/bridge.md).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from sluice.bridge.catalog import CATALOG_FILE, Catalog
from sluice.bridge.health import SidecarLimits, rss_of
from sluice.bridge.sidecar import Sidecar
from sluice.config import DEFAULT_DATA_DIR, load_settings

REPORT_PREFIX = "bridge:"  # + host:pid of the worker process: its sidecar's report (unit stats)
_data_dir: Path | None = None
_catalog: tuple[Path, float, Catalog] | None = None  # (path, mtime, catalogue)
_sidecar: Sidecar | None = None


def use_data_dir(data_dir: Path) -> None:
    """The data dir whose bridge this process uses (the CLI's `--data-dir`)."""
    global _data_dir, _catalog
    _data_dir = Path(data_dir)
    _catalog = None


def data_dir() -> Path:
    """The data dir this process uses: the CLI's `--data-dir`, else `SLUICE_DATA_DIR`."""
    return _data_dir or Path(os.environ.get("SLUICE_DATA_DIR") or DEFAULT_DATA_DIR)


def bridge_dir() -> Path:
    return data_dir() / "bridge"


def catalog() -> Catalog:
    """The installed catalogue (read again when `sluice bridge install` rewrote it); raises
    `BridgeNotInstalled` naming the command that installs it."""
    global _catalog
    path = bridge_dir() / CATALOG_FILE
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = -1.0
    if _catalog is None or _catalog[0] != path or _catalog[1] != mtime:
        _catalog = (path, mtime, Catalog.load(path))
    return _catalog[2]


def sidecar() -> Sidecar:
    """This process's sidecar, made on first use (its Node process starts at the first call)."""
    global _sidecar
    if _sidecar is None:
        _sidecar = Sidecar(bridge_dir(), limits=SidecarLimits.from_settings(load_settings()))
    return _sidecar


async def stop_sidecar() -> None:
    """At the end of a worker process (or of a test): stop Node if it was started."""
    global _sidecar
    if _sidecar is not None:
        running, _sidecar = _sidecar, None
        await running.stop()


def report_unit() -> str:
    """This process's unit name in the store's unit stats (`sluice status`, `/readyz`)."""
    return f"{REPORT_PREFIX}{socket.gethostname()}:{os.getpid()}"


def report() -> dict[str, int] | None:
    """How this process's sidecar is, for the store; None when none was made."""
    if _sidecar is None:
        return None
    pid = _sidecar.pid
    return {
        "healthy": int(_sidecar.healthy()),
        "pid": pid or 0,
        "rss_kib": rss_of(pid) // 1024 if pid else 0,
        "restarts": _sidecar.restarts,
        "reported_ms": int(time.time() * 1000),
    }
