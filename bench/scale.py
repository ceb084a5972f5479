"""Scale-out benchmark: one node versus two on PostgreSQL, and SQLite versus PostgreSQL.

    uv run python bench/scale.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
                                 [--duration 10] [--events 100000]

Every node is a real `sluice serve` process (with --role), each PostgreSQL run on a fresh
database. Figures:

1. ingest events/s (wrk, /v1/batch of 100, 64 connections per node): one collector node on SQLite,
   one on PostgreSQL, two on PostgreSQL (one wrk per node, at once; events/s summed);
2. delivery events/s: a log of `--events` events drained to a local receiver (Webhooks Actions,
   1,000 per request): one worker on SQLite and on PostgreSQL, then the destination split in two
   partitions, run by one worker and by two;
3. takeover: two workers deliver a steady 500 events/s; the one running the destination is killed
   with SIGKILL; seconds until the receiver gets events again (default lease: 30 s).

This machine has 2 cores: two nodes share them with PostgreSQL and the load generator, so
"two nodes" shows that the work spreads and stays correct, not a speed-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from delivery import Receiver, batched, ingest, wait_http
from ingest import EVENT_TEMPLATE, LUA_BATCH, WRITE_KEY, free_port, run_wrk
from sluice.config import Settings
from sluice.store.base import Store
from sluice.store.factory import open_store

BATCH = 100


class Cluster:
    """Nodes sharing one store: PostgreSQL (a fresh database) or SQLite (one data dir)."""

    def __init__(self, admin_url: str | None, env: dict[str, str] | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sluice-scale-"))
        self.admin_url = admin_url
        self.url: str | None = None
        if admin_url:
            import psycopg

            self.db = f"sluice_scale_{os.getpid()}_{time.time_ns() % 10**9}"
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.db}"')
            self.url = admin_url.rsplit("/", 1)[0] + "/" + self.db
        self.env = {**os.environ, "SLUICE_DATA_DIR": str(self.root / "data"), **(env or {})}
        self.env.pop("SLUICE_DATABASE_URL", None)
        if self.url:
            self.env["SLUICE_DATABASE_URL"] = self.url
        self.nodes: list[tuple[subprocess.Popen[bytes], int | None]] = []
        self.apply([])

    def store(self) -> Store:
        return open_store(Settings(data_dir=self.root / "data", database_url=self.url))

    def apply(self, destinations: list[dict[str, Any]]) -> None:
        document = {"sources": [{"id": "bench", "write_keys": [WRITE_KEY]}],
                    "destinations": destinations}  # fmt: skip
        path = self.root / "workspace.yaml"
        path.write_text(json.dumps(document))  # JSON is YAML
        subprocess.run([sys.executable, "-m", "sluice", "apply", str(path)], env=self.env,
                       check=True, capture_output=True)  # fmt: skip

    def start(self, role: str) -> subprocess.Popen[bytes]:
        port = free_port() if role != "worker" else None
        command = [sys.executable, "-m", "sluice", "serve", "--role", role]
        if port:
            command += ["--port", str(port)]
        proc = subprocess.Popen(command, env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        self.nodes.append((proc, port))
        if port:
            wait_http(f"http://127.0.0.1:{port}/healthz")
        return proc

    def ports(self) -> list[int]:
        return [port for _, port in self.nodes if port]

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        for proc, _ in self.nodes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, _ in self.nodes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if self.admin_url:
            import psycopg

            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
        shutil.rmtree(self.root, ignore_errors=True)


def ingest_rate(cluster: Cluster, seconds: int) -> float:
    """Events/s acknowledged by all collector nodes, each driven by its own wrk at once."""
    template = EVENT_TEMPLATE.replace("%", "%%").replace("%%s", "%s")
    script = LUA_BATCH % {"template": template, "size": BATCH}
    results: list[dict[str, float]] = []
    # The same load-generator threads in all: two for one node, one for each of two.
    threads = max(1, 2 // len(cluster.ports()))

    async def all_nodes() -> None:
        async def one(port: int) -> None:
            result = await asyncio.to_thread(
                run_wrk, f"http://127.0.0.1:{port}/", script, seconds, 64, threads
            )
            results.append(result)

        await asyncio.gather(*(one(port) for port in cluster.ports()))

    asyncio.run(all_nodes())
    return sum((r["requests"] - r["non2xx"]) * BATCH for r in results) / seconds


def ingest_figure(admin_url: str | None, nodes: int, seconds: int) -> float:
    cluster = Cluster(admin_url, {"SLUICE_WAREHOUSE_INTERVAL_S": "0"})
    try:
        for _ in range(nodes):
            cluster.start("collector")
        return ingest_rate(cluster, seconds)
    finally:
        cluster.stop()


def set_cursor(cluster: Cluster, dest_id: str, seq: int) -> None:
    store = cluster.store()
    try:
        store.commit_cursor(f"destination:{dest_id}", seq)
    finally:
        store.close()


def delivery_figure(admin_url: str | None, workers: int, events: int, partitions: int) -> float:
    """Events/s `workers` worker nodes drain a log of `events` events at."""
    env = {"SLUICE_WAREHOUSE_INTERVAL_S": "0", "SLUICE_LEASE_S": "6"}
    cluster = Cluster(admin_url, env)
    receiver = Receiver()
    try:
        cluster.start("collector")
        asyncio.run(ingest(cluster.ports()[0], events))
        dest = {**batched(receiver), "sources": ["bench"], "delivery": {"partitions": partitions}}
        cluster.apply([{**dest, "enabled": False}])
        set_cursor(cluster, dest["id"], 0)
        for _ in range(workers):
            cluster.start("worker")
        time.sleep(1.0)  # workers up and sharing units
        cluster.apply([dest])
        # The clock starts at the first delivered request, not at `apply` (a process start and
        # the workers' one-second config poll would be counted otherwise).
        deadline = time.monotonic() + 600
        while (first := receiver.stats()["events"]) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        began = time.monotonic()
        while receiver.stats()["events"] < events:
            if time.monotonic() > deadline:
                raise TimeoutError("delivery did not finish")
            time.sleep(0.05)
        return (events - first) / (time.monotonic() - began)
    finally:
        receiver.stop()
        cluster.stop()


def takeover_figure(admin_url: str) -> float:
    """Seconds from SIGKILL of the worker delivering a destination until delivery resumes."""
    cluster = Cluster(admin_url, {"SLUICE_WAREHOUSE_INTERVAL_S": "0"})
    receiver = Receiver()
    try:
        cluster.start("collector")
        dest = {**batched(receiver), "sources": ["bench"]}
        dest["mappings"][0]["mapping"]["batch_size"] = 10
        cluster.apply([dest])
        workers = [cluster.start("worker"), cluster.start("worker")]
        port = cluster.ports()[0]
        store = cluster.store()

        def holder_pid() -> int | None:
            for lease in store.leases():
                if lease.name == f"destination:{dest['id']}":
                    return int(lease.holder.split(":")[1])
            return None

        deadline = time.monotonic() + 60
        while holder_pid() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        victim = next(w for w in workers if w.pid == holder_pid())
        # A steady 500 events/s for 75 s, in the background of this thread's checks.
        steady = threading.Thread(target=lambda: asyncio.run(
            ingest(port, 500 * 75, per_request=10, concurrency=2, rate=500)))  # fmt: skip
        steady.start()
        time.sleep(3)
        cluster.kill(victim)
        killed = time.monotonic()
        count = receiver.stats()["events"]
        # Events in flight to the receiver when the kill came may still land: wait for them.
        time.sleep(0.5)
        count = receiver.stats()["events"]
        while receiver.stats()["events"] == count:
            if time.monotonic() - killed > 120:
                raise TimeoutError("delivery did not resume")
            time.sleep(0.1)
        resumed = time.monotonic() - killed
        steady.join()
        store.close()
        return resumed
    finally:
        receiver.stop()
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--skip-takeover", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/scale.py needs wrk: apt-get install wrk")
    pg = args.postgres
    results: dict[str, Any] = {}
    if not args.skip_ingest:
        results["ingest_sqlite_1_node"] = ingest_figure(None, 1, args.duration)
        results["ingest_postgres_1_node"] = ingest_figure(pg, 1, args.duration)
        results["ingest_postgres_2_nodes"] = ingest_figure(pg, 2, args.duration)
        results["postgres_vs_sqlite_1_node"] = (
            results["ingest_postgres_1_node"] / results["ingest_sqlite_1_node"]
        )
    results["delivery_sqlite_1_worker"] = delivery_figure(None, 1, args.events, 1)
    results["delivery_postgres_1_worker"] = delivery_figure(pg, 1, args.events, 1)
    results["delivery_postgres_1_worker_2_partitions"] = delivery_figure(pg, 1, args.events, 2)
    results["delivery_postgres_2_workers_2_partitions"] = delivery_figure(pg, 2, args.events, 2)
    if not args.skip_takeover:
        results["takeover_resumed_after_s"] = takeover_figure(pg)
    print(f"sluice scale benchmark ({os.cpu_count()} CPUs; every node shares them)")
    for name, value in results.items():
        shown = f"{value:.0%}" if name.endswith("sqlite_1_node") and "vs" in name else (
            f"{value:.1f}" if name.startswith("takeover") else f"{value:,.0f}")  # fmt: skip
        print(f"  {name:<42} {shown}")


if __name__ == "__main__":
    main()
