"""What every deletion target is: a named place that removes one subject's data, idempotently.

A regulation's runner calls `delete` once per target and records the outcome; after a crash it
calls it again, so `delete` must finish the job whatever was done before (files rewritten
atomically, rows deleted by predicate, requests that the remote API treats as idempotent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

SubjectType = Literal["USER_ID", "ANONYMOUS_ID", "OBJECT_ID"]
OutcomeStatus = Literal["FINISHED", "FAILED", "NOT_SUPPORTED", "RETRYING"]


@dataclass(frozen=True)
class Subject:
    """The ids one regulation is about (Segment: `subjectType` + `subjectIds`)."""

    type: SubjectType
    ids: tuple[str, ...]


@dataclass(frozen=True)
class TargetOutcome:
    """How one target answered: the status Segment shows per leg, a sentence, what went away.

    `detail` is shown to users and logged: it names the target and the reason, never a secret.
    `removed` counts events/rows/files removed (0 when the target cannot tell).
    """

    target: str  # "log", "archive", "warehouse:<id>", "profiles", "destination:<id>", ...
    status: OutcomeStatus
    detail: str = ""
    removed: int = 0


class Target(Protocol):
    """One place that holds (or was sent) a subject's data."""

    @property
    def name(self) -> str:
        """Stable name used as the key of this leg in the regulation's status."""
        ...

    async def delete(self, regulation_id: str, subject: Subject) -> TargetOutcome:
        """Remove every trace of `subject` here; safe to call again after any interruption."""
        ...
