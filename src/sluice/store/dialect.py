"""One SQL text for both backends: how each writes a placeholder, and what both drivers' cursors
offer alike.

The retry set's SQL was the first written this way (`store/retry_set.py`); process reports, unit
stats, OAuth tokens and regulations write theirs the same way, so the dialect is a module of its
own rather than a part of the retry set's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Cursor(Protocol):
    """What both drivers' cursors (sqlite3's connection, psycopg's cursor) offer alike."""

    def execute(self, sql: Any, params: Any = ...) -> Any: ...

    def executemany(self, sql: Any, params: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    """How a backend writes a placeholder; the retry set's SQL is written with `?`."""

    placeholder: str

    def __call__(self, sql: str) -> str:
        if self.placeholder == "?":
            return sql
        return sql.replace("%", "%%").replace("?", self.placeholder)  # `%` is psycopg's marker


SQLITE = Dialect("?")
POSTGRES = Dialect("%s")
