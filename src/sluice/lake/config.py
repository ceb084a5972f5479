"""A lake warehouse's settings, and opening its storage.

    warehouses:
      - {id: lake, type: lake, settings: {path: lake, compact_files: 16}, sources: [web]}

`path` is a local directory (relative to the data dir; default `<data_dir>/lake`). Object
storage plugs in behind `storage.LakeStorage`; until it does, a URL is refused with the field
named rather than written to a folder called `s3:`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sluice.lake.backend import LakeBackend
from sluice.lake.compaction import DEFAULT_COMPACT_FILES
from sluice.lake.storage import LocalStorage
from sluice.warehouse.base import WarehouseUnavailable

COMPACT_FILES_SETTING = "compact_files"


def compact_files(warehouse_id: str, settings: dict[str, Any]) -> int:
    """Files a partition gathers before a load compacts it; 0 turns automatic compaction off."""
    value = settings.get(COMPACT_FILES_SETTING, DEFAULT_COMPACT_FILES)
    if type(value) is not int or value < 0:
        raise WarehouseUnavailable(
            f"warehouse {warehouse_id!r}: settings.{COMPACT_FILES_SETTING} must be a whole"
            f" number, 0 or more (got {value!r})"
        )
    return value


def open_lake(warehouse_id: str, path: Path, settings: dict[str, Any]) -> LakeBackend:
    raw = str(settings.get("path") or "")
    if "://" in raw:
        raise WarehouseUnavailable(
            f"warehouse {warehouse_id!r}: settings.path {raw!r} is a URL; a lake is written to a"
            " local directory for now (object storage is not supported yet)"
        )
    return LakeBackend(LocalStorage(path), compact_files=compact_files(warehouse_id, settings))
