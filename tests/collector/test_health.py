"""`/healthz` and `/readyz`: a real server over loopback, and the readiness probe on its own.

Readiness is what a load balancer routes by, so the server tests check what it sees: 200 with
every check passing on a fresh node, 503 naming the check that fails (free space, a dead worker,
a missing migration, a database that does not answer), and never the UI's sign-in redirect.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from server import Response, SluiceServer, StartServer, seed_sources, wait_for
from sluice import __version__
from sluice.collector import health
from sluice.collector.health import ReadinessProbe, worker_check
from sluice.config import DEFAULT_READY_MIN_FREE_MB, ConfigError, Settings, load_settings
from sluice.runtime.lane_process import LANES
from sluice.store.base_workers import Lease
from sluice.store.postgres_schema import MIGRATIONS

CHECKS = ["store", "migrations", "worker", "disk"]
READY_TIMEOUT_S = 30.0  # a fresh node: HTTP up, then the worker's lanes claim their leases


def readyz(server: SluiceServer) -> Response:
    return server.request("GET", "/readyz")


def failing(res: Response) -> list[str]:
    return [name for name, check in res.json()["checks"].items() if not check["ok"]]


def wait_ready(server: SluiceServer) -> Response:
    return wait_for(
        lambda: (res := readyz(server)).status == 200 and res,
        timeout=READY_TIMEOUT_S,
        interval=0.2,
        what=f"/readyz to answer 200 (last: {readyz(server).body!r})",
    )


def start_pg(
    start_server: StartServer, pg_url: str, tmp_path: Path, *args: str, **env: str
) -> SluiceServer:
    data_dir = tmp_path / "pg-node"
    seed_sources(data_dir, database_url=pg_url)
    settings = {"SLUICE_DATABASE_URL": pg_url, "SLUICE_WORKERS": "1", **env}
    return start_server(settings, data_dir=data_dir, args=args)


@pytest.fixture
def pg_admin_of(pg_url: str) -> Any:
    """An autocommit connection to the test's database (schema edits, by hand)."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


# --- a real server ---------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_fresh_node_is_ready(
    start_server: StartServer, backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if backend == "postgres":
        server = start_pg(start_server, request.getfixturevalue("pg_url"), tmp_path)
    else:
        server = start_server({"SLUICE_WORKERS": "2"})
    res = wait_ready(server)
    body = res.json()
    assert body["ready"] is True
    assert body["version"] == __version__
    assert body["role"] == "all"
    assert list(body["checks"]) == CHECKS
    assert all(check["ok"] for check in body["checks"].values()), body
    assert res.headers["content-type"] == "application/json"
    assert res.headers["cache-control"] == "no-store"
    worker = body["checks"]["worker"]["reason"]
    assert "delivery (pid " in worker and "batch (pid " in worker
    migrations = body["checks"]["migrations"]["reason"]
    if backend == "postgres":
        assert migrations == f"schema at version {MIGRATIONS[-1][0]}, the latest"
        assert body["checks"]["store"]["reason"].startswith("PostgreSQL answered in ")
    else:
        assert migrations.startswith("no migrations: the SQLite store creates")
        assert body["checks"]["store"]["reason"].startswith("SQLite answered in ")
    assert server.request("GET", "/healthz").json() == {"ok": True}


def test_readyz_is_answered_outside_the_ui_sign_in(start_server: StartServer) -> None:
    """What was seen (issue 16): `/readyz` went to the UI, which redirected to its sign-in."""
    server = start_server()
    ui = server.request("GET", "/")
    assert ui.status == 303, "the UI guards every other path (the control)"
    for method in ("GET", "HEAD"):
        res = server.request(method, "/readyz")
        assert res.status in (200, 503), res
        assert "location" not in res.headers
        assert "set-cookie" not in res.headers
        assert res.headers["content-type"] == "application/json"
    assert set(readyz(server).json()["checks"]) == set(CHECKS)


def test_not_ready_below_the_free_space_minimum(start_server: StartServer) -> None:
    server = start_server({"SLUICE_READY_MIN_FREE_MB": str(10**9)})
    # Once the worker's leases are held, free space is what the node lacks, and all it lacks.
    res = wait_for(
        lambda: (r := readyz(server)).json()["checks"]["worker"]["ok"] and r,
        timeout=READY_TIMEOUT_S,
        interval=0.2,
        what="the worker's leases",
    )
    assert res.status == 503
    assert res.json()["ready"] is False
    assert failing(res) == ["disk"]
    reason = res.json()["checks"]["disk"]["reason"]
    assert "minimum 1000000000 MB (SLUICE_READY_MIN_FREE_MB)" in reason
    assert str(server.data_dir) in reason


