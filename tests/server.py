"""A real Sluice server in a subprocess, and the small HTTP and store helpers tests drive it with.

Tests talk to the server the way Segment's libraries do: real HTTP over loopback, no mocks. The
server runs `python -m sluice serve` in its own session, so the whole process group (granian
spawns worker processes) can be stopped, or killed mid-flight, with one signal. Its store is read
back directly from the same data dir (SQLite in WAL mode allows a reader next to the server).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from ports import free_port
from sluice.config import Settings
from sluice.store.base import ConfigObject, Store, StoredEvent
from sluice.store.base_event_store import EventQuery
from sluice.store.factory import open_store

WRITE_KEY = "wk_test_1234567890"  # source "web"
OTHER_KEY = "wk_other_1234567890"  # source "app"
DISABLED_KEY = "wk_disabled_1234567890"  # source "off", disabled
PROBE_KEY = "wk_probe_1234567890"  # source "probe": only for the counter barrier
UNKNOWN_KEY = "wk_nobody_1234567890"

# (id, name, write keys, enabled)
SourceSpec = tuple[str, str, tuple[str, ...], bool]
DEFAULT_SOURCES: tuple[SourceSpec, ...] = (
    ("web", "Web", (WRITE_KEY,), True),
    ("app", "App", (OTHER_KEY,), True),
    ("off", "Off", (DISABLED_KEY,), False),
    ("probe", "Probe", (PROBE_KEY,), True),
)

SLUICE = [sys.executable, "-m", "sluice"]
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 15.0

T = TypeVar("T")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any `SLUICE_*` variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(extra or {})
    return env


def basic(key: str, colon: bool = True) -> str:
    """The `Authorization` value Segment's libraries send: Basic base64("key:")."""
    raw = f"{key}:" if colon else key
    return "Basic " + base64.b64encode(raw.encode()).decode()


def wait_for(
    check: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(interval)


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group (zombies have exited: their locks are released)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def wait_for_group_exit(pgid: int) -> None:
    wait_for(lambda: not group_members(pgid), timeout=STOP_TIMEOUT_S, what=f"group {pgid} to exit")


def source_body(source_id: str, name: str, keys: Iterable[str], enabled: bool = True) -> bytes:
    return msgspec.json.encode(
        {"id": source_id, "name": name, "write_keys": list(keys), "enabled": enabled}
    )


def seed_sources(
    data_dir: Path, sources: Iterable[SourceSpec] = DEFAULT_SOURCES, database_url: str | None = None
) -> None:
    """Put sources into the store of `data_dir`, or PostgreSQL's at `database_url` (the server
    loads them at start)."""
    store = open_store(Settings(data_dir=data_dir, database_url=database_url))
    try:
        for source_id, name, keys, enabled in sources:
            body = source_body(source_id, name, keys, enabled)
            store.put_config(ConfigObject("source", source_id, body))
    finally:
        store.close()


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = HTTP_TIMEOUT_S,
) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        res = conn.getresponse()
        data = res.read()
        return Response(res.status, {k.lower(): v for k, v in res.getheaders()}, data)
    finally:
        conn.close()


def decoded(events: Iterable[StoredEvent]) -> list[dict[str, Any]]:
    return [msgspec.json.decode(e.payload) for e in events]


