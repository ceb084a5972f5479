"""One Node child of the sidecar: how it is started, and what it owes the worker.

Kept apart from the protocol (sidecar.py) so that the process's environment, the one place a
secret could leak to third-party code, reads on its own.
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.bridge.errors import NodeUnavailable
from sluice.bridge.health import SidecarLimits
from sluice.bridge.proxy import FetchHandler
from sluice.bridge.results import Exchange, TokenRefresh

TokenHandler = Callable[[str, TokenRefresh], Awaitable[None]]


@dataclass(slots=True)
class Call:
    """One request to the sidecar awaiting its answer, with the state of its fetches."""

    future: asyncio.Future[dict[str, Any]]
    fetch: FetchHandler
    on_token_refresh: TokenHandler | None
    exchanges: list[Exchange] = field(default_factory=list)
    refreshes: list[TokenRefresh] = field(default_factory=list)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)


class Process:
    """One running Node child: its pipes, its reader tasks and the calls it owes answers."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.calls: dict[str, Call] = {}
        self.ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.started_at = time.monotonic()
        self.tasks: list[asyncio.Task[None]] = []
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self.dead = False
        self.stopping = False  # stop() closed its stdin: the exit that follows is no failure
        self.last_pong: dict[str, Any] = {}


async def spawn(
    script: Path, bridge_dir: Path, node: str | None, limits: SidecarLimits
) -> asyncio.subprocess.Process:
    """Start `node sidecar.js` with pipes and a minimal environment (`PATH`, `HOME`): no secret
    of the worker reaches third-party code this way."""
    binary = node or shutil.which("node")
    if binary is None:
        raise NodeUnavailable("node is not on PATH: install Node.js 18.17 or newer")
    env = {
        "PATH": os.pathsep.join([str(Path(binary).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(bridge_dir),
    }
    return await asyncio.create_subprocess_exec(
        binary,
        str(script),
        str(bridge_dir),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=str(bridge_dir),
        limit=int(limits.max_line_mb * 1024 * 1024),
    )
