"""The worker's processes: delivery and batch work in processes of their own, each restarted by
the supervisor when it dies, its leases freed at once so that nothing waits for them to expire;
kill -9 of any of them loses nothing (both backends).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pytest

from recorder import Recorder
from server import (
    WRITE_KEY,
    SluiceServer,
    StartServer,
    basic,
    wait_for,
)
from sluice.config import Settings, default_batch_nice
from sluice.store.base import ConfigObject, Store
from sluice.store.factory import open_store

LEASE_S = "30"  # the default: a takeover that waited for expiry would take this long


@pytest.fixture
def node(seeded_store: tuple[dict[str, str], Path]) -> tuple[dict[str, str], Path]:
    """A server's env and data dir, its store seeded with the test sources."""
    env, data_dir = seeded_store
    return {**{"SLUICE_WORKERS": "1", "SLUICE_LEASE_S": LEASE_S}, **env}, data_dir


def holder_of(store: Store, unit: str) -> str | None:
    now_ms = int(time.time() * 1000)
    for lease in store.leases():
        if lease.name == unit and lease.expires_at_ms > now_ms:
            return lease.holder
    return None


def pid_of(holder: str) -> int:
    return int(holder.split(":")[1])


def send(server: SluiceServer, n: int) -> list[str]:
    ids = [f"m-{uuid.uuid4()}" for _ in range(n)]
    batch = [{"type": "track", "event": "Tick", "userId": f"u{i % 7}", "messageId": m}
             for i, m in enumerate(ids)]  # fmt: skip
    res = server.post("/v1/batch", {"batch": batch}, key=None,
                      headers={"authorization": basic(WRITE_KEY)})  # fmt: skip
    assert res.status == 200, res.body
    return ids


def status(server: SluiceServer, env: dict[str, str]) -> dict[str, Any]:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "sluice", "status", "--json", "--data-dir", str(server.data_dir)],
        env={**os.environ, **env}, capture_output=True, check=True,
    ).stdout  # fmt: skip
    result: dict[str, Any] = msgspec.json.decode(out)
    return result