class SluiceServer:
    """`sluice serve` on a free port of 127.0.0.1, with `SLUICE_*` settings from `env`."""

    def __init__(
        self, data_dir: Path, env: Mapping[str, str] | None = None, args: Sequence[str] = ()
    ) -> None:
        """`args` are extra `sluice serve` flags, e.g. ("--role", "worker")."""
        self.data_dir = data_dir
        self.env = dict(env or {})
        self.args = tuple(args)
        self.serves_http = "worker" not in self.args
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self._store: Store | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> SluiceServer:
        assert self.proc is None, "already running"
        command = [
            *SLUICE, "serve", "--data-dir", str(self.data_dir), "--port", str(self.port), *self.args
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command,
                env=clean_env(self.env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            code = self.proc.poll()
            if code is not None:
                self.proc = None
                raise RuntimeError(f"sluice serve exited early ({code}):\n{self.log()}")
            if not self.serves_http:
                if "worker running" in self.log():
                    return self
                time.sleep(0.05)
                continue
            with contextlib.suppress(OSError):
                if http_request(self.port, "GET", "/healthz", timeout=1.0).status == 200:
                    return self
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"sluice serve did not answer /healthz:\n{self.log()}")
            time.sleep(0.05)

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, with no chance to flush anything.

        Returns once every process of the group has exited, not only the main one: a worker
        still dying holds its SQLite locks, so a read of the log meanwhile trusts the WAL index
        and misses a transaction the worker wrote but had not indexed (never acknowledged); the
        next opener after the last exit recovers it. A test reading "after the crash" must read
        after all of it."""
        if self.proc is None:
            return
        self._signal(signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT_S)
        wait_for_group_exit(self.proc.pid)
        self.proc = None

    def stop(self) -> None:
        """SIGTERM to `sluice serve` (graceful: it stops its HTTP workers and its worker), then
        SIGKILL to the whole group if it takes too long.

        Only the main process is signalled, as a service manager's `KillMode=mixed` does: with
        every process of the group signalled at once, granian's main process can deadlock in its
        own signal handler (seen with gdb) and each such stop waited the whole timeout."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        # Workers may outlive the main process; the group goes in any case.
        self._signal(signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT_S)
        wait_for_group_exit(self.proc.pid)
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self._store is not None:
            self._store.close()
            self._store = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # --- store -----------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        """A reader on the server's store (kept open until `close`)."""
        if self._store is None:
            url = self.env.get("SLUICE_DATABASE_URL")
            self._store = open_store(Settings(data_dir=self.data_dir, database_url=url))
        return self._store

    def events_after(self, seq: int) -> list[StoredEvent]:
        return self.store.read_after(seq, 1_000_000)

    def payloads_after(self, seq: int) -> list[dict[str, Any]]:
        return decoded(self.events_after(seq))

    def counters(self) -> dict[tuple[str, str], int]:
        return self.store.counters()

    # --- HTTP ------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        return http_request(self.port, method, path, body, headers)

    def post(
        self,
        path: str,
        body: Any,
        *,
        key: str | None = WRITE_KEY,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """POST `body` (JSON-encoded unless bytes), with Basic auth for `key` unless it is None."""
        data = body if isinstance(body, bytes) else msgspec.json.encode(body)
        all_headers = {"Content-Type": "application/json"}
        if key is not None:
            all_headers["Authorization"] = basic(key)
        all_headers.update(headers or {})
        return self.request("POST", path, data, all_headers)


class CounterDelta:
    """Counter changes since it was made: `delta[("web", "stored")]`, read after `settle()`.

    The server writes counters behind the events (at most every quarter second, with the next
    commit or when idle), and counts 401s and 429s outside any commit: reading them right after a
    response would race. `settle()` is a barrier: it stores one event for source "probe" and waits
    until the probe's counter matches the probe events in the log; the server writes all its
    pending counters at once, so every counter counted before the probe is on disk too.
    """

    def __init__(self, server: SluiceServer) -> None:
        self._server = server
        self._before: dict[tuple[str, str], int] = {}
        self.settle()
        self._before = server.counters()

    def __getitem__(self, key: tuple[str, str]) -> int:
        return self._server.counters().get(key, 0) - self._before.get(key, 0)

    def settle(self, timeout: float = 10.0) -> CounterDelta:
        server = self._server
        res = server.post("/v1/identify", {"userId": "probe"}, key=PROBE_KEY)
        assert res.status == 200, res.body
        probes = len(server.store.newest(EventQuery(limit=1_000_000, source_id="probe")))
        wait_for(
            lambda: server.counters().get(("probe", "stored"), 0) >= probes,
            timeout=timeout,
            interval=0.02,
            what="the probe's counter",
        )
        return self


def require(ok: bool, reason: str) -> None:
    """Skip locally when a tool is missing; in CI (which installs it) that is a failure."""
    if ok:
        return
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{reason}; CI must install it (see .ci/run)")
    pytest.skip(reason)


# What the `start_server` / `start_module_server` fixtures return (tests/conftest.py).
StartServer = Callable[..., SluiceServer]
