"""Whether an event (a stored payload, an archive line) is about a subject: fast, then exact.

Deletion scans every stored event, so the common case (an event of someone else) must cost
almost nothing: a byte search for the ids' JSON strings over a whole archive file or payload
finds nothing, and only then are lines decoded and their `userId` / `anonymousId` compared
exactly (a property that merely contains the id is not the subject's event). With many ids one
regular expression pulls the field's values out instead of one search per id.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from sluice.privacy.targets.base import Subject

FIELDS = {"USER_ID": "userId", "ANONYMOUS_ID": "anonymousId", "OBJECT_ID": "objectId"}
_FEW_IDS = 16


class _Ids(msgspec.Struct):
    userId: Any = None
    anonymousId: Any = None
    objectId: Any = None


_decode = msgspec.json.Decoder(_Ids).decode


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


class SubjectMatcher:
    """Tests bytes for a subject's ids: `might_hold` (cheap, no false negatives) then `holds`."""

    def __init__(self, subject: Subject) -> None:
        self.field = FIELDS[subject.type]
        self.ids = frozenset(subject.ids)
        self._needles = [msgspec.json.encode(i) for i in subject.ids]
        self._values: re.Pattern[bytes] | None = None
        if len(self._needles) > _FEW_IDS:
            name = re.escape(self.field.encode())
            self._values = re.compile(rb'"' + name + rb'"\s*:\s*("(?:[^"\\]|\\.)*"|-?[0-9.eE+]+)')

    def might_hold(self, data: bytes) -> bool:
        """False only when no event in `data` can be the subject's."""
        if self._values is None:
            return any(n in data for n in self._needles)
        for match in self._values.finditer(data):
            try:
                value = _text(msgspec.json.decode(match[1]))
            except msgspec.DecodeError:
                return True  # cannot tell: look closer
            if value in self.ids:
                return True
        return False

    def holds(self, payload: bytes) -> bool:
        """Whether this one event is the subject's. A payload that is not an event (a truncated
        rejected item) counts when it contains an id at all: it is deleted, not kept."""
        try:
            ids = _decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return any(n in payload for n in self._needles) or (
                self._values is not None and self.might_hold(payload)
            )
        return _text(getattr(ids, self.field)) in self.ids
