"""The catalogue of browser (Actions) destinations Sluice can serve for device mode.

Written at `sluice device-mode install` by `js/describe.js` from the installed
`@segment/browser-destinations` (its compiled definitions and `dist/web` manifest), so that
compiling a workspace or answering the settings endpoint never starts Node. Each entry says
what analytics.js needs to load the destination (its bundle under `/next-integrations/actions/`
and the window global the bundle defines) and what Sluice checks a destination document
against (settings fields, actions with their fields and default subscription, presets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from sluice.errors import SluiceError

CATALOG_FILE = "catalog.json"
DIR_NAME = "device-mode"
INSTALL_HINT = "run `sluice device-mode install` (needs npm once)"


class DeviceModeNotInstalled(SluiceError):
    """No device-mode catalogue in this data dir."""


class UnknownBrowserDestination(SluiceError):
    """No browser destination of that name in the installed package."""


class FieldInfo(msgspec.Struct, kw_only=True):
    label: str | None = None
    type: str = "string"  # string, number, integer, boolean, object, datetime
    required: bool = False
    default: Any = None
    choices: list[Any] | None = None
    multiple: bool = False
    description: str | None = None


class BrowserAction(msgspec.Struct, kw_only=True):
    title: str
    description: str | None = None
    default_subscription: str | None = None
    lifecycle: str = "destination"  # or "enrichment", "before", "after"
    hidden: bool = False
    fields: dict[str, FieldInfo] = {}

    def default_mapping(self) -> dict[str, Any]:
        """Each field's default (a mapping directive or a value), as Segment's UI fills it."""
        return {k: f.default for k, f in self.fields.items() if f.default is not None}


class BrowserPreset(msgspec.Struct, kw_only=True):
    name: str
    partner_action: str
    subscribe: str | None = None
    mapping: dict[str, Any] = {}


class BrowserDestination(msgspec.Struct, kw_only=True):
    slug: str  # the package's folder name, e.g. "amplitude-plugins"
    metadata_id: str
    name: str  # Segment's name, e.g. "Amplitude (Actions)"; also the plugin factory's name
    description: str | None = None
    bundle: str  # "<slug>/<contenthash>.js" under dist/web (= /next-integrations/actions/)
    library: str  # the window global the bundle sets to its plugin factory
    settings: dict[str, FieldInfo] = {}
    actions: dict[str, BrowserAction] = {}
    presets: list[BrowserPreset] = []


class DeviceCatalogDoc(msgspec.Struct, kw_only=True):
    package: str  # the installed @segment/browser-destinations version
    node: str = ""
    lock_sha256: str = ""
    destinations: list[BrowserDestination] = []
    errors: list[dict[str, Any]] = []  # definitions left out, with why


_decoder = msgspec.json.Decoder(DeviceCatalogDoc)


class DeviceCatalog:
    """The installed catalogue: lookup by the folder name, Segment's name or metadata id."""

    def __init__(self, doc: DeviceCatalogDoc) -> None:
        self.doc = doc
        self.entries = {e.slug: e for e in doc.destinations}
        self._names: dict[str, str] = {}
        for e in doc.destinations:
            for alias in (e.slug, e.name, e.metadata_id, f"segment:{e.slug}"):
                self._names.setdefault(alias.casefold(), e.slug)

    @classmethod
    def load(cls, data_dir: Path) -> DeviceCatalog:
        path = Path(data_dir) / DIR_NAME / CATALOG_FILE
        try:
            return cls(_decoder.decode(path.read_bytes()))
        except FileNotFoundError:
            raise DeviceModeNotInstalled(
                f"device mode is not installed in {data_dir}: {INSTALL_HINT}"
            ) from None

    def resolve(self, name: str) -> BrowserDestination:
        slug = self._names.get(name.strip().casefold())
        if slug is None:
            known = ", ".join(sorted(self.entries))
            raise UnknownBrowserDestination(
                f"no browser destination {name!r} in @segment/browser-destinations"
                f" {self.doc.package} (device mode runs these: {known})"
            )
        return self.entries[slug]


def write_catalog(doc: DeviceCatalogDoc, path: Path) -> None:
    """Atomically: a reader never sees half a catalogue."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(doc))
    tmp.replace(path)
