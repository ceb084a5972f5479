"""The preview of a Segment's destination: the exact requests Segment's code would make for an
event, captured without sending anything.

A native destination's requests are built in Python and shown as built (preview.py). A bridged
one's are made by Segment's code, so the preview runs each execute in a sidecar of its own (an
HTTP process keeps no Node around) whose fetch records the request and answers `200 {}`
without touching the network: offline and free of side effects, as Segment's own test mode.
A perform that needs a real answer (a lookup before a write) shows what it does with an empty
one; the problems list says when Segment's code refused the event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from sluice.bridge import location
from sluice.bridge.destination import BridgedDestination
from sluice.bridge.sidecar import Sidecar
from sluice.destinations.base import OutRequest

CAPTURE_TIMEOUT_S = 10.0
EMPTY_ANSWER = (200, {"content-type": "application/json"}, b"{}")


def captured(
    destination: BridgedDestination, executes: Sequence[OutRequest]
) -> tuple[list[OutRequest], list[str]]:
    """The requests Segment's code makes for `executes` (as `build` made them), and the
    problems it reported; for a worker thread (it runs its own event loop)."""
    return asyncio.run(_capture(destination, executes))


async def _capture(
    destination: BridgedDestination, executes: Sequence[OutRequest]
) -> tuple[list[OutRequest], list[str]]:
    requests: list[OutRequest] = []
    problems: list[str] = []
    sidecar = Sidecar(location.bridge_dir())
    try:
        for execute in executes:

            async def record(
                exec_id: str, method: str, url: str, headers: Mapping[str, str], body: bytes,
                ids: Sequence[str] = execute.message_ids,
            ) -> tuple[int, Mapping[str, str], bytes]:  # fmt: skip
                requests.append(OutRequest(method, destination.redirected(url), headers, body, ids))
                return EMPTY_ANSWER

            result = await destination.execute(sidecar, execute, record, CAPTURE_TIMEOUT_S)
            error = result.error
            if not result.ok and error is not None:
                status = f" (HTTP {error.status})" if error.status else ""
                problems.append(f"Segment's code refused it: {error.name}{status}: {error.message}")
    finally:
        await sidecar.stop()
    return requests, problems
