"""The deletion targets outside Sluice's own log, archive and profiles: one per warehouse, lake
and destination of the workspace, each answering for itself (see docs/privacy-targets.md).

The runner must call these after the log's deletion has committed: the PostgreSQL warehouses
and lakes take the log's last position at their first call as the fence their loads must pass
(warehouses.py, lake.py), and a DuckDB warehouse relies on loads reading the log afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sluice.bridge.destination import BridgedDestination
from sluice.config import Settings
from sluice.destinations.base import Destination
from sluice.errors import SluiceError
from sluice.privacy.targets.base import OutcomeStatus, Subject, Target, TargetOutcome
from sluice.privacy.targets.destinations import DELETION_APIS
from sluice.store.base import EventStore
from sluice.warehouse.factory import (
    DEFAULT_WAREHOUSE_ID,
    WarehouseConfig,
    duckdb_path,
    lake_path,
)
from sluice.workspace.model import Destination as DestinationDoc
from sluice.workspace.model import Workspace

LogHead = Callable[[], int]


@dataclass(frozen=True, slots=True)
class FixedTarget:
    """A target whose answer is known without asking anything: not supported, or misconfigured."""

    name: str
    status: OutcomeStatus
    detail: str

    async def delete(self, regulation_id: str, subject: Subject) -> TargetOutcome:
        return TargetOutcome(self.name, self.status, self.detail)


def external_targets(
    workspace: Workspace, settings: Settings, *, store: EventStore | None = None
) -> list[Target]:
    """Every warehouse, lake and destination of `workspace` as a deletion target.

    `store` gives the log's last position for the fences; without it, each fence opens the
    store of `settings` for that one read.
    """
    head = _log_head(settings, store)
    targets: list[Target] = [warehouse_target(c, settings, head) for c in _warehouses(workspace)]
    targets.extend(destination_target(d) for d in workspace.destinations)
    return targets


def _warehouses(workspace: Workspace) -> list[WarehouseConfig]:
    """As the loader sees them (warehouse/factory.py): with none listed, the default DuckDB."""
    if not workspace.warehouses:
        return [WarehouseConfig(DEFAULT_WAREHOUSE_ID, "duckdb")]
    return [
        WarehouseConfig(w.id, w.type, dict(w.settings), tuple(w.sources))
        for w in workspace.warehouses
    ]


def warehouse_target(config: WarehouseConfig, settings: Settings, head: LogHead) -> Target:
    from sluice.privacy.targets.lake import LakeTarget
    from sluice.privacy.targets.warehouses import DuckDBWarehouseTarget, PostgresWarehouseTarget

    if config.type == "duckdb":
        return DuckDBWarehouseTarget(config.id, duckdb_path(config, settings.data_dir))
    if config.type == "postgres":
        url = config.settings.get("url")
        if not isinstance(url, str) or not url:
            return FixedTarget(
                f"warehouse:{config.id}", "FAILED",
                f"warehouse {config.id} is PostgreSQL but has no settings.url",
            )  # fmt: skip
        return PostgresWarehouseTarget(config.id, url, head)
    if config.type == "lake":
        from sluice.lake.config import open_storage
        from sluice.lake.settings import LakeSettingsProblem, object_store_settings

        try:  # settings that cannot work fail now, not on every retry
            object_store_settings(config.settings)
        except LakeSettingsProblem as exc:
            return FixedTarget(f"lake:{config.id}", "FAILED", f"lake {config.id}: {exc}")
        path = lake_path(config, settings.data_dir)
        return LakeTarget(config.id, lambda: open_storage(config.id, path, config.settings), head)
    return FixedTarget(
        f"warehouse:{config.id}", "FAILED",
        f"warehouse {config.id} has type {config.type!r}, which Sluice does not load",
    )  # fmt: skip


def destination_target(doc: DestinationDoc) -> Target:
    """The destination's deletion API, or a sentence saying why there is none."""
    from sluice.destinations.registry import load

    destination_id = doc.id
    name = f"destination:{destination_id}"
    if doc.mode == "device":
        return FixedTarget(
            name, "NOT_SUPPORTED",
            f"destination {destination_id} runs in the page (device mode): Sluice never sent"
            " it data and cannot ask it to delete",
        )  # fmt: skip
    try:
        cls = load(doc.type)
        destination: Destination = cls(cls.parse_settings(doc.settings))
    except (SluiceError, ValueError) as exc:  # msgspec.ValidationError is a ValueError
        return FixedTarget(name, "FAILED", f"destination {destination_id}: {exc}")
    build = DELETION_APIS.get(cls.id) if not cls.runs_code else None
    if build is not None:
        return build(destination_id, destination)
    if isinstance(destination, BridgedDestination) and destination.entry.has_on_delete is not False:
        from sluice.bridge import location
        from sluice.privacy.targets.bridged import BridgedTarget

        base_url = doc.delivery.get("base_url")  # where its requests go (delivery.md)
        destination.base_url = base_url if isinstance(base_url, str) else None
        return BridgedTarget(destination_id, destination, location.sidecar)
    return FixedTarget(
        name, "NOT_SUPPORTED",
        f"destination {destination_id} ({cls.name}) has no deletion API Sluice can call:"
        " delete the user there by hand",
    )  # fmt: skip


def _log_head(settings: Settings, store: EventStore | None) -> LogHead:
    if store is not None:
        return store.last_seq

    def read() -> int:
        from sluice.store.factory import open_store

        opened = open_store(settings)
        try:
            return opened.last_seq()
        finally:
            opened.close()

    return read
