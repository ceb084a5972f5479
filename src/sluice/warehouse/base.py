"""The warehouse backend protocol: what DuckDB, PostgreSQL and any later warehouse provide.

The planner (`planner.py`) turns events into `TableBatch`es with final, coerced values and
types; a backend only has to create what is missing and write the rows. Everything one load
writes (rows, discarded values, the loader's position in the event log) commits in ONE
transaction, which is what makes loads exactly-once: the position lives in the warehouse, next to
the rows it describes, so a crash mid-load leaves both untouched and the next load redoes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from sluice.errors import SluiceError

# The schema holding Sluice's own tables in every warehouse.
META_SCHEMA = "_sluice"
DISCARDS_TABLE = "discards"  # schema, table_name, column_name, row_id, value, reason, discarded_at
LOADS_TABLE = "loads"  # loader_id PRIMARY KEY, position, loaded_at
# schema, table_name, event_text, events, first_capped_at, last_capped_at; PRIMARY KEY (schema,
# table_name): the event names that got no table of their own (see `CappedEvents`).
CAPPED_TABLE = "capped_events"


class WarehouseError(SluiceError):
    """The warehouse cannot do what was asked (errors name the warehouse, table or column).

    Tree:
        WarehouseError
        ├── WarehouseNotFound      no warehouse with that id in the workspace
        ├── WarehouseUnavailable   cannot connect / open (bad URL, missing driver, locked file)
        └── SchemaChangeError      a manual schema change (widen) is not possible
    """


class WarehouseNotFound(WarehouseError):
    pass


class WarehouseUnavailable(WarehouseError):
    pass


class SchemaChangeError(WarehouseError):
    pass


class ColumnType(StrEnum):
    """Segment's five warehouse column types (spec 4.4)."""

    TIMESTAMP = "timestamp"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    VARCHAR = "varchar"


# The type changes `widen` makes by hand: those that keep every value's meaning. Anything else
# needs a new column and a backfill.
WIDENINGS: frozenset[tuple[ColumnType, ColumnType]] = frozenset(
    {(ColumnType.INTEGER, ColumnType.FLOAT)}
    | {(t, ColumnType.VARCHAR) for t in ColumnType if t is not ColumnType.VARCHAR}
)


def check_widening(
    schema: str, table: str, column: str, old_type: ColumnType | None, new_type: ColumnType
) -> ColumnType:
    """The column's type, once changing it to `new_type` keeps every value (`WIDENINGS`);
    `SchemaChangeError` naming why not. Every backend's `widen` asks this first."""
    if old_type is None:
        raise SchemaChangeError(f"no column {column!r} in {schema}.{table}")
    if old_type is new_type:
        raise SchemaChangeError(f"{schema}.{table}.{column} already is {new_type.value}")
    if (old_type, new_type) not in WIDENINGS:
        raise SchemaChangeError(
            f"cannot change {schema}.{table}.{column} from {old_type.value} to"
            f" {new_type.value}: only integer → float and any type → varchar keep every value"
        )
    return old_type


@dataclass(frozen=True, slots=True)
class StagedRows:
    """Rows planned column-wise (columnar.py) that stay in DuckDB until the backend loads them.

    `query` runs on `engine` (a DuckDB connection) and yields the batch's columns in order, with
    values already of their column's type. A DuckDB backend whose database `engine` belongs to
    (`instance`) inserts from the query directly; another DuckDB reads it as Arrow, PostgreSQL as
    CSV that DuckDB writes.
    """

    engine: Any  # duckdb.DuckDBPyConnection, untyped here so that base.py needs no DuckDB
    query: str
    count: int
    instance: object = None  # identifies the DuckDB database the stage tables live in


@dataclass(frozen=True, slots=True)
class TableBatch:
    """Rows for one table of one schema, ready to load.

    `columns` names every column the rows use with its type: the existing type for columns the
    table has, the new type for columns the backend must add. `rows` hold values already coerced
    to that type: `datetime` (aware, UTC), `int`, `float`, `bool`, `str` or `None`; a row may
    omit columns (missing means NULL). Every row has an `id` (str), unique within the batch.
    When `staged` is set, the rows are there instead and `rows` is empty.
    """

    schema: str
    table: str
    columns: Mapping[str, ColumnType]
    rows: Sequence[Mapping[str, Any]]
    # users/accounts: keep the latest row per id (replace); others: insert, skip ids present.
    upsert: bool = False
    staged: StagedRows | None = None

    @property
    def row_count(self) -> int:
        return len(self.rows) if self.staged is None else self.staged.count


@dataclass(frozen=True, slots=True)
class Discard:
    """A value that did not fit its column's type: the row loaded without it, this keeps it."""

    schema: str
    table: str
    column: str
    row_id: str
    value: str
    reason: str


@dataclass(frozen=True, slots=True)
class CappedEvents:
    """Tracks of one event name that went to `tracks` only: when the name first came, its
    source's schema already had the `max_event_tables` event tables the warehouse allows.

    `table` is the table the name would have had (what `tracks.event` holds), `event_text` the
    name as first sent, `events` how many of its events (in a plan, or ever when read back).
    `first` is set in the plan that caps the name for the first time in this warehouse.
    """

    schema: str
    table: str
    event_text: str
    events: int
    first: bool = False


class WarehouseBackend(Protocol):
    """A warehouse Sluice loads into."""

    # Longest identifier the warehouse accepts (DuckDB 120 by choice, PostgreSQL 63).
    max_identifier_length: ClassVar[int]

    def columns(self, schema: str) -> dict[str, dict[str, ColumnType]]:
        """`{table: {column: type}}` of the schema as it exists (empty when it does not)."""
        ...

    def load(
        self,
        batches: Sequence[TableBatch],
        discards: Sequence[Discard],
        loader_id: str,
        position: int,
        capped: Sequence[CappedEvents] = (),
    ) -> None:
        """Write everything in ONE transaction.

        Create schemas and tables as needed, `ALTER TABLE ADD COLUMN` for new columns, insert
        rows deduplicated on `id` (rows whose id exists are skipped; upsert tables replace the
        row with that id), append `discards` to `_sluice.discards` (schema, table_name,
        column_name, row_id, value, reason, discarded_at), add `capped` to the counts of
        `_sluice.capped_events` and set the loader's position in `_sluice.loads` (loader_id
        PRIMARY KEY, position, loaded_at). A crash mid-load neither loses nor doubles rows.
        """
        ...

    def capped_events(self, schema: str | None = None) -> list[CappedEvents]:
        """The event names that got no table (of one schema, or all), with their event counts."""
        ...

    def position(self, loader_id: str) -> int:
        """The log position of the loader's last committed load; 0 when it never loaded."""
        ...

    def widen(self, schema: str, table: str, column: str, new_type: ColumnType) -> None:
        """Change a column's type by hand (Segment's "type changes are manual")."""
        ...

    def discards(self, limit: int = 100) -> list[Discard]:
        """The newest discarded values, newest first."""
        ...

    def close(self) -> None: ...
