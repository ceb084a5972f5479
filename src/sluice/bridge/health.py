"""How the sidecar is watched: its limits, its memory, its restart backoff, and its stderr
logged without flooding the worker's log."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sluice.config import DEFAULT_BRIDGE_MAX_LINE_MB, DEFAULT_BRIDGE_MAX_RSS_MB, Settings

log = logging.getLogger("sluice.bridge")

DEFAULT_MAX_LINE_MB = DEFAULT_BRIDGE_MAX_LINE_MB  # SLUICE_BRIDGE_MAX_LINE_MB
DEFAULT_MAX_RSS_MB = DEFAULT_BRIDGE_MAX_RSS_MB  # SLUICE_BRIDGE_MAX_RSS_MB
MIN_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
HEALTHY_RESET_S = 60.0  # a process that lived this long resets the backoff
STDERR_LINES_PER_WINDOW = 20
STDERR_WINDOW_S = 10.0


@dataclass(frozen=True, slots=True)
class SidecarLimits:
    """When a sidecar is restarted instead of trusted further."""

    max_line_mb: float = DEFAULT_MAX_LINE_MB
    max_rss_mb: float = DEFAULT_MAX_RSS_MB
    ping_interval_s: float = 5.0
    ping_timeout_s: float = 10.0
    start_timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SidecarLimits:
        return cls(max_line_mb=settings.bridge_max_line_mb, max_rss_mb=settings.bridge_max_rss_mb)


def backoff_s(failures: int) -> float:
    """1 s after the first failure, doubling to 30 s."""
    return float(min(MAX_BACKOFF_S, MIN_BACKOFF_S * 2.0 ** max(0, failures - 1)))


def rss_of(pid: int) -> int:
    """A process's resident set in bytes, from /proc (0 where there is no /proc)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


class StderrLog:
    """The sidecar's stderr at WARNING, at most STDERR_LINES_PER_WINDOW lines per window: a
    chatty destination must not flood the worker's log (nor its disk). Sluice never writes
    settings there; what destination code prints is its own."""

    def __init__(self) -> None:
        self._start = 0.0
        self._count = 0

    def __call__(self, line: str) -> None:
        now = time.monotonic()
        if now - self._start >= STDERR_WINDOW_S:
            if self._count > STDERR_LINES_PER_WINDOW:
                dropped = self._count - STDERR_LINES_PER_WINDOW
                log.warning("bridge sidecar: %d stderr lines not logged", dropped)
            self._start, self._count = now, 0
        self._count += 1
        if self._count <= STDERR_LINES_PER_WINDOW:
            log.warning("bridge sidecar: %s", line)
