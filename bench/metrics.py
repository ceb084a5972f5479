"""Metrics benchmark: how long a `/metrics` scrape takes on a node with 50 destinations and 20
sources, and what the per-request instruments cost next to a request.

Starts `sluice serve` on a fresh data dir with 20 sources and 50 webhook destinations (a local
HTTP server answering 200), sends each source some batches so every counter has values, waits
for delivery, then scrapes `/metrics` one after the other and prints p50/p99/max.

    uv run python bench/metrics.py [--scrapes 200] [--events-per-source 2000]

The ingest cost of scraping is measured by `bench/ingest.py --scrape-every 1`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SOURCES, DESTINATIONS = 20, 50


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


class _Hooks(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # connections the server drops at the end


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def workspace(hook_url: str) -> str:
    lines = ["sources:"]
    for n in range(SOURCES):
        lines += [f"  - id: source{n}", f"    write_keys: [bench_key_{n:04d}_abcdef]"]
    lines.append("destinations:")
    for n in range(DESTINATIONS):
        sources = ", ".join(f"source{k}" for k in range(n % SOURCES, SOURCES, 7))
        lines += [
            f"  - id: dest{n}",
            "    type: webhook",
            f"    sources: [{sources}]",
            f"    settings: {{urls: ['{hook_url}/d{n}']}}",
        ]
    return "\n".join(lines) + "\n"


def post(port: int, key: str, body: bytes) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/batch",
        data=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as res:
        return int(res.status)


def scrape(port: int) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as res:
        size = len(res.read())
    return (time.perf_counter() - started) * 1000, size


def instrument_cost(samples: int = 200_000) -> float:
    """µs per ingest request of the per-process instruments, in multiprocess mode."""
    code = (
        "import time\n"
        "from prometheus_client import CollectorRegistry\n"
        "from sluice.metrics.process import ProcessMetrics\n"
        "m = ProcessMetrics(None)\n"
        "h, r = m.ingest_seconds.labels('batch'), m.responses\n"
        f"n = {samples}\n"
        "t = time.perf_counter()\n"
        "for _ in range(n):\n"
        "    s = time.perf_counter()\n"
        "    h.observe(time.perf_counter() - s)\n"
        "    r.labels(200).inc()\n"
        "print((time.perf_counter() - t) / n * 1e6)\n"
    )
    with tempfile.TemporaryDirectory() as shared:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": shared}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True)  # fmt: skip
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--events-per-source", type=int, default=2000)
    args = parser.parse_args()

    hooks = _Hooks(("127.0.0.1", 0), _Ok)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    root = Path(tempfile.mkdtemp(prefix="sluice-bench-metrics-"))
    (root / "workspace.yaml").write_text(workspace(f"http://127.0.0.1:{hooks.server_port}"))
    env = {**os.environ, "SLUICE_DATA_DIR": str(root / "data"), "SLUICE_WAREHOUSE_INTERVAL_S": "5"}
    subprocess.run([sys.executable, "-m", "sluice", "apply", str(root / "workspace.yaml")],
                   env=env, check=True, capture_output=True)  # fmt: skip
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sluice", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                scrape(port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        time.sleep(3)  # the worker takes its 50 destinations (a new one starts at the log's end)
        for n in range(SOURCES):
            for start in range(0, args.events_per_source, 100):
                batch = [
                    {"type": "track", "event": f"Event {k % 30}", "userId": f"u{k}"}
                    for k in range(start, min(start + 100, args.events_per_source))
                ]
                post(port, f"bench_key_{n:04d}_abcdef", json.dumps({"batch": batch}).encode())
        time.sleep(10)  # deliveries and a warehouse load
        scrape(port)
        durations, size = [], 0
        for _ in range(args.scrapes):
            ms, size = scrape(port)
            durations.append(ms)
        durations.sort()
        per_request = instrument_cost()
        print(
            f"/metrics with {SOURCES} sources, {DESTINATIONS} destinations,"
            f" {SOURCES * args.events_per_source:,} events, {os.cpu_count()} CPUs:"
            f" {args.scrapes} scrapes p50 {durations[len(durations) // 2]:.1f} ms,"
            f" p99 {durations[int(len(durations) * 0.99) - 1]:.1f} ms,"
            f" max {durations[-1]:.1f} ms, {size / 1024:.0f} KiB"
        )
        print(f"per-request instruments (histogram + counter, multiprocess): {per_request:.2f} µs")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        hooks.shutdown()


if __name__ == "__main__":
    main()
