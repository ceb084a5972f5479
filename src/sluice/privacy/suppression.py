"""How a suppressed user id is kept: as its SHA-256, never in clear.

The suppression list must outlive the deletion it came with, so it would be the one place left
holding the ids of users who asked to be forgotten. It keeps `sha256(userId)` instead: the
collector hashes the userId of each event only while the list is not empty (under a microsecond
per event), and an UNSUPPRESS request hashes its ids the same way. The list can tell whether an
id is suppressed (`sluice suppressions check`) but cannot be read back into ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import Any


def suppression_key(user_id: str) -> str:
    return hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()


def suppression_keys(user_ids: Iterable[str]) -> list[str]:
    return [suppression_key(u) for u in user_ids]


def is_suppressed(user_id: Any, keys: AbstractSet[str]) -> bool:
    """Whether an event's (normalised) userId is on the list."""
    return isinstance(user_id, str) and bool(user_id) and suppression_key(user_id) in keys
