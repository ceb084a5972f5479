"""The sidecar process: concurrency, crashes and restarts, limits, health, its environment."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Request, StubServer, json_answer, run_with_sidecar, track
from sluice.bridge import location
from sluice.bridge.errors import BridgeNotInstalled, SidecarDied
from sluice.bridge.health import SidecarLimits, rss_of
from sluice.bridge.outcomes import outcome_of
from sluice.bridge.results import ExecuteResult
from sluice.bridge.sidecar import Sidecar
from sluice.config import ConfigError, load_settings
from sluice.destinations.base import Verdict


def webhook(url: str = "https://hooks.example.com/in") -> dict[str, Any]:
    return {
        "subscribe": 'type = "track"',
        "partnerAction": "send",
        "mapping": {"url": url, "method": "POST", "data": {"@path": "$.properties"}},
    }


def test_concurrent_executes_each_fetch_carries_its_execute(bridge_dir: Path) -> None:
    stub = StubServer(lambda r: json_answer(200, {}), delay_s=0.05)

    async def body(sidecar: Sidecar) -> list[ExecuteResult]:
        return await asyncio.gather(
            *(
                sidecar.execute(
                    "webhook",
                    webhook(f"https://h.example.com/{i}"),
                    {},
                    event=track(properties={"n": i}),
                )
                for i in range(40)
            )
        )

    started = time.monotonic()
    results = run_with_sidecar(bridge_dir, stub, body)
    elapsed = time.monotonic() - started
    assert all(
        outcome_of(r, ["m"], destination="webhook").verdict is Verdict.DELIVERED for r in results
    )
    assert elapsed < 40 * 0.05  # they overlapped
    by_exec = {r.exec_id: r for r in stub.requests}
    assert len(by_exec) == 40  # one execute id per execute
    for request in stub.requests:
        assert request.url.rsplit("/", 1)[-1] == str(request.json()["n"])
    for i, result in enumerate(results):  # each result holds its own exchange
        assert result.exchanges[0].url == f"https://h.example.com/{i}"


def test_killed_mid_execute_raises_sidecar_died_then_restarts(bridge_dir: Path) -> None:
    holder: dict[str, Sidecar] = {}

    def kill_it(request: Request) -> Any:
        pid = holder["sidecar"].pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        return json_answer(200, {})

    stub = StubServer(kill_it)

    async def body(sidecar: Sidecar) -> tuple[str, ExecuteResult]:
        holder["sidecar"] = sidecar
        with pytest.raises(SidecarDied) as died:
            await sidecar.execute("webhook", webhook(), {}, event=track())
        assert not sidecar.healthy()
        stub.rule = lambda r: json_answer(200, {})
        started = time.monotonic()
        again = await sidecar.execute("webhook", webhook(), {}, event=track())
        assert time.monotonic() - started >= 0.9  # the first backoff: 1 s
        assert sidecar.healthy() and sidecar.restarts == 1
        return str(died.value), again

    reason, again = run_with_sidecar(bridge_dir, stub, body)
    assert "exited" in reason
    assert outcome_of(again, ["m"], destination="webhook").verdict is Verdict.DELIVERED


def test_execute_timeout_cancels_and_the_sidecar_goes_on(bridge_dir: Path) -> None:
    stub = StubServer(lambda r: json_answer(200, {}), delay_s=1.0)

    async def body(sidecar: Sidecar) -> dict[str, Any]:
        with pytest.raises(TimeoutError):
            await sidecar.execute("webhook", webhook(), {}, event=track(), timeout_s=0.2)
        stub.delay_s = 0
        result = await sidecar.execute("webhook", webhook(), {}, event=track())
        assert result.ok
        await asyncio.sleep(0.1)
        return await sidecar.ping()

    pong = run_with_sidecar(bridge_dir, stub, body)
    assert pong["in_flight"] == 0  # the abandoned execute ended on the JS side too
    assert pong["loaded"] == ["webhook"]


def test_a_line_over_the_limit_restarts_the_sidecar(bridge_dir: Path) -> None:
    stub = StubServer()
    limits = SidecarLimits(max_line_mb=0.01)  # 10 KB

    async def body(sidecar: Sidecar) -> str:
        with pytest.raises(SidecarDied) as died:
            await sidecar.execute(
                "webhook", webhook(), {}, event=track(properties={"x": "a" * 20_000})
            )
        return str(died.value)

    reason = run_with_sidecar(bridge_dir, stub, body, limits)
    assert "line over 0.01 MB" in reason and stub.requests == []


def test_rss_over_the_limit_restarts_the_sidecar(bridge_dir: Path) -> None:
    limits = SidecarLimits(max_rss_mb=20, ping_interval_s=0.1)

    async def body(sidecar: Sidecar) -> tuple[str | None, bool]:
        await sidecar.ping()
        for _ in range(50):
            if sidecar.last_error:
                break
            await asyncio.sleep(0.05)
        return sidecar.last_error, sidecar.healthy()

    last_error, healthy = run_with_sidecar(bridge_dir, StubServer(), body, limits)
    assert last_error is not None and "over the limit of 20 MB" in last_error
    assert not healthy


def test_ping_health_and_minimal_environment(bridge_dir: Path) -> None:
    async def body(sidecar: Sidecar) -> tuple[dict[str, Any], set[str], int]:
        assert sidecar.healthy() and sidecar.pid is None  # not started: lazy
        pong = await sidecar.ping()
        pid = sidecar.pid
        assert pid is not None and sidecar.healthy()
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        keys = {e.split(b"=", 1)[0].decode() for e in environ if e}
        return pong, keys, rss_of(pid)

    pong, keys, rss = run_with_sidecar(bridge_dir, StubServer(), body)
    assert keys <= {"PATH", "HOME"}  # no secret of the worker reaches the child
    assert pong["rss"] > 10_000_000 and rss > 10_000_000
    assert pong["loaded"] == []


def test_stop_is_not_a_failure(bridge_dir: Path) -> None:
    async def body(sidecar: Sidecar) -> tuple[str | None, int]:
        await sidecar.ping()
        await sidecar.stop()
        assert sidecar.pid is None
        await sidecar.ping()  # a later call starts it again, without a backoff
        return sidecar.last_error, sidecar.restarts

    assert run_with_sidecar(bridge_dir, StubServer(), body) == (None, 0)


@pytest.mark.parametrize("dest", ["../../etc", "no-such-destination"], ids=["traversal", "unknown"])
def test_bad_destination_slug_is_refused_by_the_sidecar(bridge_dir: Path, dest: str) -> None:
    async def body(sidecar: Sidecar) -> ExecuteResult:
        return await sidecar.execute(dest, webhook(), {}, event=track())

    result = run_with_sidecar(bridge_dir, StubServer(), body)
    assert result.error is not None and result.error.name == "BridgeUsageError"
    outcome = outcome_of(result, ["m"], destination=dest)
    assert outcome.verdict is Verdict.PARK and outcome.reason.startswith("bridge error: ")


def test_missing_install_names_the_command(tmp_path: Path) -> None:
    async def body() -> None:
        await Sidecar(tmp_path).ping()

    with pytest.raises(BridgeNotInstalled, match="sluice bridge install"):
        asyncio.run(body())


def test_stderr_is_logged_with_a_rate_limit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sidecar = Sidecar(tmp_path)
    with caplog.at_level(logging.WARNING, logger="sluice.bridge"):
        for i in range(100):
            sidecar._log_stderr(f"line {i}")
    assert len(caplog.records) == 20


def test_what_destination_code_prints_is_redacted_of_their_secrets(
    bridge_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Third-party code may print its settings on stderr: the secrets of the destinations a
    sidecar runs never reach the worker's log nor `last_error` (shown by status)."""
    noisy = tmp_path / "noisy-node"  # prints like a destination logging its settings, then dies
    noisy.write_text(  # the pause lets the stderr line be read before the exit is seen
        "#!/bin/sh\necho 'auth failed for apiKey=sk-live-secret-123 region=eu' >&2\nsleep 0.5\n"
    )
    noisy.chmod(0o755)
    limits = SidecarLimits(start_timeout_s=5)

    async def main() -> str:
        sidecar = Sidecar(bridge_dir, node=str(noisy), limits=limits)
        sidecar.remember_secrets(["sk-live-secret-123"])
        with pytest.raises(SidecarDied):
            await sidecar.ping()
        await sidecar.stop()
        return sidecar.last_error or ""

    with caplog.at_level(logging.WARNING, logger="sluice.bridge"):
        last_error = asyncio.run(main())
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "apiKey=<redacted> region=eu" in logged + last_error
    assert "sk-live-secret-123" not in logged and "sk-live-secret-123" not in last_error


def test_the_limits_are_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """SLUICE_BRIDGE_MAX_RSS_MB / _MAX_LINE_MB reach the process's sidecar; nonsense is refused."""
    monkeypatch.setenv("SLUICE_BRIDGE_MAX_RSS_MB", "300")
    monkeypatch.setenv("SLUICE_BRIDGE_MAX_LINE_MB", "2.5")
    location.use_data_dir(tmp_path)
    try:
        limits = location.sidecar().limits
        assert (limits.max_rss_mb, limits.max_line_mb) == (300, 2.5)
    finally:
        asyncio.run(location.stop_sidecar())
        location.use_data_dir(Path("sluice-data"))
    assert SidecarLimits.from_settings(load_settings({})) == SidecarLimits()
    with pytest.raises(ConfigError, match="SLUICE_BRIDGE_MAX_RSS_MB must be more than 0"):
        load_settings({"SLUICE_BRIDGE_MAX_RSS_MB": "0"})
    with pytest.raises(ConfigError, match="SLUICE_BRIDGE_MAX_LINE_MB"):
        load_settings({"SLUICE_BRIDGE_MAX_LINE_MB": "lots"})
