"""What a lane process reports of itself: CPU time and resident memory, from the kernel."""

from __future__ import annotations

import os
import resource
import socket
import time
from dataclasses import dataclass, field

from sluice.store.base_workers import ProcessReport

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_kib(pid: int | None = None) -> int:
    """Resident memory of a process now (Linux /proc; 0 where there is none)."""
    try:
        with open(f"/proc/{pid or 'self'}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE_KIB
    except (OSError, ValueError, IndexError):
        return 0


@dataclass(slots=True)
class SelfReport:
    holder: str
    lane: str
    restarts: int = 0
    started_at_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def now(self) -> ProcessReport:
        usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
        return ProcessReport(
            holder=self.holder,
            lane=self.lane,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at_ms=self.started_at_ms,
            cpu_ms=int((usage.ru_utime + usage.ru_stime) * 1000),
            rss_kib=rss_kib(),
            restarts=self.restarts,
            updated_at_ms=int(time.time() * 1000),
        )
