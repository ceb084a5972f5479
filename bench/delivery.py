"""Delivery benchmark: how fast events leave Sluice for a local webhook receiver.

    uv run python bench/delivery.py [--events 200000] [--steady-seconds 15]

Starts `sluice serve` on a fresh data dir and a webhook receiver (aiohttp, its own process), then:

1. batched: Webhooks (Actions) with batching (1,000 events per request) draining a log of
   `--events` events that were ingested beforehand (ingest is not timed here: bench/ingest.py);
2. per-event: the classic Webhooks destination, one request per event, the same way;
3. end to end: ingest (batches of 100 over HTTP) and batched delivery running at once;
4. latency: a steady 1,000 events/s into /v1/batch (10 events every 10 ms); p50/p99 of the time
   from `receivedAt` to the receiver reading the event;
5. isolation: per-event delivery to a healthy receiver, alone and next to a destination whose
   receiver answers 500 to everything;
6. poison: 1% of events answer 500 forever (every 100th); the others' drain rate next to the
   same drain with no failures, and their latency at a steady 1,000 events/s;
7. outage: the receiver answers 500 to everything for `--outage-seconds` while events arrive at
   100/s, then recovers: events lost, the retry set's size during the outage, and the drain rate
   after recovery next to the no-outage one.

`--only poison,outage` runs some scenarios (names: batched, per_event, end_to_end, steady,
isolation, poison, outage).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

WRITE_KEY = "bench_write_key_0123456789"
EVENT = (
    '{"type":"track","event":"Order Completed","userId":"user-%(n)d","messageId":"%(id)s",'
    '"timestamp":"2026-11-28T10:00:00.123Z","properties":{"order_id":"o-%(n)d","total":27.5,'
    '"currency":"USD","products":[{"product_id":"p-1","price":19,"quantity":1}]},'
    '"context":{"library":{"name":"analytics.js","version":"next-1.70.0"},"locale":"en-US"}}'
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the receiver ---------------------------------------------------------------------------
def receiver_main(port: int, fail: bool) -> None:
    from aiohttp import web

    stats: dict[str, Any] = {"events": 0, "requests": 0, "latencies": [], "record": False,
                             "down": fail, "poison_every": 0, "ids": None,
                             "inspect": False}  # fmt: skip
    ids: set[str] = set()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        stats["requests"] += 1
        if stats["down"]:
            return web.Response(status=500, text="down")
        data = None
        # `inspect`: read every event (as poison and outage runs must), so that a run compared
        # with one of those costs the receiver the same.
        if stats["inspect"] or stats["poison_every"] or stats["ids"] is not None:
            data = json.loads(body)
            events = data if isinstance(data, list) else [data]
            if stats["poison_every"] and any(
                int(e["messageId"].rsplit("-", 1)[1]) % stats["poison_every"] == 0 for e in events
            ):
                return web.Response(status=500, text="poison")
            if stats["ids"] is not None:
                ids.update(e["messageId"] for e in events)
                stats["ids"] = len(ids)
        stats["events"] += body.count(b'"messageId"')
        if stats["record"]:
            now = time.time()
            data = json.loads(body) if data is None else data
            for event in data if isinstance(data, list) else [data]:
                received = event["receivedAt"]
                moment = time.mktime(time.strptime(received[:19], "%Y-%m-%dT%H:%M:%S"))
                moment += int(received[20:23]) / 1000 - time.timezone
                stats["latencies"].append(now - moment)
        return web.Response(text="ok")

    async def get_stats(_: web.Request) -> web.Response:
        return web.json_response(stats)

    async def control(request: web.Request) -> web.Response:
        stats.update(await request.json())
        return web.json_response(stats)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes([web.post("/hook", hook), web.get("/stats", get_stats)])
    app.add_routes([web.post("/control", control)])
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


class Receiver:
    def __init__(self, fail: bool = False) -> None:
        self.port = free_port()
        self.process = multiprocessing.get_context("fork").Process(
            target=receiver_main, args=(self.port, fail), daemon=True
        )
        self.process.start()
        wait_http(f"{self.url}/stats")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/stats", timeout=10) as answer:
            result: dict[str, Any] = json.load(answer)
            return result

    def control(self, **values: Any) -> None:
        request = urllib.request.Request(
            f"{self.url}/control", data=json.dumps(values).encode(), method="POST"
        )
        urllib.request.urlopen(request, timeout=10).close()

    def stop(self) -> None:
        self.process.terminate()


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# --- sluice -----------------------------------------------------------------------------------
class Sluice:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sluice-delivery-bench-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.env = {**os.environ, "SLUICE_DATA_DIR": str(self.data)}
        self.apply([])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sluice", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_http(f"http://127.0.0.1:{self.port}/healthz")

    def apply(self, destinations: list[dict[str, Any]]) -> None:
        document = {"sources": [{"id": "web", "write_keys": [WRITE_KEY]}], "destinations": []}
        document["destinations"] = destinations
        path = self.root / "workspace.yaml"
        path.write_text(json.dumps(document))  # JSON is YAML
        subprocess.run([sys.executable, "-m", "sluice", "apply", str(path)], env=self.env,
                       check=True, capture_output=True)  # fmt: skip

    def start_destinations(self, destinations: list[dict[str, Any]], from_seq: int) -> None:
        """Connect destinations so that they deliver everything after log position `from_seq`."""
        self.apply([{**d, "enabled": False} for d in destinations])
        from sluice.store.sqlite import SqliteStore

        store = SqliteStore(self.data / "log.db")
        for d in destinations:
            store.commit_cursor(f"destination:{d['id']}", from_seq)
        store.close()
        self.apply(destinations)

    def last_seq(self) -> int:
        from sluice.store.sqlite import SqliteStore

        store = SqliteStore(self.data / "log.db")
        try:
            return store.last_seq()
        finally:
            store.close()

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)


async def ingest(port: int, events: int, per_request: int = 100, concurrency: int = 8,
                 rate: float | None = None, start: int = 0) -> float:  # fmt: skip
    """POST `events` events in batches; at `rate` events/s if given. Returns seconds taken."""
    import aiohttp

    auth = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
    prefix = f"b{time.time_ns()}-"
    queue: asyncio.Queue[int] = asyncio.Queue()
    for first in range(start, start + events, per_request):
        queue.put_nowait(first)
    began = time.monotonic()

    async def sender(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            first = queue.get_nowait()
            if rate:
                due = began + (first - start) / rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            items = ",".join(EVENT % {"n": n, "id": f"{prefix}{n}"}
                             for n in range(first, first + per_request))  # fmt: skip
            body = '{"batch":[' + items + "]}"
            url = f"http://127.0.0.1:{port}/v1/batch"
            async with session.post(url, data=body, headers=auth) as r:
                assert r.status == 200, await r.text()

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(sender(session) for _ in range(concurrency)))
    return time.monotonic() - began


def wait_for_events(receiver: Receiver, count: int, timeout: float = 600) -> float:
    began = time.monotonic()
    while receiver.stats()["events"] < count:
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"{receiver.stats()['events']} of {count} events arrived")
        time.sleep(0.05)
    return time.monotonic() - began


def batched(receiver: Receiver, dest_id: str = "batched") -> dict[str, Any]:
    return {
        "id": dest_id,
        "type": "webhook-actions",
        "sources": ["web"],
        "mappings": [
            {
                "action": "send",
                "trigger": 'type = "track"',
                "mapping": {
                    "url": f"{receiver.url}/hook",
                    "method": "POST",
                    "data": {"@path": "$"},
                    "enable_batching": True,
                    "batch_size": 1000,
                },
            }
        ],
    }


def per_event(receiver: Receiver, dest_id: str) -> dict[str, Any]:
    return {
        "id": dest_id,
        "type": "webhook",
        "sources": ["web"],
        "settings": {"urls": [f"{receiver.url}/hook"]},
        "delivery": {"concurrency": 64},
    }


def drain(sluice: Sluice, make: Any, events: int, **receiver_setup: Any) -> float:
    """Events/s a destination drains a log of `events` pre-ingested events at. With
    `poison_every`, every such event fails forever and the others' rate is returned."""
    receiver = Receiver()
    if receiver_setup:
        receiver.control(**receiver_setup)
    start = sluice.last_seq()
    asyncio.run(ingest(sluice.port, events))
    dest = make(receiver)
    sluice.start_destinations([dest], start)
    every = receiver_setup.get("poison_every", 0)
    seconds = wait_for_events(receiver, events - poisoned(events, every))
    sluice.apply([])
    receiver.stop()
    return (events - poisoned(events, every)) / seconds


