"""The Python side of the bridge: one Node sidecar per worker process, spoken to in JSON lines.

Why one long-lived process: loading Segment's actions-core costs ~25 MB and a fraction of a
second, so every bridged destination of a worker shares one Node. Why stdio: no port to
secure, and the child dies with its parent. The sidecar sends each HTTP request back here as a
`fetch` message; the caller's fetch handler sends it with the delivery engine's client, so
timeouts, rate limits and trace are the same as for a native destination.

A crash, a broken line, a line over the size limit, an RSS over the memory limit or a missed
ping ends the process: every execute in flight raises `SidecarDied` (its step is resent by the
caller) and the next call starts a new process after a backoff (1 s doubling to 30 s, back to
1 s once a process lived a healthy minute).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from sluice.bridge.errors import BridgeNotInstalled, SidecarDied
from sluice.bridge.health import HEALTHY_RESET_S, SidecarLimits, StderrLog, backoff_s, rss_of
from sluice.bridge.inbound import dispatch
from sluice.bridge.proxy import FetchHandler, no_network
from sluice.bridge.results import ExecuteResult, parse_result
from sluice.bridge.sidecar_process import Call, Process, TokenHandler, spawn
from sluice.delivery.exchange import Redactor

log = logging.getLogger("sluice.bridge")


class Sidecar:
    """The worker's Node sidecar, started on first use. Use from one event loop."""

    def __init__(
        self,
        bridge_dir: Path,
        *,
        fetch: FetchHandler | None = None,
        on_token_refresh: TokenHandler | None = None,
        limits: SidecarLimits | None = None,
        node: str | None = None,
    ) -> None:
        self.bridge_dir = Path(bridge_dir)
        self.limits = limits or SidecarLimits()
        self._fetch = fetch or no_network
        self._on_token_refresh = on_token_refresh
        self._node = node
        self._process: Process | None = None
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._failures = 0
        self._not_before = 0.0
        self._log_stderr = StderrLog()
        self._secrets: set[str] = set()
        self._redactor = Redactor()
        self._reaping: set[asyncio.Task[None]] = set()
        self.last_error: str | None = None
        self.restarts = 0

    # --- public operations -------------------------------------------------------------------
    def remember_secrets(self, secrets: Iterable[str]) -> None:
        """Secrets of the destinations this sidecar runs: what their code prints on stderr
        (logged, and kept for `last_error`) is redacted of them, as delivery records are."""
        new = set(secrets) - self._secrets
        if new:
            self._secrets |= new
            self._redactor = Redactor(self._secrets)

    async def execute(
        self,
        dest: str,
        subscription: Mapping[str, Any],
        settings: Mapping[str, Any],
        *,
        event: Mapping[str, Any] | None = None,
        events: list[Mapping[str, Any]] | None = None,
        fetch: FetchHandler | None = None,
        on_token_refresh: TokenHandler | None = None,
        timeout_s: float | None = None,
        features: Mapping[str, bool] | None = None,
    ) -> ExecuteResult:
        """Run Segment's `onEvent` (one `event`) or `onBatch` (`events`) for one subscription
        (`{subscribe, partnerAction, mapping}`); `settings` are the destination's own, with
        `oauth` for OAuth destinations; `features` are Segment's feature flags (e.g.
        `mixpanel-multistatus`)."""
        message: dict[str, Any] = {"op": "execute", "dest": dest, "settings": settings}
        message["subscription"] = subscription
        if features:
            message["features"] = features
        if events is not None:
            message["events"] = events
        else:
            message["event"] = event or {}
        return await self._run(message, fetch, on_token_refresh, timeout_s)

    async def test_auth(
        self,
        dest: str,
        settings: Mapping[str, Any],
        *,
        fetch: FetchHandler | None = None,
        timeout_s: float | None = None,
    ) -> ExecuteResult:
        """The definition's `testAuthentication`, its requests through `fetch`."""
        message = {"op": "test_auth", "dest": dest, "settings": settings}
        return await self._run(message, fetch, None, timeout_s)

    async def delete_user(
        self,
        dest: str,
        settings: Mapping[str, Any],
        event: Mapping[str, Any],
        *,
        fetch: FetchHandler | None = None,
        timeout_s: float | None = None,
    ) -> ExecuteResult:
        """The definition's `onDelete` for one `{userId, anonymousId}`, its requests through
        `fetch` (a definition without one: a `BridgeUsageError` in the result)."""
        message = {"op": "delete", "dest": dest, "settings": settings, "event": event}
        return await self._run(message, fetch, None, timeout_s)

    async def catalog(self, out: Path) -> dict[str, Any]:
        """Have the sidecar describe every destination of the package into the file `out`."""
        result = await self._run({"op": "catalog", "out": str(out)}, None, None, 300.0)
        if not result.ok or result.error is not None:
            detail = result.error.message if result.error else "no answer"
            raise SidecarDied(f"the catalogue step failed: {detail}")
        return {"out": str(out)}

    async def ping(self) -> dict[str, Any]:
        """Start the sidecar if needed and return its pong (rss, loaded destinations...)."""
        process = await self._ensure()
        return await self._ping(process)

    def healthy(self) -> bool:
        """Running and answering pings (a sidecar not started yet is not unhealthy)."""
        process = self._process
        if process is None:
            return self.last_error is None or time.monotonic() >= self._not_before
        return not process.dead and process.proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self._process.proc.pid if self._process and not self._process.dead else None

    async def stop(self) -> None:
        """Close the sidecar's stdin (it exits on EOF), then kill it if it lingers."""
        process, self._process = self._process, None
        if process is not None:
            process.stopping = True
            if process.proc.stdin is not None and not process.proc.stdin.is_closing():
                process.proc.stdin.close()
            try:
                await asyncio.wait_for(process.proc.wait(), 3.0)
            except TimeoutError:
                process.proc.kill()
            self._finish(process, "the sidecar was stopped", failure=False)
        if self._reaping:
            await asyncio.gather(*self._reaping, return_exceptions=True)

    # --- running a call ------------------------------------------------------------------------
    async def _run(
        self,
        message: dict[str, Any],
        fetch: FetchHandler | None,
        on_token_refresh: TokenHandler | None,
        timeout_s: float | None,
    ) -> ExecuteResult:
        process = await self._ensure()
        call_id = f"e{next(self._ids)}"
        call = Call(
            future=asyncio.get_running_loop().create_future(),
            fetch=fetch or self._fetch,
            on_token_refresh=on_token_refresh or self._on_token_refresh,
        )
        process.calls[call_id] = call
        try:
            await self._send(process, {**message, "id": call_id})
            answer = await asyncio.wait_for(asyncio.shield(call.future), timeout_s)
            refreshing = [t for k, t in call.tasks.items() if k.startswith("token")]
            if refreshing:
                await asyncio.gather(*refreshing, return_exceptions=True)
        except TimeoutError:
            if not process.dead:
                await self._send(process, {"op": "cancel", "id": call_id})
            raise
        finally:
            process.calls.pop(call_id, None)
            for task in call.tasks.values():
                task.cancel()
        ok, outputs, multistatus, error = parse_result(answer)
        return ExecuteResult(ok, outputs, multistatus, error, call.exchanges, call.refreshes)

    async def _send(self, process: Process, message: Mapping[str, Any]) -> None:
        stdin = process.proc.stdin
        if process.dead or stdin is None or stdin.is_closing():
            raise SidecarDied(self.last_error or "the sidecar is not running")
        stdin.write(msgspec.json.encode(message) + b"\n")
        try:
            await stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            self._kill(process, f"writing to the sidecar failed: {exc}")
            raise SidecarDied(self.last_error or str(exc)) from exc

    # --- lifecycle -----------------------------------------------------------------------------
    async def _ensure(self) -> Process:
        async with self._lock:
            process = self._process
            if process is not None and not process.dead:
                return process
            wait = self._not_before - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            process = await self._start()
            self._process = process
            return process

    async def _start(self) -> Process:
        script = self.bridge_dir / "sidecar.js"
        if not (script.exists() and (self.bridge_dir / "node_modules").is_dir()):
            raise BridgeNotInstalled(
                f"no bridge installed in {self.bridge_dir}: run `sluice bridge install`"
            )
        proc = await spawn(script, self.bridge_dir, self._node, self.limits)
        process = Process(proc)
        loop = asyncio.get_running_loop()
        process.tasks = [
            loop.create_task(self._read(process)),
            loop.create_task(self._read_stderr(process)),
            loop.create_task(self._watch(process)),
        ]
        try:
            await asyncio.wait_for(asyncio.shield(process.ready), self.limits.start_timeout_s)
        except TimeoutError:
            self._kill(process, f"no ready line within {self.limits.start_timeout_s:g} s")
            raise SidecarDied(self.last_error or "the sidecar did not start") from None
        except SidecarDied:
            raise
        return process

    def _kill(self, process: Process, reason: str) -> None:
        if process.proc.returncode is None:
            process.proc.kill()
        self._finish(process, reason, failure=True)

    def _finish(self, process: Process, reason: str, *, failure: bool) -> None:
        """Fail every call in flight and plan the next start (after a backoff on failures)."""
        if process.dead:
            return
        process.dead = True
        if self._process is process:
            self._process = None
        if failure:
            now = time.monotonic()
            if now - process.started_at >= HEALTHY_RESET_S:
                self._failures = 0
            self._failures += 1
            self.restarts += 1
            backoff = backoff_s(self._failures)
            self._not_before = now + backoff
            tail = f" (stderr: {process.stderr_tail[-1]})" if process.stderr_tail else ""
            self.last_error = reason + tail
            log.warning("bridge sidecar: %s; restarting in %.0f s", self.last_error, backoff)
        error = SidecarDied(self.last_error if failure else reason)
        if not process.ready.done():
            process.ready.set_exception(error)
            process.ready.exception()  # retrieved: no "never retrieved" warning when unused
        for call in process.calls.values():
            if not call.future.done():
                call.future.set_exception(error)
                call.future.exception()
        current = asyncio.current_task()
        for task in process.tasks:
            if task is not current:
                task.cancel()
        reap = asyncio.get_running_loop().create_task(self._reap(process))
        self._reaping.add(reap)
        reap.add_done_callback(self._reaping.discard)

    @staticmethod
    async def _reap(process: Process) -> None:
        """Wait for a finished child and close its pipes, so nothing outlives the loop."""
        if process.proc.returncode is None:
            process.proc.kill()
        await process.proc.wait()
        if process.proc.stdin is not None:
            process.proc.stdin.close()

    # --- reading the child -------------------------------------------------------------------
    async def _read(self, process: Process) -> None:
        stdout = process.proc.stdout
        assert stdout is not None
        while True:
            try:
                line = await stdout.readline()
            except (ValueError, asyncio.LimitOverrunError):
                self._kill(process, f"a line over {self.limits.max_line_mb:g} MB on stdout")
                return
            if not line:
                code = await process.proc.wait()
                reason = f"the sidecar exited with code {code}"
                self._finish(process, reason, failure=not process.stopping)
                return
            try:
                message = msgspec.json.decode(line)
                if not isinstance(message, dict):
                    raise ValueError("not an object")
                dispatch(process, message, self._reply)
            except (msgspec.DecodeError, ValueError, KeyError, TypeError) as exc:
                self._kill(process, f"protocol error: {exc}: {line[:200]!r}")
                return

    async def _reply(self, process: Process, reply: Mapping[str, Any]) -> None:
        with contextlib.suppress(SidecarDied):  # its calls have been failed already
            await self._send(process, reply)

    async def _read_stderr(self, process: Process) -> None:
        stderr = process.proc.stderr
        assert stderr is not None
        while True:
            try:
                raw = await stderr.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue  # an overlong stderr line is dropped, not fatal
            if not raw:
                return
            line = self._redactor.text(raw.decode("utf-8", "replace").rstrip()[:1000])
            process.stderr_tail.append(line)
            self._log_stderr(line)

    async def _watch(self, process: Process) -> None:
        """Ping on an interval; restart a sidecar that stops answering or grows too big."""
        limits = self.limits
        while not process.dead:
            await asyncio.sleep(limits.ping_interval_s)
            if process.dead or not process.ready.done():
                continue
            try:
                await asyncio.wait_for(self._ping(process), limits.ping_timeout_s)
            except TimeoutError:
                self._kill(process, f"no answer to a ping within {limits.ping_timeout_s:g} s")
                return
            except SidecarDied:
                return
            rss_mb = rss_of(process.proc.pid) / (1024 * 1024)
            if rss_mb > limits.max_rss_mb:
                self._kill(
                    process, f"RSS {rss_mb:.0f} MB over the limit of {limits.max_rss_mb:g} MB"
                )
                return

    async def _ping(self, process: Process) -> dict[str, Any]:
        call_id = f"p{next(self._ids)}"
        call = Call(asyncio.get_running_loop().create_future(), no_network, None)
        process.calls[call_id] = call
        try:
            await self._send(process, {"op": "ping", "id": call_id})
            pong = await call.future
        finally:
            process.calls.pop(call_id, None)
        process.last_pong = pong
        return pong
