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
   after recovery next to the no-outage one;
8. backlog (only with `--only backlog`: it takes minutes): a warehouse load of
   `--backlog-events` events left unloaded, timed alone (on a copy of the data dir) and next to
   the steady 1,000 events/s of a per-event destination, whose latency is printed next to the
   same measurement once the warehouse has caught up (issue 15).

`--only poison,outage` runs some scenarios (names: batched, per_event, end_to_end, steady,
isolation, poison, outage, backlog); all but backlog by default.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import fcntl
import json
import multiprocessing
import os
import shutil
import signal
import socket
import struct
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

    stats: dict[str, Any] = {"events": 0, "requests": 0, "latencies": [], "received": [],
                             "record": False, "down": fail, "poison_every": 0, "ids": None,
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
                stats["received"].append(moment)
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
    """`sluice serve` on `data` (a fresh data dir by default), with `env` over the environment,
    and `destinations` connected at the log's end before it starts (`start=False`: the caller
    starts it)."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        data: Path | None = None,
        destinations: list[dict[str, Any]] | None = None,
        start: bool = True,
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sluice-delivery-bench-"))
        self.data = data or self.root / "data"
        self.port = free_port()
        self.env = {**os.environ, **(env or {}), "SLUICE_DATA_DIR": str(self.data)}
        if destinations:
            self.start_destinations(destinations, self.last_seq())
        else:
            self.apply([])
        if start:
            self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sluice", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_http(f"http://127.0.0.1:{self.port}/healthz")
        except BaseException:
            self.stop()
            raise

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

    def cursor(self, consumer: str) -> int | None:
        from sluice.store.sqlite import SqliteStore

        store = SqliteStore(self.data / "log.db")
        try:
            return store.find_cursor(consumer)
        finally:
            store.close()

    def stop(self) -> None:
        """Stop the server as its operator would, and wait until every process of its session
        is gone. SIGTERM goes to `sluice serve` alone, which stops its worker: a second one
        straight to the worker, as the whole session would get, can cut its shutdown short and
        leave its leases for the next server to wait out."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while True:
            try:
                os.killpg(self.proc.pid, 0 if time.monotonic() < deadline else signal.SIGKILL)
            except ProcessLookupError:
                return
            time.sleep(0.1)


# Each acknowledged request's round trip in seconds, of the latest `ingest` (the collector's part
# of an event's latency: its group commit).
ACK_TIMES: list[float] = []


async def ingest(port: int, events: int, per_request: int = 100, concurrency: int = 8,
                 rate: float | None = None, start: int = 0) -> float:  # fmt: skip
    """POST `events` events in batches; at `rate` events/s if given. Returns seconds taken."""
    ACK_TIMES.clear()
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
            sent_at = time.monotonic()
            async with session.post(url, data=body, headers=auth) as r:
                assert r.status == 200, await r.text()
            ACK_TIMES.append(time.monotonic() - sent_at)

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
    steady(sluice, receiver, seconds, **receiver_setup)
    result = percentiles(receiver.stats()["latencies"])
    sluice.apply([])
    receiver.stop()
    return result


def warm_up(port: int, timeout: float = 120) -> float:
    """Send one event at a time until 20 in a row are acknowledged within 50 ms; seconds."""
    began = time.monotonic()
    fast = 0
    while fast < 20 and time.monotonic() - began < timeout:
        asyncio.run(ingest(port, 1, per_request=1, concurrency=1))
        fast = fast + 1 if ACK_TIMES[-1] < 0.05 else 0
    return round(time.monotonic() - began, 1)


def steady(sluice: Sluice, receiver: Receiver, seconds: int, **receiver_setup: Any) -> float:
    """Send 1,000 events/s for `seconds` to a connected receiver that records their latency,
    and wait until it has them all (but the poison). Returns the seconds sending took."""
    receiver.control(record=True, **receiver_setup)
    total = 1000 * seconds
    sending = asyncio.run(ingest(sluice.port, total, per_request=10, concurrency=4, rate=1000))
    wait_for_events(receiver, total - poisoned(total, receiver_setup.get("poison_every", 0)))
    return sending


def percentiles(latencies: list[float]) -> dict[str, float]:
    """p50/p99/max of latencies in seconds, in ms."""
    ordered = sorted(latencies)
    return {
        "p50": round(ordered[len(ordered) // 2] * 1000, 1),
        "p99": round(ordered[int(len(ordered) * 0.99)] * 1000, 1),
        "max": round(ordered[-1] * 1000, 1),
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


# --- backlog: delivery while the warehouse loads a backlog (issue 15) -------------------------
# Only the CLI, the environment, the HTTP API and the files are used, so that the same scenario
# measures a worker that loads warehouses itself and a server that loads them elsewhere.
WAREHOUSE_FILE = "warehouse.duckdb"  # the default warehouse (docs/warehouse.md)
# Loads off; the archive finalizes a file every second, so that its cursor shows it caught up.
BUILDING = {"SLUICE_WAREHOUSE_INTERVAL_S": "0", "SLUICE_ARCHIVE_MAX_FILE_AGE_S": "1"}
LOADS = {"SLUICE_WAREHOUSE_INTERVAL_S": "1"}
POSITION = "SELECT position FROM _sluice.loads WHERE loader_id = 'default'"


def held(path: Path) -> bool:
    """Whether a process holds the DuckDB file (a load, or anything else that opened it).

    Asked with F_GETLK, which takes no lock: a read-only open would make a load starting at
    that moment fail and wait for the next interval. `struct flock` as Linux lays it out.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        probe = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, probe)
        return bool(struct.unpack("hhqqi", answer)[0] != fcntl.F_UNLCK)
    finally:
        os.close(fd)


def warehouse_position(path: Path) -> int | None:
    """The default warehouse's load position (`_sluice.loads`); None while the file is held."""
    import duckdb

    if not path.exists() or held(path):
        return None
    try:
        db = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:  # a load began since `held`
        return None
    try:
        row = db.execute(POSITION).fetchone()
    except duckdb.Error:  # created, with no position yet
        return None
    finally:
        db.close()
    return 0 if row is None else int(row[0])


class LoadWatch(threading.Thread):
    """Watches the warehouse of `sluice`, which it starts: when the file is first held (the
    load began), each position it shows while free, and when it first reaches `target` (the
    load ended; a load holds the file until its last commit)."""

    def __init__(self, sluice: Sluice, target: int) -> None:
        super().__init__(daemon=True)
        self.path = sluice.data / WAREHOUSE_FILE
        self.target = target
        self.started = time.monotonic()
        self.began: float | None = None
        self.ended: float | None = None
        self.ended_wall = 0.0
        self.position = 0
        self.positions: list[tuple[float, int]] = []  # (s since the start, position)
        self.stopping = threading.Event()
        self.start()
        sluice.start()

    def run(self) -> None:
        while self.ended is None and not self.stopping.wait(0.1):
            now, wall = time.monotonic(), time.time()
            position = warehouse_position(self.path)
            if position is None:
                if self.began is None and self.path.exists():
                    self.began = now
                continue
            if position != self.position or not self.positions:
                self.positions.append((round(now - self.started, 1), position))
            self.position = position
            if position == 0:  # whatever held the file loaded nothing: the load is yet to come
                self.began = None
            elif position >= self.target:
                self.began = self.started if self.began is None else self.began
                self.ended, self.ended_wall = now, wall

    def wait(self, timeout: float = 1800, to_begin: float = 120) -> None:
        """Until the load ended; fail if it did not begin within `to_begin` seconds (nothing
        loads warehouses) or end within `timeout`."""
        while self.is_alive() and time.monotonic() - self.started < timeout:
            if self.began is None and time.monotonic() - self.started > to_begin:
                break
            self.join(0.5)
        if self.ended is None:
            self.stopping.set()
            raise TimeoutError(
                f"warehouse {self.path} at {self.position} of {self.target} after"
                f" {time.monotonic() - self.started:.0f} s (began: {self.began is not None})"
            )

    def report(self) -> dict[str, Any]:
        assert self.began is not None and self.ended is not None
        seconds = self.ended - self.began
        return {  # from position 0: the backlog's warehouse never loaded
            "events_per_s": round(self.position / seconds),
            "events": self.position,
            "seconds": round(seconds, 1),
            "began_s_after_start": round(self.began - self.started, 1),
            "positions_s_after_start": self.positions,
        }


def backlog(events: int, seconds: int) -> dict[str, Any]:
    """Latency at 1,000 events/s while the warehouse loads `events` events, and without; the
    load's speed alone and while delivering. `seconds` of steady traffic, or (0) as long as
    the load alone took."""
    # 1. The backlog: a log the warehouse has not loaded (loads off).
    build = Sluice(BUILDING)
    try:
        ingest_seconds = asyncio.run(ingest(build.port, events))
        end = build.last_seq()
        # The archive too is a consumer of the log: caught up, so that neither load has it
        # next to it.
        deadline = time.monotonic() + 600
        while (build.cursor("archive") or 0) < end and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        build.stop()
    result: dict[str, Any] = {
        "events": events,
        "ingest_events_per_s": round(events / ingest_seconds),
        "archive_behind": end - (build.cursor("archive") or 0),
    }

    # 2. The load alone, on a copy of the data dir: no destination, no traffic.
    copy = Path(tempfile.mkdtemp(prefix="sluice-delivery-bench-copy-")) / "data"
    shutil.copytree(build.data, copy)
    alone = Sluice(LOADS, copy, start=False)
    watch = LoadWatch(alone, end)
    try:
        watch.wait()
    finally:
        alone.stop()
    result["load_alone"] = watch.report()
    shutil.rmtree(copy.parent)
    shutil.rmtree(alone.root)
    if seconds <= 0:
        seconds = max(10, round(result["load_alone"]["seconds"]))
    result["steady_seconds"] = seconds

    # 3. The same load on the original, with a per-event destination at 1,000 events/s.
    receiver = Receiver()
    sluice = Sluice(LOADS, build.data, [per_event(receiver, "during_load")], start=False)
    watch = LoadWatch(sluice, end)
    try:
        time.sleep(1.5)  # the consumer starts (as in steady_latency)
        # Each HTTP worker's first append rebuilds its dedupe set from the log's window (1M
        # events here: seconds): a cost of starting on a full log, not of the load, so the
        # window starts once the collector answers as it does warm.
        result["collector_warm_up_s"] = warm_up(sluice.port)
        deadline = time.monotonic() + 60
        while watch.began is None and time.monotonic() < deadline:
            time.sleep(0.05)  # and the load: the window starts with it
        window = time.monotonic()
        window_end = window + steady(sluice, receiver, seconds)
        acks_during = percentiles(ACK_TIMES)
        stats = receiver.stats()
        watch.wait()
        sluice.apply([])
        receiver.stop()
        during = watch.report()
        assert watch.began is not None and watch.ended is not None
        overlap = min(window_end, watch.ended) - max(window, watch.began)
        pairs = list(zip(stats["latencies"], stats["received"], strict=True))
        loading = [latency for latency, received in pairs if received <= watch.ended_wall]
        # Events that reached the receiver while the window and the load overlapped.
        to_wall = watch.ended_wall - watch.ended
        since, until = max(window, watch.began) + to_wall, min(window_end, watch.ended) + to_wall
        arrived = sum(since <= received + latency <= until for latency, received in pairs)
        # 4. The baseline: the same, now that the warehouse has caught up (loads every second).
        without = steady_latency(sluice, seconds)
        acks_without = percentiles(ACK_TIMES)
    finally:
        sluice.stop()
    shutil.rmtree(build.root)
    shutil.rmtree(sluice.root)
    result["load_while_delivering"] = during
    result["load_ratio_while_delivering_to_alone"] = round(
        during["events_per_s"] / result["load_alone"]["events_per_s"], 2
    )
    result["window_overlapping_the_load"] = round(max(0.0, overlap) / (window_end - window), 2)
    if overlap > 0:  # 1,000 if delivery kept up with the traffic while the load ran
        result["delivered_events_per_s_during_the_load"] = round(arrived / overlap)
    result["latency_ms_with_backlog"] = percentiles(stats["latencies"])
    # The collector's part: each request's acknowledgement (its group commit), same windows.
    result["ack_ms_with_backlog"] = acks_during
    result["ack_ms_without_backlog"] = acks_without
    # A window that outlasts the load is judged by the events that arrived during the load.
    with_backlog = result["latency_ms_with_backlog"]
    if loading and len(loading) < len(stats["latencies"]):
        with_backlog = percentiles(loading)
        result["latency_ms_with_backlog_of_events_received_during_the_load"] = with_backlog
    result["latency_ms_without_backlog"] = without
    result["p99_ratio_with_to_without_backlog"] = round(with_backlog["p99"] / without["p99"], 2)
    result["targets_met"] = {
        "p99_under_100_ms": with_backlog["p99"] < 100,
        "p99_within_1.5x_of_no_backlog": with_backlog["p99"] <= 1.5 * without["p99"],
        "load_while_delivering_at_least_80_percent_of_alone": (
            result["load_ratio_while_delivering_to_alone"] >= 0.8
        ),
    }
    return result


SCENARIOS = (
    "batched", "per_event", "end_to_end", "steady", "isolation", "poison", "outage", "backlog"
)  # fmt: skip
DEFAULT_SCENARIOS = tuple(name for name in SCENARIOS if name != "backlog")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--per-event-events", type=int, default=30_000)
    parser.add_argument("--steady-seconds", type=int, default=15)
    parser.add_argument("--outage-seconds", type=int, default=300)
    parser.add_argument("--outage-rate", type=int, default=100)
    parser.add_argument("--backlog-events", type=int, default=1_000_000)
    parser.add_argument(
        "--backlog-steady-seconds", type=int, default=0, help="0: as long as the load alone"
    )
    parser.add_argument("--only", default=",".join(DEFAULT_SCENARIOS))
    args = parser.parse_args()
    only = set(args.only.split(","))
    if only - set(SCENARIOS):
        parser.error(f"unknown scenarios {sorted(only - set(SCENARIOS))}; known: {SCENARIOS}")
    results = one_server(only, args) if only - {"backlog"} else {}
    if "backlog" in only:  # its own servers, once the shared one has stopped
        results["backlog"] = backlog(args.backlog_events, args.backlog_steady_seconds)
    print(json.dumps(results, indent=2, default=lambda v: round(v, 1)))


def one_server(only: set[str], args: argparse.Namespace) -> dict[str, Any]:
    """The scenarios that take turns on one server."""
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
    return results


if __name__ == "__main__":
    main()