def poisoned(events: int, every: int) -> int:
    """How many of events 0..events-1 are poison (every `every`-th, from 0)."""
    return -(-events // every) if every else 0


def steady_latency(sluice: Sluice, seconds: int, **receiver_setup: Any) -> dict[str, float]:
    """p50/p99/max from receipt to the receiver at a steady 1,000 events/s (delivered ones)."""
    receiver = Receiver()
    sluice.start_destinations([per_event(receiver, f"steady{time.time_ns()}")], sluice.last_seq())
    time.sleep(1.5)
    receiver.control(record=True, **receiver_setup)
    total = 1000 * seconds
    asyncio.run(ingest(sluice.port, total, per_request=10, concurrency=4, rate=1000))
    wait_for_events(receiver, total - poisoned(total, receiver_setup.get("poison_every", 0)))
    latencies = sorted(receiver.stats()["latencies"])
    sluice.apply([])
    receiver.stop()
    return {
        "p50": round(latencies[len(latencies) // 2] * 1000, 1),
        "p99": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "max": round(latencies[-1] * 1000, 1),
    }


def retry_set_size(sluice: Sluice, destination: str) -> int:
    from sluice.store.sqlite import SqliteStore

    store = SqliteStore(sluice.data / "log.db")
    try:
        return sum(store.retry_counts().get(destination, {}).values())
    finally:
        store.close()


def outage(sluice: Sluice, seconds: int, rate: int) -> dict[str, Any]:
    """The receiver fails everything for `seconds` while events arrive at `rate`/s, then
    recovers: what got lost, how big the retry set grew, how fast the backlog drained."""
    receiver = Receiver()
    receiver.control(down=True, ids=0)
    sluice.start_destinations([per_event(receiver, "outage")], sluice.last_seq())
    sizes: list[int] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(1.0):
            sizes.append(retry_set_size(sluice, "outage"))

    sampler = threading.Thread(target=sample)
    sampler.start()
    total = seconds * rate
    asyncio.run(ingest(sluice.port, total, per_request=10, concurrency=4, rate=rate))
    sampling.set()
    sampler.join()
    receiver.control(down=False)
    recovered = time.monotonic()
    while receiver.stats()["events"] == 0:
        time.sleep(0.005)
    first = time.monotonic()
    while receiver.stats()["ids"] < total:
        if time.monotonic() - first > 600:
            break
        time.sleep(0.05)
    done = time.monotonic()
    stats = receiver.stats()
    sluice.apply([])
    receiver.stop()
    return {
        "events": total,
        "lost": total - stats["ids"],
        "delivered_more_than_once": stats["events"] - stats["ids"],
        "retry_set_max_rows": max(sizes, default=0),
        "first_delivery_after_recovery_s": first - recovered,
        "drain_events_per_s_from_first_delivery": total / (done - first),
        "drain_events_per_s_from_recovery": total / (done - recovered),
    }


SCENARIOS = ("batched", "per_event", "end_to_end", "steady", "isolation", "poison", "outage")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--per-event-events", type=int, default=30_000)
    parser.add_argument("--steady-seconds", type=int, default=15)
    parser.add_argument("--outage-seconds", type=int, default=300)
    parser.add_argument("--outage-rate", type=int, default=100)
    parser.add_argument("--only", default=",".join(SCENARIOS))
    args = parser.parse_args()
    only = set(args.only.split(","))
    if only - set(SCENARIOS):
        parser.error(f"unknown scenarios {sorted(only - set(SCENARIOS))}; known: {SCENARIOS}")
    sluice = Sluice()
    results: dict[str, Any] = {}
    n = args.per_event_events
    try:
        if "batched" in only:
            results["batched_drain_events_per_s"] = drain(sluice, batched, args.events)
        if "per_event" in only:
            results["per_event_drain_events_per_s"] = drain(
                sluice, lambda r: per_event(r, "single"), n
            )

        if "end_to_end" in only:  # ingest and batched delivery at once
            receiver = Receiver()
            sluice.start_destinations([batched(receiver, "e2e")], sluice.last_seq())
            time.sleep(1.5)
            began = time.monotonic()
            asyncio.run(ingest(sluice.port, args.events))
            wait_for_events(receiver, args.events)
            results["batched_end_to_end_events_per_s"] = args.events / (time.monotonic() - began)
            sluice.apply([])
            receiver.stop()

        if "steady" in only:
            results["steady_1000_per_s_latency_ms"] = steady_latency(sluice, args.steady_seconds)

        if "isolation" in only:  # a healthy destination alone, then next to one failing
            alone = drain(sluice, lambda r: per_event(r, "healthy"), n)
            failing = Receiver(fail=True)
            healthy = Receiver()
            start = sluice.last_seq()
            asyncio.run(ingest(sluice.port, n))
            sluice.start_destinations(
                [per_event(failing, "failing"), per_event(healthy, "healthy2")], start
            )
            with_failing = n / wait_for_events(healthy, n)
            results["isolation"] = {
                "healthy_alone_events_per_s": alone,
                "healthy_next_to_failing_events_per_s": with_failing,
                "ratio": with_failing / alone,
                "failing_requests_seen": failing.stats()["requests"],
            }
            failing.stop()
            healthy.stop()

        if "poison" in only:  # 1% fail forever; the same drain without failures, alternating
            clean, dirty = [], []
            for round_ in range(3):
                name = f"clean{round_}"
                clean.append(drain(sluice, lambda r, d=name: per_event(r, d), n, inspect=True))
                name = f"poison{round_}"
                dirty.append(drain(sluice, lambda r, d=name: per_event(r, d), n, poison_every=100))
            results["poison_1_percent"] = {
                "no_failures_events_per_s": clean,
                "others_next_to_poison_events_per_s": dirty,
                "ratio": sum(dirty) / sum(clean),
                "steady_1000_per_s_latency_ms_of_the_others": steady_latency(
                    sluice, args.steady_seconds, poison_every=100
                ),
            }

        if "outage" in only:
            # The reference: the same number of events drained with no outage, just before.
            total = args.outage_seconds * args.outage_rate
            no_outage = drain(sluice, lambda r: per_event(r, "reference"), total, ids=0)
            result = outage(sluice, args.outage_seconds, args.outage_rate)
            result["no_outage_drain_events_per_s"] = no_outage
            result["ratio_from_first_delivery"] = (
                result["drain_events_per_s_from_first_delivery"] / no_outage
            )
            results["outage"] = result
    finally:
        sluice.stop()
    print(json.dumps(results, indent=2, default=lambda v: round(v, 1)))


if __name__ == "__main__":
    main()
