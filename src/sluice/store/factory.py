"""Open the store the settings point at: PostgreSQL when a URL is set, else SQLite in data_dir."""

from __future__ import annotations

from urllib.parse import urlsplit

from sluice.config import Settings
from sluice.store.base import Store
from sluice.store.errors import StoreUnavailable

POSTGRES_SCHEMES = ("postgresql", "postgres")


def open_store(settings: Settings) -> Store:
    if settings.database_url:
        scheme = urlsplit(settings.database_url).scheme
        if scheme not in POSTGRES_SCHEMES:
            raise StoreUnavailable(
                f"SLUICE_DATABASE_URL must be a postgresql:// URL (got a {scheme or 'plain'}"
                " value); unset it to use the embedded SQLite store"
            )
        from sluice.store.postgres import PostgresStore

        return PostgresStore(
            settings.database_url,
            dedupe_window_s=settings.dedupe_window_s,
            keep_rejections=settings.keep_rejections,
        )
    from sluice.store.sqlite import SqliteStore

    return SqliteStore(
        settings.log_path,
        dedupe_window_s=settings.dedupe_window_s,
        synchronous=settings.sqlite_synchronous,
        keep_rejections=settings.keep_rejections,
    )
