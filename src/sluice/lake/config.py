"""A lake warehouse's settings, and opening its storage.

    warehouses:
      - {id: lake, type: lake, settings: {path: lake, compact_files: 16}, sources: [web]}
      - {id: s3lake, type: lake, settings: {storage: s3, bucket: acme-lake, prefix: lake}}

`path` is a local directory (relative to the data dir; default `<data_dir>/lake`). With
`storage: s3` the lake is in a bucket (settings.py) and `path` only holds local copies of the
files readers open and the staging of large uploads (objectstorage.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sluice.lake.backend import LakeBackend
from sluice.lake.compaction import DEFAULT_COMPACT_FILES
from sluice.lake.settings import LakeSettingsProblem, object_store_settings
from sluice.lake.storage import LakeStorage, LocalStorage
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


def open_storage(warehouse_id: str, path: Path, settings: dict[str, Any]) -> LakeStorage:
    """The lake's storage as its settings name it; bad settings are refused, field named."""
    try:
        bucket = object_store_settings(settings)
    except LakeSettingsProblem as exc:
        raise WarehouseUnavailable(f"warehouse {warehouse_id!r}: {exc}") from None
    if bucket is None:
        return LocalStorage(path)
    from sluice.lake.objectstorage import ObjectLakeStorage  # boto3 only for a bucket
    from sluice.objectstore import ObjectStore

    return ObjectLakeStorage(ObjectStore(bucket), path)


def open_lake(warehouse_id: str, path: Path, settings: dict[str, Any]) -> LakeBackend:
    storage = open_storage(warehouse_id, path, settings)
    return LakeBackend(storage, compact_files=compact_files(warehouse_id, settings))
