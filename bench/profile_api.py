"""Profile API latency: p50/p99 of `/traits` and `/events` for random profiles, over HTTP.

Builds a data dir whose log holds `--profiles` people (a page by anonymous id, an identify
joining it to a user id and an email, then `--tracks` track calls), resolves them with the
identity consumer, starts `sluice serve` on it and times `--requests` GETs of each route for
random user ids, one keep-alive connection, one request at a time. Run by hand:

    uv run python bench/profile_api.py --profiles 100000 --requests 2000
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from sluice.identity.consumer import IdentityConsumer
from sluice.identity.rules import rules_from
from sluice.identity.tables import SqliteIdentityDb
from sluice.store.base import AppendBatch, NewEvent
from sluice.store.sqlite import SqliteStore

SLUICE = [sys.executable, "-m", "sluice"]
SPACE = "bench"


def sluice(data: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    done = subprocess.run(
        [*SLUICE, *args, "--data-dir", str(data)], env=env, capture_output=True, text=True
    )
    done.check_returncode()
    return done.stdout


def fill(data: Path, profiles: int, tracks: int) -> int:
    store = SqliteStore(data / "log.db")
    now = int(time.time() * 1000) - 3_600_000
    batch: list[NewEvent] = []
    n = 0

    def add(body: dict[str, object]) -> None:
        nonlocal n
        n += 1
        body["messageId"] = f"m{n}"
        body["timestamp"] = "2026-12-01T00:00:00.000Z"
        event = body.get("event")
        batch.append(
            NewEvent("web", f"m{n}", str(body["type"]), event if isinstance(event, str) else None,
                     now + n, msgspec.json.encode(body))
        )  # fmt: skip
        if len(batch) == 5000:
            store.append(AppendBatch(events=batch))
            batch.clear()

    for i in range(profiles):
        add({"type": "page", "anonymousId": f"a{i}", "name": "Home"})
        add({"type": "identify", "anonymousId": f"a{i}", "userId": f"u{i}",
             "traits": {"email": f"p{i}@example.com", "plan": "free", "n": i}})  # fmt: skip
        for t in range(tracks):
            add({"type": "track", "userId": f"u{i}", "event": f"Viewed {t % 5}",
                 "properties": {"t": t}})  # fmt: skip
    if batch:
        store.append(AppendBatch(events=batch))
    store.close()
    return n


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--tracks", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="sluice-papi-")) / "data"
    ws = data.parent / "ws.yaml"
    ws.write_text(f"workspace: {SPACE}\nsources: [{{id: web}}]\n")
    sluice(data, "apply", str(ws))
    started = time.perf_counter()
    events = fill(data, args.profiles, args.tracks)
    consumer = IdentityConsumer(
        SqliteStore(data / "log.db"),
        SqliteIdentityDb(data / "identity.db"),
        SPACE,
        rules_from(None),
    )
    consumer.prepare()
    consumer.run_until_caught_up()
    print(
        f"built {args.profiles} profiles, {events} events in {time.perf_counter() - started:.0f} s"
    )
    token = sluice(data, "token", "create", "--scope", "profile").split()[0]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    server = subprocess.Popen(
        [*SLUICE, "serve", "--data-dir", str(data), "--port", str(port)],
        env={**env, "SLUICE_WORKERS": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        deadline = time.monotonic() + 30
        while True:
            try:
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                conn.close()
                time.sleep(0.2)
        auth = {"Authorization": "Basic " + base64.b64encode(f"{token}:".encode()).decode()}
        rng = random.Random(7)
        for route in ("traits", "events"):
            times: list[float] = []
            for i in range(args.requests + 50):
                user = rng.randrange(args.profiles)
                path = f"/v1/spaces/{SPACE}/collections/users/profiles/user_id:u{user}/{route}"
                began = time.perf_counter()
                conn.request("GET", path, headers=auth)
                res = conn.getresponse()
                res.read()
                if res.status != 200:
                    raise SystemExit(f"{path}: {res.status}")
                if i >= 50:  # the first requests warm caches and open the identity tables
                    times.append((time.perf_counter() - began) * 1000)
            print(
                f"/{route}: {len(times)} requests, p50 {percentile(times, 50):.2f} ms,"
                f" p99 {percentile(times, 99):.2f} ms, max {max(times):.2f} ms"
            )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
