"""Per-source token buckets, shared by every collector process: the optional events/s limit.

HTTP workers are separate processes, and one client's connection lands on any of them, so each
process keeping its own bucket would multiply the limit by the number of workers. The buckets live
in a small memory-mapped file in the data dir, updated under `flock`; `time.monotonic()` is the
same clock in every process on Linux. The cost (a lock and a few bytes read and written) is paid
only when a limit is set.
"""

from __future__ import annotations

import fcntl
import math
import mmap
import os
import struct
import time
import zlib
from pathlib import Path

_SLOT = struct.Struct("<64sdd")  # source id (utf-8, zero-padded), tokens, last refill
SLOTS = 4096


def refill(
    tokens: float, last: float, now: float, rate: float, burst: float, n: int
) -> tuple[float, int]:
    """Tokens left after taking `n` (or the untouched balance), and seconds to wait (0 = pass)."""
    tokens = min(burst, tokens + max(now - last, 0.0) * rate)
    if tokens >= n or (n > burst and tokens >= burst):
        return tokens - n, 0
    return tokens, max(1, math.ceil((min(n, burst) - tokens) / rate))


class SharedTokenBuckets:
    """One bucket per source in `path`; `rate` events/s refill, `burst` capacity."""

    def __init__(self, path: Path, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1, int(rate)))
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        size = SLOTS * _SLOT.size
        if os.fstat(self._fd).st_size < size:
            os.ftruncate(self._fd, size)
        self._map = mmap.mmap(self._fd, size)

    def take(self, source_id: str, n: int, now: float | None = None) -> int:
        """0 when `n` events may pass now, else the seconds to wait before retrying."""
        now = time.monotonic() if now is None else now
        name = source_id.encode()[: _SLOT.size - 16].ljust(64, b"\0")
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            offset = self._slot(name)
            stored, tokens, last = _SLOT.unpack_from(self._map, offset)
            if stored != name:  # a new bucket starts full
                tokens, last = self.burst, now
            tokens, wait = refill(tokens, last, now, self.rate, self.burst, n)
            _SLOT.pack_into(self._map, offset, name, tokens, now)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        return wait

    def _slot(self, name: bytes) -> int:
        """The slot of this source: its own, or the first free one after its hash (probing)."""
        start = zlib.crc32(name) % SLOTS
        for step in range(SLOTS):
            offset = ((start + step) % SLOTS) * _SLOT.size
            stored = self._map[offset : offset + 64]
            if stored == name or stored == bytes(64):
                return offset
        return start * _SLOT.size  # table full: share a bucket rather than fail

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)
