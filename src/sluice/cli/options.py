"""Options shared by every command, and how each command finds the store the way `serve` does."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sluice.config import Settings, load_settings
from sluice.store.base import Store
from sluice.store.errors import StoreUnavailable

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where Sluice keeps its data (default ./sluice-data, or SLUICE_DATA_DIR).",
        show_default=False,
    ),
]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="PostgreSQL URL instead of the embedded store (or SLUICE_DATABASE_URL).",
        show_default=False,
    ),
]


def settings_from(data_dir: Path | None, database_url: str | None = None) -> Settings:
    """Environment first, then the command's flags on top. Segment's destinations (the bridge)
    are looked up in the data dir chosen here."""
    from sluice.bridge import location

    settings = load_settings().replace(data_dir=data_dir, database_url=database_url)
    location.use_data_dir(settings.data_dir)
    return settings


def open_store_for(settings: Settings, *, create: bool = False) -> Store:
    """The store the settings point at. Only commands that set a store up (`serve`, `apply`,
    `admin create`, `token create`) pass `create`: the others refuse a data dir with no store
    and leave it untouched, so a mistyped `--data-dir` is an error, not an empty store that
    reads as zero events."""
    from sluice.store.factory import open_store

    if not create and not settings.database_url and not settings.log_path.exists():
        raise StoreUnavailable(
            f"no Sluice store in {settings.data_dir.absolute()} (no {settings.log_path.name}"
            " there): check --data-dir or SLUICE_DATA_DIR, or start `sluice serve` with it first"
        )
    return open_store(settings)
