"""What the privacy tests share: the real CLI, the admin API with a token, and a search for a
user id in every file of a data dir (gzip files read decompressed) and every table of the
stores (SQLite files and the PostgreSQL database), so "no trace" is checked, not assumed."""

from __future__ import annotations

import gzip
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec
import psycopg

from server import Response, SluiceServer

SLUICE = [sys.executable, "-m", "sluice"]
API = "/api/v1"


def sluice(
    data_dir: Path, env: Mapping[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real `sluice` command on a data dir (and the server's database, if any)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    full.update(env)
    return subprocess.run(
        [*SLUICE, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
        env=full,
    )


class Admin:
    """`/api/v1` with a bearer token made by the real `sluice token create`."""

    def __init__(self, server: SluiceServer) -> None:
        self.server = server
        out = sluice(server.data_dir, server.env, "token", "create", "--name", "privacy")
        (self.token,) = out.stdout.split()

    def call(self, method: str, path: str, body: Any = None) -> Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = msgspec.json.encode(body)
            headers["Content-Type"] = "application/json"
        return self.server.request(method, API + path, data, headers)

    def ok(self, response: Response, status: int = 200) -> Any:
        assert response.status == status, (response.status, response.body)
        return response.json()


# --- traces ------------------------------------------------------------------------------------
def _contains(value: Any, needles: Iterable[bytes]) -> bool:
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogatepass")
    return isinstance(value, bytes) and any(n in value for n in needles)


# DuckDB keeps a deleted row's bytes in the file's free blocks (a checkpoint rewrites the row
# groups, it does not zero the old blocks): its files are searched table by table, and their
# byte-level residue is reported apart (docs/privacy.md, known issues).
BYTE_SEARCH_EXCLUDED = (".duckdb",)


def files_holding(root: Path, *texts: str, everything: bool = False) -> list[str]:
    """Files under `root` whose bytes (decompressed for `.gz`) contain any of the texts
    (DuckDB files only with `everything`)."""
    needles = [t.encode() for t in texts]
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if not everything and path.name.endswith(BYTE_SEARCH_EXCLUDED):
            continue
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        if any(n in data for n in needles):
            found.append(str(path.relative_to(root)))
    return found


def sqlite_rows_holding(path: Path, *texts: str) -> list[str]:
    """`table` names of a SQLite file with a row holding any of the texts."""
    needles = [t.encode() for t in texts]
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [
            table
            for table in tables
            if any(
                _contains(v, needles) for row in db.execute(f'SELECT * FROM "{table}"') for v in row
            )
        ]
    finally:
        db.close()


def duckdb_rows_holding(path: Path, *texts: str) -> list[str]:
    """`schema.table.column` of a DuckDB file with a value holding any of the texts."""
    import duckdb

    found = []
    with duckdb.connect(str(path), read_only=True) as db:
        tables = db.execute("SELECT table_schema, table_name FROM information_schema.tables")
        for schema, table in tables.fetchall():
            for column, *_ in db.execute(f'DESCRIBE "{schema}"."{table}"').fetchall():
                for text in texts:
                    (n,) = db.execute(
                        f'SELECT count(*) FROM "{schema}"."{table}"'
                        f' WHERE CAST("{column}" AS VARCHAR) LIKE ?',
                        [f"%{text}%"],
                    ).fetchone() or (0,)
                    if n:
                        found.append(f"{schema}.{table}.{column}")
    return found


def postgres_rows_holding(url: str, *texts: str) -> list[str]:
    """Tables of the database (every schema but the catalog's) with a row holding the texts."""
    needles = [t.encode() for t in texts]
    found = []
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        for schema, table in tables:
            rows = conn.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()
            if any(_contains(v, needles) for row in rows for v in row):
                found.append(f"{schema}.{table}")
    return found


def traces(data_dir: Path, database_url: str | None, *texts: str) -> list[str]:
    """Every place under the data dir or in the stores' tables that still holds a text."""
    found = [f"file {f}" for f in files_holding(data_dir, *texts)]
    for path in data_dir.glob("*.db"):
        found += [f"{path.name} table {t}" for t in sqlite_rows_holding(path, *texts)]
    for path in data_dir.rglob("*.duckdb"):
        found += [f"{path.name} table {t}" for t in duckdb_rows_holding(path, *texts)]
    if database_url:
        found += [f"postgres table {t}" for t in postgres_rows_holding(database_url, *texts)]
    return found
