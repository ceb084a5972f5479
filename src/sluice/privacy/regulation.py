"""Regulations in Segment's shape: what each type does, what a request may ask, and its creation.

A request is Segment's Public API body, `{"regulationType", "subjectType", "subjectIds"}`,
checked as Segment checks it (at most 5,000 ids; `ANONYMOUS_ID` only with `DELETE_ARCHIVE_ONLY`;
`OBJECT_ID` belongs to cloud sources, which Sluice has not). Creating one records it and
(un)suppresses its user ids in one transaction of the store; suppression types with nothing to
delete are FINISHED at once, the rest wait for the runner (`privacy/runner.py`) in INITIALIZED.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Literal

import msgspec

from sluice.privacy.errors import RegulationInvalid
from sluice.privacy.suppression import suppression_keys
from sluice.store.base import Store
from sluice.store.base_privacy import RegulationRow

RegulationType = Literal[
    "SUPPRESS_ONLY",
    "SUPPRESS_WITH_DELETE",
    "SUPPRESS_WITH_DELETE_INTERNAL",
    "DELETE_ONLY",
    "DELETE_INTERNAL",
    "DELETE_ARCHIVE_ONLY",
    "UNSUPPRESS",
]
REGULATION_TYPES: tuple[str, ...] = RegulationType.__args__  # type: ignore[attr-defined]
SUBJECT_TYPES = ("USER_ID", "ANONYMOUS_ID", "OBJECT_ID")
STATUSES = (
    "INITIALIZED", "INVALID", "NOT_SUPPORTED", "RUNNING", "PARTIAL_SUCCESS", "FAILED", "FINISHED",
)  # fmt: skip
MAX_SUBJECT_IDS = 5_000
MAX_ID_LENGTH = 1_000
# How long after its creation a deletion starts: every collector reloads the suppressions within
# CONFIG_POLL_S (1 s) and commits what it accepted before within a group commit; five seconds
# leave room for a loaded machine. An event accepted before that is in the log, and deleted.
SUPPRESSION_SETTLE_MS = 5_000


@dataclass(frozen=True, slots=True)
class Effects:
    """What a type does: suppress or unsuppress, and which places its deletion reaches."""

    suppress: bool = False
    unsuppress: bool = False
    internal: bool = False  # the log, archive, profiles, warehouses, lake
    destinations: bool = False  # deletion requests to destinations that support them
    archive_only: bool = False


EFFECTS: dict[str, Effects] = {
    "SUPPRESS_ONLY": Effects(suppress=True),
    "SUPPRESS_WITH_DELETE": Effects(suppress=True, internal=True, destinations=True),
    "SUPPRESS_WITH_DELETE_INTERNAL": Effects(suppress=True, internal=True),
    "DELETE_ONLY": Effects(internal=True, destinations=True),
    "DELETE_INTERNAL": Effects(internal=True),
    "DELETE_ARCHIVE_ONLY": Effects(archive_only=True),
    "UNSUPPRESS": Effects(unsuppress=True),
}


class RegulationRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Segment's `createWorkspaceRegulation` / `createSourceRegulation` body."""

    regulation_type: str = msgspec.field(name="regulationType")
    subject_type: str = msgspec.field(name="subjectType")
    subject_ids: list[str] = msgspec.field(name="subjectIds")


def check_request(req: RegulationRequest) -> tuple[str, ...]:
    """The request's ids, de-duplicated in order; raises `RegulationInvalid` naming the field."""
    if req.regulation_type not in EFFECTS:
        raise RegulationInvalid(
            f"regulationType must be one of {', '.join(REGULATION_TYPES)}", "regulationType"
        )
    if req.subject_type not in SUBJECT_TYPES:
        raise RegulationInvalid(
            f"subjectType must be one of {', '.join(SUBJECT_TYPES)}", "subjectType"
        )
    if req.subject_type == "OBJECT_ID":
        raise RegulationInvalid(
            "OBJECT_ID applies to cloud sources' objects, which Sluice does not have",
            "subjectType",
        )
    if req.subject_type == "ANONYMOUS_ID" and req.regulation_type != "DELETE_ARCHIVE_ONLY":
        raise RegulationInvalid(
            "ANONYMOUS_ID is only accepted with DELETE_ARCHIVE_ONLY (as Segment); suppression"
            " and deletion are by USER_ID",
            "subjectType",
        )
    if not req.subject_ids:
        raise RegulationInvalid("subjectIds must hold at least one id", "subjectIds")
    if len(req.subject_ids) > MAX_SUBJECT_IDS:
        raise RegulationInvalid(
            f"subjectIds holds {len(req.subject_ids)} ids; at most {MAX_SUBJECT_IDS} per request",
            "subjectIds",
        )
    for index, value in enumerate(req.subject_ids):
        if not value or len(value) > MAX_ID_LENGTH or "\x00" in value:
            raise RegulationInvalid(
                f"subjectIds[{index}] must be a non-empty id of at most {MAX_ID_LENGTH}"
                " characters, without NUL",
                f"subjectIds[{index}]",
            )
    return tuple(dict.fromkeys(req.subject_ids))


def check_scope(req: RegulationRequest, source_id: str | None) -> tuple[str, ...]:
    """`check_request`, and whether the type may have this scope (the UI checks before it asks
    for a confirmation; `create_regulation` checks again)."""
    ids = check_request(req)
    if req.regulation_type == "DELETE_ARCHIVE_ONLY" and source_id is None:
        raise RegulationInvalid(
            "DELETE_ARCHIVE_ONLY is source-scoped: POST /regulations/sources/{sourceId}",
            "regulationType",
        )
    return ids


def deletes(regulation_type: str) -> bool:
    """Whether a type deletes data (which cannot be undone), not only (un)suppresses."""
    e = EFFECTS[regulation_type]
    return e.internal or e.destinations or e.archive_only


def create_regulation(
    store: Store, req: RegulationRequest, source_id: str | None = None
) -> RegulationRow:
    """Check, record and (un)suppress; returns the regulation as stored."""
    ids = check_scope(req, source_id)
    effects = EFFECTS[req.regulation_type]
    now = int(time.time() * 1000)
    deleting = deletes(req.regulation_type)
    row = RegulationRow(
        id="reg_" + secrets.token_hex(12),
        type=req.regulation_type,
        subject_type=req.subject_type,
        subject_ids=ids if deleting else (),
        subject_count=len(ids),
        source_id=source_id,
        status="INITIALIZED" if deleting else "FINISHED",
        detail="" if deleting else _suppression_detail(effects, len(ids)),
        created_at_ms=now,
        updated_at_ms=now,
        finished_at_ms=None if deleting else now,
        not_before_ms=now + (SUPPRESSION_SETTLE_MS if effects.suppress else 0),
    )
    store.create_regulation(
        row,
        suppress=suppression_keys(ids) if effects.suppress else (),
        unsuppress=suppression_keys(ids) if effects.unsuppress else (),
    )
    return row


def _suppression_detail(effects: Effects, n: int) -> str:
    verb = "suppressed" if effects.suppress else "unsuppressed"
    return f"{n} user id(s) {verb}; collectors apply it within a few seconds"
