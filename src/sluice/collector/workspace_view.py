"""What the collector knows of the workspace: write keys, tracking plans, suppressed users,
ingest transformations and device-mode plugins.

Every request reads it (one attribute each, no lock: a reload swaps whole objects), and it is
rebuilt only when the store's config version moved, off the event loop (`reload` runs in a
thread, every `CONFIG_POLL_S` from the collector's poller).
"""

from __future__ import annotations

from pathlib import Path

from sluice.devicemode.workspace import DevicePlugins
from sluice.protocols.enforce import Enforcer
from sluice.protocols.registry import load_enforcers
from sluice.store.base import Store
from sluice.store.base_event_store import SourceRow
from sluice.transform.stages import IngestStage, ingest_stages


class WorkspaceView:
    def __init__(self, store: Store, data_dir: Path) -> None:
        self.store, self.data_dir = store, data_dir
        self.sources_by_key: dict[str, SourceRow] = {}
        self.device_plugins = DevicePlugins()  # the workspace's `mode: device` destinations
        self.plans: dict[str, Enforcer] = {}  # source id -> its tracking plan (protocols/)
        self.suppressed: frozenset[str] = frozenset()  # hashes of suppressed user ids (privacy/)
        self.stages: dict[str, IngestStage] = {}  # source id -> transformations, PII rule
        self._version = -1

    def reload(self) -> None:
        """Read the workspace again if its config version changed since the last read."""
        version = self.store.config_version()
        if version == self._version:
            return
        by_key: dict[str, SourceRow] = {}
        for source in self.store.sources():
            for key in source.write_keys:
                by_key[key] = source
        self.sources_by_key = by_key
        bodies = [obj.body for obj in self.store.list_config("destination")]
        self.device_plugins = DevicePlugins.load(bodies, self.data_dir)
        self.plans = load_enforcers(obj.body for obj in self.store.list_config("tracking_plan"))
        self.suppressed = self.store.suppressed_keys()
        self.stages = ingest_stages(self.store)
        self._version = version
