"""Privacy's part of the store protocol (`Regulations`): regulations, their legs, suppressed ids.

Apart from the rest of the protocol because only privacy/ and its store tables
(`store/regulations.py`) use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class RegulationRow:
    id: str
    type: str
    subject_type: str
    subject_ids: tuple[str, ...]  # empty once the regulation is over
    subject_count: int
    source_id: str | None
    status: str
    detail: str
    created_at_ms: int
    updated_at_ms: int
    finished_at_ms: int | None
    not_before_ms: int


@dataclass(frozen=True, slots=True)
class LegRow:
    regulation_id: str
    target: str
    status: str
    detail: str
    removed: int
    updated_at_ms: int


class Regulations(Protocol):
    """Privacy regulations, their legs and the suppressed user ids (store/regulations.py)."""

    keeps_newest_event: bool

    def create_regulation(
        self, row: RegulationRow, *, suppress: Sequence[str] = (), unsuppress: Sequence[str] = ()
    ) -> None: ...

    def regulation(self, regulation_id: str) -> RegulationRow | None: ...

    def regulations(
        self, *, status: str | None = None, source_id: str | None = None, limit: int = 100
    ) -> list[RegulationRow]: ...

    def pending_regulations(self) -> list[RegulationRow]: ...

    def regulation_counts(self) -> dict[str, int]: ...

    def set_regulation_status(
        self, regulation_id: str, status: str, detail: str, now_ms: int, *, over: bool = False
    ) -> None: ...

    def record_leg(self, leg: LegRow) -> None: ...

    def regulation_legs(self, regulation_id: str) -> list[LegRow]: ...

    def suppressed_keys(self) -> frozenset[str]: ...

    def suppressions(self, limit: int = 1000) -> list[tuple[str, str, int]]: ...

    def scan_payloads(
        self, table: str, after: tuple[Any, ...] | None, limit: int
    ) -> list[tuple[tuple[Any, ...], str | None, bytes]]: ...

    def delete_rows(self, table: str, keys: Sequence[tuple[Any, ...]]) -> int: ...

    def erase_freed(self) -> bool: ...
