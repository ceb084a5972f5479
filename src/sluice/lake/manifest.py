"""The lake's manifest: the loader's position, each collection's column types, capped names.

One small JSON file, `_sluice/manifest.json`, replaced whole (atomically) by each load after its
data files are written: the position in it is what makes a load count. A load first records the
files it is about to write (`pending`), so that a load killed half-way has its files removed by
the next one even when that one reads a different range (more events in the log by then).
Column types live here, not in the files, because they are the lake's schema: a later file
holds the columns it has, typed as the manifest says, and a value of another type is discarded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from sluice.lake.layout import MANIFEST
from sluice.lake.storage import LakeStorage
from sluice.warehouse.base import ColumnType, WarehouseUnavailable

FORMAT = 1
Tables = dict[str, dict[str, dict[str, ColumnType]]]  # schema -> table -> column -> type


class Capped(msgspec.Struct):
    """An event name that got no collection of its own (max_event_tables), and its tracks."""

    event_text: str
    events: int
    first_capped_at: str
    last_capped_at: str


@dataclass(slots=True)
class Manifest:
    position: int = 0
    loader_id: str | None = None
    tables: Tables = field(default_factory=dict)
    capped: dict[str, dict[str, Capped]] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)  # files of a load not committed yet
    loaded_at: str | None = None

    def encode(self) -> bytes:
        doc: dict[str, Any] = {
            "format": FORMAT,
            "loader_id": self.loader_id,
            "position": self.position,
            "loaded_at": self.loaded_at,
            "pending": self.pending,
            "tables": {
                s: {t: {c: ty.value for c, ty in cols.items()} for t, cols in tables.items()}
                for s, tables in self.tables.items()
            },
            "capped": self.capped,
        }
        return msgspec.json.format(msgspec.json.encode(doc), indent=1)


class _ManifestDoc(msgspec.Struct):
    format: int
    position: int
    loader_id: str | None = None
    loaded_at: str | None = None
    pending: list[str] = []
    tables: dict[str, dict[str, dict[str, ColumnType]]] = {}
    capped: dict[str, dict[str, Capped]] = {}


def read_manifest(storage: LakeStorage) -> Manifest:
    """The manifest as last written; an empty one for a lake never loaded."""
    body = storage.get(MANIFEST)
    if body is None:
        return Manifest()
    try:
        doc = msgspec.json.decode(body, type=_ManifestDoc)
    except msgspec.DecodeError as exc:
        raise WarehouseUnavailable(f"the lake's {MANIFEST} cannot be read: {exc}") from exc
    if doc.format != FORMAT:
        raise WarehouseUnavailable(f"the lake's {MANIFEST} has format {doc.format}, not {FORMAT}")
    return Manifest(
        doc.position,
        doc.loader_id,
        doc.tables,
        doc.capped,
        list(doc.pending),
        doc.loaded_at,
    )


def write_manifest(storage: LakeStorage, manifest: Manifest) -> None:
    storage.put(MANIFEST, manifest.encode())


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
