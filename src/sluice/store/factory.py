"""Open the store the settings point at: PostgreSQL when a URL is set, else SQLite in data_dir."""

from __future__ import annotations

from sluice.config import Settings
from sluice.store.base import Store
from sluice.store.errors import StoreUnavailable


def open_store(settings: Settings) -> Store:
    if settings.database_url:
        raise StoreUnavailable(
            "SLUICE_DATABASE_URL is set, but the PostgreSQL backend is not built yet;"
            " unset it to use the embedded SQLite store"
        )
    from sluice.store.sqlite import SqliteStore

    return SqliteStore(
        settings.log_path,
        dedupe_window_s=settings.dedupe_window_s,
        synchronous=settings.sqlite_synchronous,
        keep_rejections=settings.keep_rejections,
    )