def lane_pids(server: SluiceServer) -> dict[str, int]:
    """The worker's lane processes, from their live leases `worker:<lane>:<host>:<pid>:<token>`."""
    now_ms = int(time.time() * 1000)
    pids = {}
    for lease in server.store.leases():
        if lease.name.startswith("worker:") and lease.expires_at_ms > now_ms:
            pids[lease.name.split(":")[1]] = int(lease.holder.split(":")[1])
    return pids


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return int(stat.rsplit(b")", 1)[1].split()[1])


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to find the supervisor")
def test_not_ready_while_the_worker_is_down(start_server: StartServer) -> None:
    """The whole worker killed outright (kill -9 of its lanes and its supervisor, which so never
    frees their leases): the leases stay live until they expire, and the lanes' pids tell that
    nobody holds them. `sluice serve` starts the worker again a second later; to see the gap for
    certain, `sluice serve` itself is paused meanwhile (its HTTP workers keep answering)."""
    server = start_server({"SLUICE_WORKERS": "1"})
    wait_ready(server)
    before = lane_pids(server)
    assert sorted(before) == sorted(LANES)
    supervisor = parent_of(before["delivery"])
    assert parent_of(before["batch"]) == supervisor
    assert server.proc is not None
    assert parent_of(supervisor) == server.proc.pid
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        os.kill(supervisor, signal.SIGSTOP)  # so that it cannot free the lanes' leases
        for pid in before.values():
            os.kill(pid, signal.SIGKILL)
        os.kill(supervisor, signal.SIGKILL)
        res = wait_for(
            lambda: (r := readyz(server)).status == 503 and r,
            timeout=10,
            interval=0.1,
            what="/readyz to answer 503",
        )
        assert failing(res) == ["worker"]
        reason = res.json()["checks"]["worker"]["reason"]
        assert f"the delivery lane's process (pid {before['delivery']}) is not running" in reason
        assert f"the batch lane's process (pid {before['batch']}) is not running" in reason
        assert lane_pids(server) == before  # their leases are still live
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    res = wait_ready(server)
    after = lane_pids(server)
    assert sorted(after) == sorted(LANES)
    assert not set(after.values()) & set(before.values())


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to find the supervisor")
def test_not_ready_after_the_worker_stopped(start_server: StartServer) -> None:
    """kill -9 of the supervisor: its lanes stop with it and give their leases up."""
    server = start_server({"SLUICE_WORKERS": "1"})
    wait_ready(server)
    before = lane_pids(server)
    supervisor = parent_of(before["delivery"])
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        os.kill(supervisor, signal.SIGKILL)
        res = wait_for(
            lambda: (r := readyz(server)).status == 503 and r,
            timeout=10,
            interval=0.1,
            what="/readyz to answer 503",
        )
        assert failing(res) == ["worker"]
        reason = res.json()["checks"]["worker"]["reason"]
        for lane in LANES:
            assert f"no live worker:{lane}: lease of this host" in reason
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    wait_ready(server)


def test_a_collector_node_on_postgresql_needs_no_worker(
    start_server: StartServer, pg_url: str, tmp_path: Path
) -> None:
    """No worker runs anywhere on this database: a collector is ready all the same (ingest does
    not need one; its events wait in the log)."""
    server = start_pg(start_server, pg_url, tmp_path, "--role", "collector")
    res = wait_ready(server)
    body = res.json()
    assert body["role"] == "collector"
    assert body["checks"]["worker"] == {
        "ok": True,
        "reason": "not checked: role collector runs no worker on this node",
    }
    assert not [lease for lease in server.store.leases() if lease.name.startswith("worker:")]


def test_not_ready_when_a_migration_is_missing(
    start_server: StartServer, pg_url: str, tmp_path: Path, pg_admin_of: Any
) -> None:
    server = start_pg(start_server, pg_url, tmp_path, "--role", "collector")
    wait_ready(server)
    latest = MIGRATIONS[-1][0]
    pg_admin_of.execute("DELETE FROM schema_version WHERE version = %s", (latest,))
    res = wait_for(lambda: (r := readyz(server)).status == 503 and r, what="503", interval=0.2)
    assert failing(res) == ["migrations"]
    assert res.json()["checks"]["migrations"]["reason"] == (
        f"schema_version lacks migration(s) {latest} of 1-{latest}: restart the node to apply them"
    )
    # A newer node migrated further: this one keeps running on it (migrations only add).
    pg_admin_of.execute(
        "INSERT INTO schema_version (version) VALUES (%s), (%s)", (latest, latest + 1)
    )
    res = wait_ready(server)
    assert res.json()["checks"]["migrations"]["reason"] == (
        f"schema at version {latest + 1}, newer than this node's {latest} (a newer node migrated"
        " it; migrations only add, so this node runs on it)"
    )


def test_not_ready_while_postgresql_refuses_connections(
    start_server: StartServer, pg_url: str, tmp_path: Path
) -> None:
    server = start_pg(start_server, pg_url, tmp_path, "--role", "collector")
    wait_ready(server)
    database = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        name = sql.Identifier(database)
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(name))
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )
            res = wait_for(
                lambda: (r := readyz(server)).status == 503 and r, what="503", interval=0.2
            )
            checks = res.json()["checks"]
            assert not checks["store"]["ok"]
            assert "PostgreSQL" in checks["store"]["reason"], checks["store"]
            assert checks["migrations"] == {
                "ok": False,
                "reason": "not checked: the store did not answer",
            }
            assert checks["disk"]["ok"]
            assert "password" not in res.body.decode()
        finally:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(name))
    wait_ready(server)


