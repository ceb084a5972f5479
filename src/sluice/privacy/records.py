"""Regulations and suppressions as the admin API and the CLI show them (Segment's field names).

A regulation's record never carries its subject ids: Segment's API does not return them, and a
record is shown, logged and copied around. The runner's view of a target is a `target` entry.
"""

from __future__ import annotations

from typing import Any

from sluice.privacy.errors import RegulationNotFound
from sluice.spec.timestamps import format_ms
from sluice.store.base import Store
from sluice.store.base_privacy import LegRow, RegulationRow


def _time(ms: int | None) -> str | None:
    return None if ms is None else format_ms(ms)


def leg_record(leg: LegRow) -> dict[str, Any]:
    return {
        "name": leg.target,
        "status": leg.status,
        "detail": leg.detail,
        "removed": leg.removed,
        "updatedAt": _time(leg.updated_at_ms),
    }


def regulation_record(reg: RegulationRow, legs: list[LegRow] | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": reg.id,
        "sourceId": reg.source_id,
        "overallStatus": reg.status,
        "regulationType": reg.type,
        "subjectType": reg.subject_type,
        "subjectCount": reg.subject_count,
        "detail": reg.detail,
        "createdAt": _time(reg.created_at_ms),
        "updatedAt": _time(reg.updated_at_ms),
        "finishedAt": _time(reg.finished_at_ms),
    }
    if legs is not None:
        record["targets"] = [leg_record(leg) for leg in legs]
    return record


def read_regulation(store: Store, regulation_id: str) -> dict[str, Any]:
    reg = store.regulation(regulation_id)
    if reg is None:
        raise RegulationNotFound(regulation_id)
    return regulation_record(reg, store.regulation_legs(regulation_id))


def suppression_record(key: str, regulation_id: str, created_ms: int) -> dict[str, Any]:
    """A suppression: the SHA-256 of the user id (privacy/suppression.py), not the id."""
    return {
        "subjectType": "USER_ID",
        "subjectHash": key,
        "regulateId": regulation_id,
        "createdAt": format_ms(created_ms),
    }
