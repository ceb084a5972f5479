"""Splitting one destination's traffic by user, so several workers can deliver it at once.

With `delivery.partitions: N` a destination is delivered by N consumers, `k/N` for k < N, each
claimed by lease on its own and reading the whole log from its own cursor, keeping only the events
whose user hashes to k. All events of one user (userId, else anonymousId) land in one partition,
so they stay in order. The destination's plain cursor (`destination:<id>`) is kept at the lowest
partition cursor: status, trace and log retention read it, and a change of N restarts every
partition from it (events between it and a partition's own position are delivered again: at least
once, never lost).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import msgspec

Partition = tuple[int, int]  # (k, N)


class _Who(msgspec.Struct):
    """The fields that pick an event's partition; decoding only these skips the rest cheaply."""

    userId: Any = None
    anonymousId: Any = None
    messageId: Any = None


_who = msgspec.json.Decoder(_Who).decode


def cursor_name(destination_id: str, partition: Partition | None = None) -> str:
    if partition is None:
        return f"destination:{destination_id}"
    k, n = partition
    return f"destination:{destination_id}#{k}/{n}"


def partition_of(event: Mapping[str, Any], n: int) -> int:
    """Which of `n` partitions an event belongs to: by user, stable across processes."""
    key = event.get("userId") or event.get("anonymousId") or event.get("messageId") or ""
    return zlib.crc32(str(key).encode()) % n


def user_hash(event: Mapping[str, Any]) -> int:
    """The event's user as partitions hash it (userId, else anonymousId, else messageId)."""
    key = event.get("userId") or event.get("anonymousId") or event.get("messageId") or ""
    return zlib.crc32(str(key).encode())


def payload_user_hash(payload: bytes) -> int:
    """`user_hash` of a stored payload, without decoding the whole event."""
    who = _who(payload)
    key = who.userId or who.anonymousId or who.messageId or ""
    return zlib.crc32(str(key).encode())


def payload_partition(payload: bytes, n: int) -> int:
    """`partition_of` for a stored payload, without decoding the whole event."""
    who = _who(payload)
    key = who.userId or who.anonymousId or who.messageId or ""
    return zlib.crc32(str(key).encode()) % n


def partition_cursors(cursors: Mapping[str, int], destination_id: str, n: int) -> dict[int, int]:
    """The cursors of the destination's `n` partitions that exist, by partition number."""
    prefix = f"destination:{destination_id}#"
    found: dict[int, int] = {}
    for name, seq in cursors.items():
        if name.startswith(prefix) and name.endswith(f"/{n}"):
            k = name[len(prefix) : -len(f"/{n}")]
            if k.isdigit() and int(k) < n:
                found[int(k)] = seq
    return found


def starting_position(cursors: Mapping[str, int], destination_id: str) -> int | None:
    """Where a consumer without a cursor of its own starts: the destination's lowest cursor.

    That is its plain cursor or any partition's, for any partition count ever used, so that a
    change of the count re-sends some events rather than skipping any.
    """
    base = f"destination:{destination_id}"
    own = [seq for name, seq in cursors.items() if name == base or name.startswith(base + "#")]
    return min(own) if own else None