# --- the probe on its own --------------------------------------------------------------------
class CountingStore:
    """The one store call a collector-only SQLite node's checks make, counted; `gate` holds it."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()

    def config_version(self) -> int:
        self.calls += 1
        self.gate.wait(10)
        return 1


def probe_of(tmp_path: Path, store: CountingStore) -> ReadinessProbe:
    settings = Settings(data_dir=tmp_path, role="collector", ready_min_free_mb=1)
    return ReadinessProbe(settings, store)  # type: ignore[arg-type]


def test_probes_share_one_check_per_second(tmp_path: Path) -> None:
    store = CountingStore()
    probe = probe_of(tmp_path, store)

    async def probes() -> list[bool]:
        first = await asyncio.gather(*(probe.readiness() for _ in range(50)))
        second = [(await probe.readiness()).ready for _ in range(50)]
        return [r.ready for r in first] + second

    assert all(asyncio.run(probes()))
    assert store.calls == 1
    time.sleep(health.CACHE_S)
    assert asyncio.run(probe.readiness()).ready
    assert store.calls == 2


def test_a_store_that_does_not_answer_is_reported_in_time(tmp_path: Path) -> None:
    """The probe answers after ANSWER_TIMEOUT_S at most, and never runs two checks at once."""
    store = CountingStore()
    probe = probe_of(tmp_path, store)
    store.gate.clear()

    async def scenario() -> None:
        try:
            answers = await asyncio.gather(*(probe.readiness() for _ in range(5)))
            assert {a.ready for a in answers} == {False}
            reason = answers[0].checks["store"].reason
            assert reason.startswith(f"no answer within {health.ANSWER_TIMEOUT_S} s"), reason
            assert (await probe.readiness()).ready is False  # the same check, still in flight
            assert store.calls == 1
        finally:
            store.gate.set()
        deadline = time.monotonic() + 10
        while not (await probe.readiness()).ready:
            assert time.monotonic() < deadline, "the check never finished"
            await asyncio.sleep(0.05)
        assert store.calls == 1

    asyncio.run(scenario())


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def lease(lane: str, host: str, pid: int, expires_at_ms: int = 2**62) -> Lease:
    return Lease(f"worker:{lane}:{host}:{pid}:abc123", f"{host}:{pid}:abc123", expires_at_ms)


NOW_MS = int(time.time() * 1000)
ME = os.getpid()
WORKER_CASES: dict[str, tuple[list[Lease], bool, str]] = {
    "both lanes here": (
        [lease("delivery", "here", ME), lease("batch", "here", ME), lease("batch", "there", 7)],
        True,
        f"delivery (pid {ME}), batch (pid {ME}); live in the store: 1 delivery, 2 batch",
    ),
    "a lane on another host only": (
        [lease("delivery", "here", ME), lease("batch", "there", ME)],
        False,
        "no live worker:batch: lease of this host (here)",
    ),
    "an expired lease": (
        [lease("delivery", "here", ME), lease("batch", "here", ME, NOW_MS - 1)],
        False,
        "no live worker:batch: lease of this host (here)",
    ),
    "units are not lanes": (
        [Lease("archive", f"here:{ME}:abc123", 2**62), lease("delivery", "here", ME)],
        False,
        "no live worker:batch: lease of this host (here)",
    ),
    "no leases at all": ([], False, "live lanes in the store: 0 delivery, 0 batch"),
}


@pytest.mark.parametrize("case", list(WORKER_CASES), ids=list(WORKER_CASES))
def test_worker_check(case: str) -> None:
    leases, ok, reason = WORKER_CASES[case]
    check = worker_check(leases, "here", NOW_MS)
    assert check.ok is ok
    assert reason in check.reason


def test_worker_check_sees_a_dead_lane_before_its_lease_expires() -> None:
    gone = dead_pid()
    check = worker_check([lease("delivery", "here", ME), lease("batch", "here", gone)], "here", 0)
    assert not check.ok
    assert f"the batch lane's process (pid {gone}) is not running" in check.reason


def test_worker_lanes_are_the_runtime_lanes() -> None:
    assert health.WORKER_LANES == LANES


def test_ready_min_free_mb_setting() -> None:
    assert load_settings({}).ready_min_free_mb == DEFAULT_READY_MIN_FREE_MB
    assert load_settings({"SLUICE_READY_MIN_FREE_MB": "0"}).ready_min_free_mb == 0
    for bad in ("-1", "1.5", "lots"):
        with pytest.raises(ConfigError, match="SLUICE_READY_MIN_FREE_MB"):
            load_settings({"SLUICE_READY_MIN_FREE_MB": bad})
