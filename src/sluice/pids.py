"""Whether a process is alive, by its PID: for the health checks (a worker lane) and for
cleaning up after processes that are gone (their metrics files)."""

from __future__ import annotations

import os

_HAS_PROC = os.path.isdir("/proc/self")


def running(pid: int) -> bool:
    """Is the process alive? A zombie is not: an orphaned lane may wait long to be reaped (in a
    container whose first process reaps nothing)."""
    if _HAS_PROC:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                return stat.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
        except FileNotFoundError:
            return False
        except (OSError, IndexError):
            pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
