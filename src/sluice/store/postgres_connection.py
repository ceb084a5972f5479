"""Connections of the PostgreSQL store: one pool per process, and errors that name the server.

Why a pool: the store is shared by the threads of one process (the collector's committer, the
delivery consumers' worker threads, the CLI), and a psycopg connection serves one thread at a
time. Pool connections run in autocommit: a write opens its own `conn.transaction()`, and every
plain read gets a fresh snapshot (which the log's read horizon relies on).

Connection failures become `StoreUnavailable` naming host, port and database, never the password.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from sluice.store.errors import StoreUnavailable

DEFAULT_POOL_SIZE = 6
DEFAULT_CONNECT_TIMEOUT_S = 10
# An appender that stops talking inside its transaction (a node lost on the network) holds back
# the read horizon of every consumer; the server ends such a session after this long.
IDLE_IN_TRANSACTION_TIMEOUT = "60s"


class ServerAddress:
    """Where the database is, for messages: `host:port/dbname`, never credentials."""

    def __init__(self, url: str) -> None:
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise StoreUnavailable(
                f"the database URL is not a valid PostgreSQL URL ({_scrub(str(exc), url)})"
            ) from exc
        self.password = str(params.get("password") or "")
        # Connection settings the URL may override: what the URL says wins.
        self.defaults: dict[str, Any] = {
            key: value
            for key, value in (
                ("connect_timeout", DEFAULT_CONNECT_TIMEOUT_S),
                ("application_name", "sluice"),  # shown in pg_stat_activity
            )
            if key not in params
        }
        host = str(params.get("host") or params.get("hostaddr") or "localhost")
        self.text = f"{host}:{params.get('port') or 5432}/{params.get('dbname') or '(default)'}"

    def __str__(self) -> str:
        return self.text

    def scrub(self, message: str) -> str:
        """The message on one line, with the password blanked if the driver echoed it."""
        text = _one_line(message)
        # Blanking a very short password would garble the message, and libpq never echoes it.
        return text.replace(self.password, "***") if len(self.password) >= 4 else text


def _one_line(message: str) -> str:
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


def _scrub(message: str, url: str) -> str:
    """Blank the credentials part of a URL that may appear in a parse error."""
    userinfo = url.split("://", 1)[-1].rsplit("@", 1)
    text = _one_line(message)
    return text.replace(userinfo[0], "***") if len(userinfo) == 2 else text


def connect(url: str, address: ServerAddress) -> psycopg.Connection[Any]:
    """One autocommit connection (migrations run on it before the pool opens)."""
    try:
        return psycopg.connect(url, autocommit=True, **address.defaults)
    except psycopg.Error as exc:
        raise StoreUnavailable(
            f"cannot connect to PostgreSQL at {address}: {address.scrub(str(exc))}"
        ) from exc


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute(f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_TIMEOUT}'")


def open_pool(url: str, address: ServerAddress, size: int) -> ConnectionPool:
    pool = ConnectionPool(
        url,
        min_size=1,
        max_size=max(size, 1),
        kwargs={"autocommit": True, **address.defaults},
        configure=_configure,
        open=False,
        name=f"sluice-store {address}",
    )
    try:
        pool.open(wait=True, timeout=DEFAULT_CONNECT_TIMEOUT_S)
    except PoolTimeout as exc:
        pool.close()
        raise StoreUnavailable(f"cannot connect to PostgreSQL at {address}: {exc}") from exc
    return pool


class PostgresConnections:
    """Base of the store and its mixins: the pool, and errors translated on the way out."""

    def __init__(self, url: str, pool_size: int) -> None:
        self.address = ServerAddress(url)
        self._url = url
        self._pool_size = pool_size
        self._pool: ConnectionPool | None = None

    @contextlib.contextmanager
    def _connection(
        self, timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    ) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (waiting at most `timeout_s` for one); losing the server raises
        `StoreUnavailable`."""
        assert self._pool is not None, "the store is closed"
        try:
            with self._pool.connection(timeout=timeout_s) as conn:
                try:
                    yield conn
                except psycopg.OperationalError as exc:
                    if not conn.broken:
                        raise  # e.g. a lock timeout: the server is there
                    raise StoreUnavailable(
                        f"lost the connection to PostgreSQL at {self.address}:"
                        f" {self.address.scrub(str(exc))}"
                    ) from exc
        except PoolTimeout as exc:
            raise StoreUnavailable(f"no connection to PostgreSQL at {self.address}: {exc}") from exc

    def _horizon(self, conn: psycopg.Connection[Any]) -> int:
        """The highest seq below which every event is final (see postgres.py)."""
        row = conn.execute("SELECT sluice_log_horizon()").fetchone()
        return int(row[0]) if row and row[0] is not None else 0
