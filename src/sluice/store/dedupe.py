"""Which message ids the log has seen within the dedupe window, held in memory.

Why in memory: a unique index on random `messageId`s costs SQLite a random B-tree insert and a
dirty page per event, which measured here (bench notes in docs/architecture.md) at under 40k
events/s with `synchronous=FULL`; the log without that index appends at over 120k/s. The log stays
the source of truth: every collector process rebuilds this set from the log on start, and catches
up on rows other processes appended while it holds the write lock, so deduplication is exact across
processes that share one log.

Memory: about 80 bytes per id in the window. Ids are kept as Python's 64-bit string hashes (keyed
per process, so a collision is a 2**-64 chance per pair, not something a client can aim for).
"""

from __future__ import annotations

from collections.abc import Iterable

DEFAULT_GENERATIONS = 24


class SeenIds:
    """Message-id hashes by generation (a slice of the window); expired generations drop out."""

    def __init__(self, window_ms: int, generations: int = DEFAULT_GENERATIONS) -> None:
        self.window_ms = max(int(window_ms), 1)
        self.generation_ms = max(self.window_ms // generations, 1)
        self._seen: dict[int, int] = {}
        self._oldest_live = 0
        self._last_sweep = 0

    def __len__(self) -> int:
        return len(self._seen)

    def _generation(self, at_ms: int) -> int:
        return at_ms // self.generation_ms

    def is_duplicate(self, message_id: str, at_ms: int) -> bool:
        """True when seen within the window before `at_ms`; otherwise remember it and say False."""
        key = hash(message_id)
        gen = self._seen.get(key)
        if gen is not None and gen >= self._generation(at_ms - self.window_ms):
            return True
        self._seen[key] = self._generation(at_ms)
        return False

    def forget(self, message_ids: Iterable[str]) -> None:
        """Undo `is_duplicate` remembering these ids (their transaction rolled back)."""
        for message_id in message_ids:
            self._seen.pop(hash(message_id), None)

    def add(self, message_id: str, at_ms: int) -> None:
        """Record an id read back from the log."""
        key = hash(message_id)
        gen = self._generation(at_ms)
        if self._seen.get(key, -1) < gen:
            self._seen[key] = gen

    def sweep(self, now_ms: int) -> int:
        """Drop ids older than the window; cheap unless a generation has ended. Returns drops."""
        gen = self._generation(now_ms)
        if gen == self._last_sweep:
            return 0
        self._last_sweep = gen
        oldest = self._generation(now_ms - self.window_ms)
        if oldest <= self._oldest_live:
            return 0
        self._oldest_live = oldest
        before = len(self._seen)
        self._seen = {k: g for k, g in self._seen.items() if g >= oldest}
        return before - len(self._seen)
