"""Fuzz the Tracking API by hand: many hostile batches, then check nothing was lost or stuck.

    uv run python bench/fuzz.py [--requests 100000] [--postgres URL] [--seed 1]

Starts `sluice serve` on a fresh data dir (SQLite, or PostgreSQL at `--postgres`, a database
it may fill) with a webhook destination pointed at a local receiver and the DuckDB warehouse
loading every second, then posts `--requests` batches from tests/ingest_fuzz_kit.py (valid
items mixed with broken ones; 5 % of bodies mangled whole), 32 at a time. Prints the answers
by status, whether any valid item of an acknowledged batch is missing from the log, and whether
the destination and the warehouse caught up with the log afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from delivery import Receiver, free_port, wait_http
from ingest_fuzz_kit import request_body

WRITE_KEY = "fuzz_write_key_0123456789"


async def fire(port: int, requests: int, seed: int) -> tuple[collections.Counter[int], list[str]]:
    import aiohttp

    auth = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
    statuses: collections.Counter[int] = collections.Counter()
    good: list[str] = []
    next_index = iter(range(requests))

    async def worker(session: aiohttp.ClientSession) -> None:
        for index in next_index:
            body, ids = request_body(random.Random(seed * 1_000_003 + index))
            async with session.post(f"http://127.0.0.1:{port}/v1/batch", data=body,
                                    headers=auth) as answer:  # fmt: skip
                await answer.read()
                statuses[answer.status] += 1
                if answer.status == 200:
                    good.extend(ids)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(32)))
    return statuses, good


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--postgres", default=None)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sluice-fuzz-"))
    env = {**os.environ, "SLUICE_DATA_DIR": str(root / "data"), "SLUICE_WAREHOUSE_INTERVAL_S": "1"}
    if args.postgres:
        env["SLUICE_DATABASE_URL"] = args.postgres
    receiver = Receiver()
    workspace = {
        "sources": [{"id": "web", "write_keys": [WRITE_KEY]}],
        "destinations": [{"id": "hook", "type": "webhook", "sources": ["web"],
                          "settings": {"urls": [f"{receiver.url}/hook"]}}],
        "warehouses": [{"id": "main", "type": "duckdb",
                        "settings": {"path": str(root / "warehouse.duckdb")}}],
    }  # fmt: skip
    (root / "workspace.yaml").write_text(json.dumps(workspace))
    subprocess.run([sys.executable, "-m", "sluice", "apply", str(root / "workspace.yaml")],
                   env=env, check=True, capture_output=True)  # fmt: skip
    port = free_port()
    with open(root / "server.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "sluice", "serve", "--port", str(port)], env=env,
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        )  # fmt: skip
    result: dict[str, Any] = {"backend": "postgres" if args.postgres else "sqlite"}
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        began = time.monotonic()
        statuses, good = asyncio.run(fire(port, args.requests, args.seed))
        result["seconds"] = round(time.monotonic() - began, 1)
        result["answers_by_status"] = dict(sorted(statuses.items()))
        result["5xx"] = sum(n for s, n in statuses.items() if s >= 500)
        from sluice.config import Settings
        from sluice.store.factory import open_store

        store = open_store(Settings(data_dir=root / "data", database_url=args.postgres))
        try:
            end = store.last_seq()
            stored = {e.message_id for e in store.read_after(0, 10**9)}
            result["valid_items_acknowledged"] = len(good)
            result["valid_items_missing"] = len(set(good) - stored)
            result["events_in_log"] = end
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                if store.cursors().get("destination:hook", 0) >= end:
                    break
                time.sleep(1)
            result["destination_caught_up_after_s"] = round(time.monotonic() - began, 1)
            result["destination_caught_up"] = store.cursors().get("destination:hook", 0) >= end
        finally:
            store.close()
        result["server_alive"] = server.poll() is None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
            result["healthz"] = answer.status
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        receiver.stop()
    # The warehouse: whatever the server's loads left, one more load takes (never stuck).
    loaded = subprocess.run([sys.executable, "-m", "sluice", "load"], env=env,
                            capture_output=True)  # fmt: skip
    result["final_load_exit_status"] = loaded.returncode
    status = [sys.executable, "-m", "sluice", "status", "--json"]
    report = json.loads(subprocess.run(status, env=env, capture_output=True, check=True).stdout)
    warehouse = report["warehouses"].get("main", {})
    result["warehouse_caught_up"] = (warehouse.get("position") or 0) >= result["events_in_log"]
    result["warehouse_discards"] = warehouse.get("discards")
    result["parked"] = report["destinations"]["hook"]["parked"]
    result["rejected_by_reason"] = {
        k: v for k, v in report["sources"]["web"].items() if k.startswith(("rejected:", "request_"))
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