def lanes(server: SluiceServer, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {w["lane"]: w for w in status(server, env)["workers"].values() if "pid" in w}


def test_kill_9_of_the_delivery_process_restarts_it_and_loses_nothing(
    start_server: StartServer, recorder: Recorder, node: tuple[dict[str, str], Path]
) -> None:
    env, data_dir = node
    server = start_server(env, data_dir=data_dir)
    store = server.store
    doc = {"id": "hook", "type": "webhook", "sources": ["web"],
           "settings": {"urls": [f"{recorder.base_url}/hook"]}}  # fmt: skip
    store.commit_cursor("destination:hook", store.last_seq())
    store.put_config(ConfigObject("destination", "hook", msgspec.json.encode(doc)))
    sent = send(server, 50)
    wait_for(lambda: len(recorder.requests) >= 50, 20, what="first deliveries")
    victim = holder_of(store, "destination:hook")
    assert victim is not None
    assert victim not in (holder_of(store, "archive"), holder_of(store, "warehouses"))
    os.kill(pid_of(victim), signal.SIGKILL)
    killed_at = time.monotonic()
    sent += send(server, 50)  # acknowledged while the delivery process is down
    wait_for(lambda: holder_of(store, "destination:hook") not in (None, victim), 20,
             what="the restarted process holds the destination")  # fmt: skip
    assert time.monotonic() - killed_at < 10, "the lease was freed, not waited out"
    sent += send(server, 50)
    wait_for(lambda: set(sent) <= {r.json()["messageId"] for r in recorder.requests}, 30,
             what="every acknowledged event delivered")  # fmt: skip
    delivery = lanes(server, env)["delivery"]
    assert delivery["restarts"] == 1
    assert "the delivery process was killed by SIGKILL; restarting it" in server.log()


def test_kill_9_of_the_batch_process_mid_load_loads_every_event_once(
    start_server: StartServer, node: tuple[dict[str, str], Path]
) -> None:
    env, data_dir = node
    extra = {"SLUICE_WAREHOUSE_INTERVAL_S": "0.2", "SLUICE_ARCHIVE_MAX_FILE_AGE_S": "1"}
    server = start_server({**env, **extra}, data_dir=data_dir)
    store = server.store
    sent: list[str] = []
    for _ in range(40):
        sent += send(server, 200)
    killed = 0
    deadline = time.monotonic() + 60
    while killed < 3 and time.monotonic() < deadline:  # kill it three times while it works
        holder = holder_of(store, "warehouses")
        if holder is not None:
            time.sleep(0.3)
            os.kill(pid_of(holder), signal.SIGKILL)
            killed += 1
            wait_for(lambda h=holder: holder_of(store, "warehouses") not in (None, h), 20,
                     what="the batch process restarted")  # fmt: skip
        sent += send(server, 200)
    assert killed == 3
    end = store.last_seq()

    def loaded() -> list[str]:
        try:
            path = str(data_dir / "warehouse.duckdb")
            with duckdb.connect(path, read_only=True) as db:
                return [r[0] for r in db.execute("SELECT id FROM web.tracks").fetchall()]
        except duckdb.Error:
            return []

    def complete() -> list[str] | None:
        # One read gives both the count and the ids: a second read may meet the loader
        # holding the file (DuckDB's lock) and come back empty.
        ids = loaded()
        return ids if len(ids) >= len(sent) else None

    wait_for(lambda: store.cursors().get("archive", 0) >= end, 60, what="the archive")
    ids = wait_for(complete, 90, what="the warehouse")
    assert sorted(ids) == sorted(sent)  # each exactly once
    assert lanes(server, env)["batch"]["restarts"] == 3


def nice_of(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of proc(5), counted after the command name


def worker_pids(server: SluiceServer) -> dict[str, int]:
    assert server.proc is not None
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == server.proc.pid:
                    found[(entry / "comm").read_text().strip()] = int(entry.name)
            except (OSError, ProcessLookupError):
                continue
    return found


@pytest.mark.parametrize("configured", [None, "3"])
def test_the_batch_process_runs_at_a_lower_priority(
    start_server: StartServer, configured: str | None
) -> None:
    env = {"SLUICE_WORKERS": "1"}
    if configured is not None:
        env["SLUICE_BATCH_NICE"] = configured
    server = start_server(env)
    pids = wait_for(lambda: (p := worker_pids(server)).keys() >= {"sluice-batch",
                    "sluice-delivery", "sluice-worker"} and p, 20)  # fmt: skip
    expected = int(configured) if configured is not None else default_batch_nice()
    assert nice_of(pids["sluice-batch"]) == expected
    assert nice_of(pids["sluice-delivery"]) == 0
    assert nice_of(pids["sluice-worker"]) == 0


def test_a_process_over_the_memory_limit_is_restarted_with_backoff(
    start_server: StartServer,
) -> None:
    server = start_server({"SLUICE_WORKERS": "1", "SLUICE_WORKER_MEMORY_LIMIT_MB": "20"})
    second = "the batch process was stopped over its memory limit; restarting it in 2 s"
    wait_for(lambda: second in server.log(), 30)
    log = server.log()
    assert "the batch process uses " in log and "over SLUICE_WORKER_MEMORY_LIMIT_MB=20" in log
    assert "the batch process was stopped over its memory limit; restarting it in 1 s" in log


def test_the_lanes_die_with_their_supervisor_which_serve_starts_again(
    start_server: StartServer, recorder: Recorder
) -> None:
    server = start_server({"SLUICE_WORKERS": "1"})
    pids = wait_for(lambda: (p := worker_pids(server)).keys() >= {"sluice-batch",
                    "sluice-delivery", "sluice-worker"} and p, 20)  # fmt: skip
    os.kill(pids["sluice-worker"], signal.SIGKILL)
    # Its lanes stop (they would hold their leases with nobody to restart them), and `serve`
    # starts a new worker, whose lanes hold the units again.
    wait_for(lambda: all(not Path(f"/proc/{pids[n]}").exists() or
                         "zombie" in Path(f"/proc/{pids[n]}/status").read_text()
                         for n in ("sluice-batch", "sluice-delivery")), 10)  # fmt: skip
    wait_for(lambda: (p := worker_pids(server)).get("sluice-worker") not in (None,
             pids["sluice-worker"]) and "sluice-batch" in p, 20)  # fmt: skip
    wait_for(lambda: holder_of(server.store, "archive") is not None, 20)
    assert "the worker process exited" in server.log()


def test_stopping_the_server_gives_every_lease_up(
    start_server: StartServer, node: tuple[dict[str, str], Path]
) -> None:
    env, data_dir = node
    server = start_server(env, data_dir=data_dir)
    wait_for(lambda: holder_of(server.store, "archive") is not None, 20)
    url = env.get("SLUICE_DATABASE_URL")
    server.stop()
    store = open_store(Settings(data_dir=data_dir, database_url=url))
    try:
        now_ms = int(time.time() * 1000)
        assert [lease for lease in store.leases() if lease.expires_at_ms > now_ms] == []
        assert store.processes() == []
    finally:
        store.close()
