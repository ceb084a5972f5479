"""Ingest benchmark: events/s and latency of the Tracking API, next to a no-op on the same stack.

Starts `sluice serve` on a fresh data dir, drives it with wrk (64 keep-alive connections on
loopback, unique messageIds so deduplication does real work), samples the RSS of every server
process, and checks that the log holds every acknowledged event afterwards.

    uv run python bench/ingest.py [--duration 10] [--connections 64] [--workers N]
    uv run python bench/ingest.py --scrape-every 1 [--rounds 3]

`--scrape-every S` measures what metrics cost: batch runs with and without a Prometheus-like
scraper reading `/metrics` every S seconds, alternating (A B A B ...) in the same server.

Needs `wrk` (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

WRITE_KEY = "bench_write_key_0123456789"
WORKER_PROCESSES = ("sluice-worker", "sluice-delivery", "sluice-batch")

# A 656-byte track event like analytics.js sends (the payload of reference/perf-baseline.md).
EVENT_TEMPLATE = (
    '{"type":"track","event":"Order Completed","userId":"user-12345","anonymousId":'
    '"7c1e4d6a-5b1f-4b2e-9f2a-3c8d9e0f1a2b","messageId":"%s","timestamp":'
    '"2026-11-28T10:00:00.123Z","properties":{"order_id":"50314b8e9bcf000000000000",'
    '"total":27.5,"revenue":25,"shipping":3,"tax":2,"discount":2.5,"coupon":"hasbros",'
    '"currency":"USD","products":[{"product_id":"507f1f77bcf86cd799439011","sku":"45790-32",'
    '"name":"Monopoly: 3rd Edition","price":19,"quantity":1,"category":"Games"}]},'
    '"context":{"library":{"name":"analytics.js","version":"next-1.70.0"},"locale":"en-US",'
    '"page":{"path":"/checkout","referrer":"","search":"","title":"Checkout",'
    '"url":"https://shop.example.com/checkout"},"userAgent":"Mozilla/5.0 (X11; Linux x86_64)'
    ' AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",'
    '"timezone":"Europe/Amsterdam"}}'
)

LUA_COMMON = """
local counter = 0
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  local nonce = tostring(math.random(1, 1e9))
  prefix = "b" .. tostring(tid) .. "-" .. tostring(os.time()) .. "-" .. nonce .. "-"
end
local template = [==[%(template)s]==]
"""

LUA_SINGLE = (
    LUA_COMMON
    + """
request = function()
  counter = counter + 1
  return wrk.format("POST", "%(path)s", nil, string.format(template, prefix .. counter))
end
"""
)

LUA_BATCH = (
    LUA_COMMON
    + """
request = function()
  local items = {}
  for i = 1, %(size)d do
    counter = counter + 1
    items[i] = string.format(template, prefix .. counter)
  end
  local body = '{"batch":[' .. table.concat(items, ",") .. '],"sentAt":"2026-11-28T10:00:01.000Z"}'
  return wrk.format("POST", "/v1/batch", nil, body)
end
"""
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_of_group(pgid: int) -> dict[int, int]:
    """RSS in bytes of every collector process in the server's process group."""
    result = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            if (entry / "comm").read_text().strip() in WORKER_PROCESSES:
                continue  # the worker (destinations, archive, warehouse): not a collector
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    result[int(entry.name)] = int(line.split()[1]) * 1024
        except (OSError, ProcessLookupError):
            continue
    return result


class Server:
    def __init__(self, workers: int | None) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="sluice-bench-"))
        self.port = free_port()
        self.workers = workers
        self.peak_rss: dict[int, int] = {}
        self._sampling = False
        self.workspace = f"sources:\n  - id: bench\n    write_keys: [{WRITE_KEY}]\n"

    def start(self) -> None:
        workspace = self.data_dir / "workspace.yaml"
        workspace.write_text(self.workspace)
        env = {**os.environ, "SLUICE_DATA_DIR": str(self.data_dir / "data")}
        subprocess.run(
            [sys.executable, "-m", "sluice", "apply", str(workspace)],
            env=env,
            check=True,
            capture_output=True,
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sluice",
                "serve",
                "--port",
                str(self.port),
                *(["--workers", str(self.workers)] if self.workers else []),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def sample_rss(self) -> None:
        self._sampling = True

        def loop() -> None:
            while self._sampling:
                for pid, rss in rss_of_group(self.proc.pid).items():
                    self.peak_rss[pid] = max(self.peak_rss.get(pid, 0), rss)
                time.sleep(0.2)

        threading.Thread(target=loop, daemon=True).start()

    def stop(self) -> None:
        self._sampling = False
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)

    def stored_events(self) -> int:
        import sqlite3

        db = sqlite3.connect(self.data_dir / "data" / "log.db")
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


def run_wrk(
    url: str, script: str, seconds: int, connections: int, threads: int
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    auth = (
        "Authorization: Basic "
        + __import__("base64").b64encode((WRITE_KEY + ":").encode()).decode()
    )
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-H",
            auth,
            "-H",
            "Content-Type: application/json",
            "-s",
            f.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(f.name)

    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    requests = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": requests,
        "requests": total,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else "",  # type: ignore[dict-item]
    }


