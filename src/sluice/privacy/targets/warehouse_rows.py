"""Which rows of a Segment-shaped warehouse are a subject's: what DuckDB and PostgreSQL share.

A warehouse Sluice loads has one schema per source and, in it, `tracks`, `identifies`,
`pages`, `screens`, `groups`, `aliases`, one table per event and `users` (keyed by `id`, the
userId). Every one of those tables has the standard columns `id`, `received_at` and `uuid_ts`:
that is how a table Sluice loaded is told from a table someone else keeps in the same database,
which a deletion must not touch. A subject's rows are those whose `user_id` (or `anonymous_id`)
is one of its ids, and in `users` those whose `id` is.

Rows removed take with them what Sluice keeps about them in its own schema: their discarded
values (`_sluice.discards`, keyed by row id, whose `value` may be the subject's data).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sluice.privacy.targets.base import Subject
from sluice.warehouse.base import META_SCHEMA

# Columns every table Sluice loads has (warehouse/flatten.py); `users` and `accounts` too.
SLUICE_COLUMNS = frozenset({"id", "received_at", "uuid_ts"})
USERS_TABLE = "users"
SYSTEM_SCHEMAS = frozenset({META_SCHEMA, "information_schema", "pg_catalog", "pg_toast"})

# Rows of all tables with their column names, for one catalog (DuckDB file or PG database).
COLUMNS_SQL = (
    "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns AS c"
    " JOIN information_schema.tables AS t ON t.table_catalog = c.table_catalog"
    " AND t.table_schema = c.table_schema AND t.table_name = c.table_name"
    " WHERE t.table_type = 'BASE TABLE' AND c.table_catalog = current_database()"
    " ORDER BY 1, 2"
)


@dataclass(frozen=True, slots=True)
class SubjectTable:
    """One table that may hold the subject's rows, and the column that names the subject."""

    schema: str
    table: str
    column: str


def subject_tables(columns: Iterable[tuple[str, str, str]], subject: Subject) -> list[SubjectTable]:
    """The tables Sluice loaded (rows of `COLUMNS_SQL`) whose rows may be the subject's."""
    tables: dict[tuple[str, str], set[str]] = {}
    for schema, table, column in columns:
        if schema in SYSTEM_SCHEMAS or schema.startswith("pg_"):
            continue
        tables.setdefault((schema, table), set()).add(column)
    found = []
    for (schema, table), names in sorted(tables.items()):
        if not names.issuperset(SLUICE_COLUMNS):
            continue
        key = subject_column(table, names, subject)
        if key is not None:
            found.append(SubjectTable(schema, table, key))
    return found


def subject_column(table: str, columns: set[str], subject: Subject) -> str | None:
    """The column holding the subject's id in this table, or None when it holds none."""
    if subject.type == "USER_ID":
        if "user_id" in columns:
            return "user_id"
        return "id" if table == USERS_TABLE else None
    if subject.type == "ANONYMOUS_ID":
        return "anonymous_id" if "anonymous_id" in columns else None
    return None


def not_supported_reason(subject: Subject) -> str | None:
    """Why a warehouse cannot act on this kind of subject, or None when it can."""
    if subject.type == "OBJECT_ID":
        return (
            "object ids name objects of cloud sources, which Sluice does not load into"
            " warehouses: nothing to delete there"
        )
    return None
