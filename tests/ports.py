"""Loopback ports for the servers the tests start, safe when tests run in parallel.

A port found free by binding port 0 can be taken by another pytest-xdist worker (or by any
client socket: those come from the same ephemeral range) before the server binds it. Each
worker therefore takes ports from its own slice of a range below Linux's ephemeral ports
(32768+), moving on at each call so a port handed out and not yet bound is not handed out
again; a random start keeps another test run on the same machine (another checkout) apart.
"""

from __future__ import annotations

import itertools
import os
import random
import socket

BASE = 20_000
SPAN = 1_500  # ports per worker: 8 slices fit below 32,000
SLICES = 8


def _worker() -> int:
    """This xdist worker's number (`gw3` → 3), 0 outside xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0


_offsets = itertools.count(random.randrange(SPAN))


def free_port() -> int:
    """A loopback port nothing listens on, from this worker's slice."""
    start = BASE + (_worker() % SLICES) * SPAN
    for _ in range(SPAN):
        port = start + next(_offsets) % SPAN
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {start}..{start + SPAN - 1}")
