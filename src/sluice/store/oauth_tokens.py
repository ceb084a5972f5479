"""OAuth tokens a destination's own code refreshed (Segment's destinations, through the bridge).

The workspace holds what the user gave (client id and secret, a refresh token); the access
token Segment's refresh loop obtains, and a rotated refresh token, must outlive the worker
process, or every restart would start from an expired token (and a provider that rotates
refresh tokens would have invalidated the one in the workspace). Kept apart from the workspace
so that a refresh is no configuration change. Secrets: never printed by any command.

One SQL text for both backends, as the retry set's (`store/retry_set.py`); the DDL alone differs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sluice.store.dialect import Cursor, Dialect

OAUTH_TOKENS_TABLE_SQLITE = """
CREATE TABLE IF NOT EXISTS oauth_tokens (
    destination TEXT PRIMARY KEY,
    access_token TEXT NOT NULL,
    refresh_token TEXT,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
"""

OAUTH_TOKENS_TABLE_POSTGRES = """
CREATE TABLE IF NOT EXISTS oauth_tokens (
    destination text COLLATE "C" PRIMARY KEY,
    access_token text NOT NULL,
    refresh_token text,
    updated_at bigint NOT NULL
);
"""

_UPSERT = (
    "INSERT INTO oauth_tokens (destination, access_token, refresh_token, updated_at)"
    " VALUES (?, ?, ?, ?) ON CONFLICT (destination) DO UPDATE SET"
    " access_token = excluded.access_token,"
    " refresh_token = COALESCE(excluded.refresh_token, oauth_tokens.refresh_token),"
    " updated_at = excluded.updated_at"
)


class OAuthTokensState:
    """Mixed into both stores; they provide `_retry_read`, `_retry_write` and `_dialect`."""

    _dialect: Dialect

    if TYPE_CHECKING:  # the store's own, earlier in its MRO: no stub to shadow them

        def _retry_read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

        def _retry_write(self, fn: Callable[[Cursor], Any]) -> Any: ...

    def save_oauth_tokens(
        self, destination: str, access_token: str, refresh_token: str | None, now_ms: int
    ) -> None:
        """Keep a destination's newest tokens (a refresh token left out keeps the one kept)."""
        q = self._dialect
        row = (destination, access_token, refresh_token, now_ms)
        self._retry_write(lambda cur: cur.execute(q(_UPSERT), row))

    def oauth_tokens(self, destination: str) -> tuple[str, str | None] | None:
        """(access token, refresh token) kept for the destination, or None."""
        rows = self._retry_read(
            "SELECT access_token, refresh_token FROM oauth_tokens WHERE destination = ?",
            (destination,),
        )
        if not rows:
            return None
        access, refresh = rows[0]
        return str(access), None if refresh is None else str(refresh)

    def forget_oauth_tokens(self, destination: str) -> None:
        q = self._dialect
        self._retry_write(
            lambda cur: cur.execute(
                q("DELETE FROM oauth_tokens WHERE destination = ?"), (destination,)
            )
        )
