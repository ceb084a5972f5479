"""Fixtures of the bridge tests: the real pinned package, installed once through Sluice's own
install code into a cache keyed by the lockfile's sha256 (a second run is offline and fast),
and a Python stand-in for the HTTP servers Segment's code talks to.

No mocks stand in for Segment's code: every test runs `@segment/action-destinations` in a
real Node sidecar; only the network is played by Python, by answering `fetch` messages.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from npm_installs import installed_once
from sluice.bridge.health import SidecarLimits
from sluice.bridge.install import install, lock_sha256
from sluice.bridge.sidecar import Sidecar

T = TypeVar("T")

Answer = tuple[int, Mapping[str, str], bytes]
Rule = Callable[["Request"], Answer]


@pytest.fixture(scope="session")
def bridge_data_dir() -> Path:
    """A data dir whose bridge/ holds the installed package and catalogue."""
    return installed_once("bridge", lock_sha256(), install)


@pytest.fixture(scope="session")
def bridge_dir(bridge_data_dir: Path) -> Path:
    return bridge_data_dir / "bridge"


@dataclass
class Request:
    exec_id: str
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class StubServer:
    """Answers the sidecar's requests by a rule; records them in order."""

    rule: Rule = lambda request: (200, {"content-type": "application/json"}, b"{}")
    requests: list[Request] = field(default_factory=list)
    delay_s: float = 0.0

    async def fetch(
        self, exec_id: str, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> Answer:
        request = Request(exec_id, method, url, dict(headers), body)
        self.requests.append(request)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self.rule(request)


def json_answer(status: int, body: Any, **headers: str) -> Answer:
    return status, {"content-type": "application/json", **headers}, json.dumps(body).encode()


def run_with_sidecar(
    bridge_dir: Path,
    stub: StubServer,
    body: Callable[[Sidecar], Coroutine[Any, Any, T]],
    limits: SidecarLimits | None = None,
) -> T:
    """Run `body` with a fresh sidecar in a fresh event loop, stopping the sidecar after."""

    async def main() -> T:
        sidecar = Sidecar(bridge_dir, fetch=stub.fetch, limits=limits)
        try:
            return await body(sidecar)
        finally:
            await sidecar.stop()

    return asyncio.run(main())


def track(event: str = "Signed Up", **extra: Any) -> dict[str, Any]:
    """A Segment track event as Sluice stores it."""
    message = {
        "type": "track",
        "event": event,
        "userId": "user-1",
        "anonymousId": "anon-1",
        "messageId": f"msg-{event}",
        "timestamp": "2026-11-28T10:00:00.000Z",
        "receivedAt": "2026-11-28T10:00:00.100Z",
        "properties": {"plan": "pro", "revenue": 12.5},
        "context": {"ip": "203.0.113.9", "library": {"name": "analytics-python", "version": "2.3"}},
    }
    message.update(extra)
    return message