class Scraper:
    """GET /metrics every `interval` seconds while running; keeps each scrape's duration."""

    def __init__(self, port: int, interval: float) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.interval = interval
        self.durations_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            with urllib.request.urlopen(self.url, timeout=10) as res:
                res.read()
            self.durations_ms.append((time.perf_counter() - started) * 1000)
            self._stop.wait(self.interval)


def scrape_cost(server: Server, args: argparse.Namespace, script: str) -> None:
    """Batch throughput with and without scraping, alternating, in one server."""
    runs: dict[str, list[float]] = {"without": [], "with": []}
    scrapes: list[float] = []
    url = f"http://127.0.0.1:{server.port}/"
    for n in range(args.rounds):
        # A B B A ...: the server slows as its log grows, which must not favour either side.
        for mode in ("without", "with") if n % 2 == 0 else ("with", "without"):
            if mode == "with":
                with Scraper(server.port, args.scrape_every) as scraper:
                    r = run_wrk(url, script, args.duration, args.connections, args.threads)
                scrapes.extend(scraper.durations_ms)
            else:
                r = run_wrk(url, script, args.duration, args.connections, args.threads)
            runs[mode].append(r["rps"] * args.batch_size)
            print(f"  {mode:<8} scraping: {r['rps'] * args.batch_size:>10,.0f} events/s")
    without, with_ = sum(runs["without"]), sum(runs["with"])
    scrapes.sort()
    print(
        f"batch{args.batch_size}, {args.rounds} rounds of {args.duration}s each: scraping every"
        f" {args.scrape_every:g}s costs {1 - with_ / without:.1%} of ingest throughput"
        f" ({with_ / args.rounds:,.0f} vs {without / args.rounds:,.0f} events/s);"
        f" {len(scrapes)} scrapes, p50 {scrapes[len(scrapes) // 2]:.1f} ms,"
        f" max {scrapes[-1]:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--workers", type=int, default=None, help="server HTTP workers (default: the server's)"
    )
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--scrape-every", type=float, default=None, help="measure the cost of scraping /metrics"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternations (--scrape-every)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/ingest.py needs wrk: apt-get install wrk")

    template = EVENT_TEMPLATE.replace("%", "%%").replace("%%s", "%s")
    scenarios = {
        "noop": (LUA_SINGLE % {"template": template, "path": "/healthz"}, 1),
        "track": (LUA_SINGLE % {"template": template, "path": "/v1/track"}, 1),
        f"batch{args.batch_size}": (
            LUA_BATCH % {"template": template, "size": args.batch_size},
            args.batch_size,
        ),
    }
    results = {}
    server = Server(args.workers)
    server.start()
    if args.scrape_every is not None:
        try:
            scrape_cost(server, args, scenarios[f"batch{args.batch_size}"][0])
        finally:
            server.stop()
        return
    server.sample_rss()
    try:
        for name, (script, per_request) in scenarios.items():
            before = server.stored_events()
            r = run_wrk(
                f"http://127.0.0.1:{server.port}/",
                script,
                args.duration,
                args.connections,
                args.threads,
            )
            time.sleep(0.5)
            stored = server.stored_events() - before
            r["events_per_s"] = r["rps"] * per_request
            r["acknowledged_events"] = (r["requests"] - r["non2xx"]) * per_request
            r["stored_events"] = stored
            results[name] = r
    finally:
        server.stop()
    peak = max(server.peak_rss.values(), default=0)
    results["memory"] = {
        "peak_rss_mb_per_process": round(peak / 2**20, 1),
        "processes": len(server.peak_rss),
    }
    results["track"]["ratio_to_noop"] = results["track"]["rps"] / results["noop"]["rps"]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"sluice ingest benchmark: {args.connections} connections, {args.duration}s each, "
        f"{args.workers or 'default'} HTTP worker(s), wrk {args.threads} threads, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"{'scenario':<10} {'req/s':>10} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'non-2xx':>8} {'stored':>10}"
    )
    for name, r in results.items():
        if name == "memory":
            continue
        stored = "-" if name == "noop" else f"{r['stored_events']:,}"
        print(
            f"{name:<10} {r['rps']:>10,.0f} {r['events_per_s']:>10,.0f} {r['p50_ms']:>8.2f} "
            f"{r['p99_ms']:>8.2f} {r['non2xx']:>8} {stored:>10}"
        )
    print(f"single /v1/track vs no-op: {results['track']['ratio_to_noop']:.0%}")
    print(
        f"peak RSS per collector process: {results['memory']['peak_rss_mb_per_process']} MB "
        f"({results['memory']['processes']} processes)"
    )
    for name, r in results.items():
        if name not in ("memory", "noop") and r["stored_events"] < r["acknowledged_events"]:
            print(
                f"WARNING: {name}: {r['acknowledged_events']} acknowledged, "
                f"{r['stored_events']} stored"
            )


if __name__ == "__main__":
    main()
