"""Bridge benchmark: Segment's own destination code (`segment:<slug>`, run by the Node sidecar)
next to Sluice's native destination of the same vendor, in one run (issue 17, "Figures").

    uv run python bench/bridge.py [--events 50000] [--per-event-events 10000]
                                  [--steady-seconds 15] [--steady-rate 200] [--json]

Starts `sluice serve` (one worker process, so one sidecar; warehouse loads off) on a fresh data
dir whose `bridge` links to the package installed once into ~/.cache/sluice-tests/ (as
tests/bridge/conftest.py does), and a local receiver (aiohttp, its own process) answering 200
with what Mixpanel answers (`{"code":200,"num_records_imported":N,"status":"OK"}`) to every
request. Each destination is pointed at `<receiver>/d/<destination id>` (`delivery.base_url`
for bridged ones, `settings.endpoint` or the URL for native ones), so the receiver counts
requests and events per destination. Then:

1. batch: `--events` events are loaded into the log first (not timed); `segment:mixpanel`
   (its presets: trackEvent through performBatch, 100 events per execute: the bridge's batch
   size), native `mixpanel` at its default batch (2,000) and native `mixpanel` at
   `batch_size: 100` each drain the same events from the same log position, one after the
   other. Events/s from the receiver's first request to its last (start-up excluded);
2. per event: the same with `--per-event-events` events, `segment:webhook` `send` with
   `delivery.batch_size: 1` (one execute and one request per event) and native
   `webhook-actions` `send` without batching;
3. overhead: both per-event destinations connected at once, events posted at `--steady-rate`
   events/s for `--steady-seconds`; per event, the time from its `receivedAt` (the collector's
   clock) to the receiver reading it: p50/p99 bridged and native, and their difference. Then,
   in this process, Segment's webhook `send` run sequentially through the bridge
   (`BridgedDestination.perform`, a sidecar of this process, the engine's `send` to the same
   receiver): each execute's wall time minus the time spent in the engine's `send` (the HTTP
   request itself); the same for native `webhook-actions` (build + send);
4. memory: a second server with 20 bridged destinations (dummy settings that pass `sluice
   apply`, their presets), events sent until each has made a request (so each is loaded);
   the node process's VmRSS and VmHWM from /proc. The first server's sidecar RSS after the
   runs above is printed too.

For each run it also reads, from /proc, the CPU seconds of the node sidecar, of the Sluice
processes (Python) and of the receiver, and the bytes node read and wrote (`rchar`/`wchar`:
its stdio, the protocol), so that a slow figure says where the time went.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import delivery  # bench/delivery.py: the server, ingest, free ports
from delivery import Sluice, free_port, percentiles, wait_http

EVENT = (
    '{"type":"track","event":"Product Viewed","userId":"user-%(n)d","anonymousId":"anon-%(n)d",'
    '"messageId":"%(id)s","timestamp":"2026-11-28T10:00:00.123Z","properties":{"product_id":'
    '"p-%(n)d","name":"Monopoly","price":19,"revenue":19,"currency":"USD","quantity":1},'
    '"context":{"library":{"name":"analytics.js","version":"next-1.70.0"},"locale":"en-US",'
    '"ip":"203.0.113.9","userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 '
    '(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36","page":{"url":"https://shop.example/p"},'
    '"traits":{"email":"user@example.com"}}}'
)
delivery.EVENT = EVENT  # what delivery.ingest posts
SERVER_ENV = {"SLUICE_WORKERS": "1", "SLUICE_WAREHOUSE_INTERVAL_S": "0"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
# 20 supported destinations whose presets send a track event (checked against 3.497.0).
TWENTY = (
    "amplitude", "customerio", "drip", "encharge", "fullstory", "heap", "iterable", "june",
    "launchdarkly", "posthog", "airship", "appcues", "attribution", "clay", "kameleoon",
    "optimizely-data-platform", "reddit-conversions-api", "tiktok-conversions", "userpilot",
    "sprig",
)  # fmt: skip
URL_WORDS = ("url", "endpoint", "domain")  # settings given a URL as dummy value
MIXPANEL_SETTINGS = {"projectToken": "bench-token", "apiSecret": "bench-secret"}


# --- the receiver -----------------------------------------------------------------------------
def receiver_main(port: int) -> None:
    from aiohttp import web

    stats: dict[str, dict[str, Any]] = {}
    record: set[str] = set()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        parts = request.path.split("/")
        key = parts[2] if len(parts) > 2 and parts[1] == "d" else "other"
        is_import = "/import" in request.path
        events = body.count(b'"$insert_id"' if is_import else b'"messageId"')
        s = stats.get(key)
        if s is None:
            s = stats[key] = {"requests": 0, "events": 0, "first": now, "first_events": events,
                              "last": now, "latencies": []}  # fmt: skip
        s["requests"] += 1
        s["events"] += events
        s["last"] = now
        if key in record:
            data = json.loads(body)
            for event in data if isinstance(data, list) else [data]:
                received = datetime.fromisoformat(event["receivedAt"]).timestamp()
                s["latencies"].append(now - received)
        if is_import:
            answer = {"code": 200, "num_records_imported": events, "status": "OK"}
            return web.json_response(answer)
        return web.json_response({})

    async def get_stats(_: web.Request) -> web.Response:
        return web.json_response(stats)

    async def control(request: web.Request) -> web.Response:
        body = await request.json()
        record.update(body.get("record", []))
        return web.json_response({})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes([web.get("/_stats", get_stats), web.post("/_control", control)])
    app.add_routes([web.route("*", "/{tail:.*}", handle)])
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.process = multiprocessing.get_context("fork").Process(
            target=receiver_main, args=(self.port,), daemon=True
        )
        self.process.start()
        wait_http(f"{self.url}/_stats")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def base(self, dest_id: str) -> str:
        return f"{self.url}/d/{dest_id}"

    def stats(self, dest_id: str | None = None) -> Any:
        with urllib.request.urlopen(f"{self.url}/_stats", timeout=30) as answer:
            stats = json.load(answer)
        return stats if dest_id is None else stats.get(dest_id, {"events": 0, "requests": 0})

    def record(self, *dest_ids: str) -> None:
        body = json.dumps({"record": list(dest_ids)}).encode()
        request = urllib.request.Request(f"{self.url}/_control", data=body, method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def stop(self) -> None:
        assert self.process.pid is not None
        self.process.terminate()
        self.process.join(10)


# --- /proc ------------------------------------------------------------------------------------
def proc_stat(pid: int) -> tuple[str, int, float]:
    """(comm, session id, CPU seconds) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    comm = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return comm, int(fields[3]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def session_processes(sid: int) -> dict[int, tuple[str, float]]:
    """Every live process of session `sid`: pid -> (comm, CPU seconds)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                comm, session, cpu = proc_stat(int(entry))
                if session == sid:
                    found[int(entry)] = (comm, cpu)
    return found


def node_pid(sluice: Sluice) -> int | None:
    nodes = [p for p, (comm, _) in session_processes(sluice.proc.pid).items() if comm == "node"]
    return nodes[0] if nodes else None


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def node_io(pid: int | None) -> tuple[int, int]:
    """Bytes node read and wrote through read/write calls (its stdin and stdout: the protocol;
    plus the modules it read)."""
    if pid is None:
        return 0, 0
    values = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            name, value = line.split(":")
            values[name] = int(value)
    return values["rchar"], values["wchar"]


class CpuWindow:
    """CPU seconds of node, of Sluice's Python processes and of the receiver over a window."""

    def __init__(self, sluice: Sluice, receiver: Receiver) -> None:
        self.sluice, self.receiver = sluice, receiver
        self.began = time.monotonic()
        self.start = self._sample()

    def _sample(self) -> dict[str, Any]:
        procs = session_processes(self.sluice.proc.pid)
        node = {p: cpu for p, (comm, cpu) in procs.items() if comm == "node"}
        python = {p: cpu for p, (comm, cpu) in procs.items() if comm != "node"}
        assert self.receiver.process.pid is not None
        receiver = proc_stat(self.receiver.process.pid)[2]
        pid = next(iter(node), None)
        return {"node": node, "python": python, "receiver": receiver, "io": node_io(pid)}

    def end(self, events: int) -> dict[str, Any]:
        wall = time.monotonic() - self.began
        now = self._sample()

        def used(kind: str) -> float:
            return sum(cpu - self.start[kind].get(p, 0.0) for p, cpu in now[kind].items())

        node, python = used("node"), used("python")
        receiver = now["receiver"] - self.start["receiver"]
        read = now["io"][0] - (self.start["io"][0] if self.start["node"] else 0)
        wrote = now["io"][1] - (self.start["io"][1] if self.start["node"] else 0)
        per_k = 1000 / max(1, events)
        return {
            "wall_s": round(wall, 2),
            "cpu_s": {
                "node": round(node, 2),
                "python": round(python, 2),
                "receiver": round(receiver, 2),
            },
            "cores_busy": {
                "node": round(node / wall, 2),
                "python": round(python / wall, 2),
                "receiver": round(receiver / wall, 2),
            },
            "cpu_ms_per_1k_events": {
                "node": round(node * per_k * 1000),
                "python": round(python * per_k * 1000),
            },
            "node_stdio_bytes_per_event": {
                "in": round(read / max(1, events)),
                "out": round(wrote / max(1, events)),
            },
        }


# --- the servers ------------------------------------------------------------------------------
def bridge_root() -> Path:
    """The package installed once, as tests/bridge/conftest.py does (same cache, same key)."""
    from sluice.bridge.install import install, lock_sha256

    if shutil.which("node") is None or shutil.which("npm") is None:
        sys.exit("node and npm are needed (the bridge runs Segment's code in Node.js)")
    base = Path(os.environ.get("SLUICE_TEST_CACHE", "~/.cache/sluice-tests")).expanduser()
    root = base / f"bridge-{lock_sha256()[:16]}"
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        install(root)
    return root


def bridged_server(root: Path) -> Sluice:
    sluice = Sluice(SERVER_ENV, start=False)
    (sluice.data / "bridge").symlink_to(root / "bridge")
    sluice.start()
    return sluice


def wait_events(receiver: Receiver, dest_id: str, count: int, timeout: float = 900) -> None:
    began = time.monotonic()
    while (events := receiver.stats(dest_id)["events"]) < count:
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"{dest_id}: {events} of {count} events arrived")
        time.sleep(0.1)


def drain(sluice: Sluice, receiver: Receiver, dest: dict[str, Any], start: int, events: int,
          sidecar_in_use: bool) -> dict[str, Any]:  # fmt: skip
    """Connect `dest` at log position `start` (the `events` events after it are loaded) and
    time it delivering them all to the receiver."""
    sluice.start_destinations([dest], start)
    while not receiver.stats(dest["id"])["requests"]:  # started: the CPU count begins
        time.sleep(0.02)
    window = CpuWindow(sluice, receiver)
    wait_events(receiver, dest["id"], events)
    stats = receiver.stats(dest["id"])
    usage = window.end(events)
    sluice.apply([])
    seconds = stats["last"] - stats["first"]
    result = {
        "events_per_s": round((events - stats["first_events"]) / seconds) if seconds else None,
        "requests": stats["requests"],
        "events_per_request": round(stats["events"] / stats["requests"], 1),
        "seconds_first_to_last_request": round(seconds, 2),
        **usage,
    }
    if not sidecar_in_use:
        del result["node_stdio_bytes_per_event"]
        result["cpu_ms_per_1k_events"].pop("node")
    return result


def mixpanel_bridged(receiver: Receiver, dest_id: str) -> dict[str, Any]:
    options = {"base_url": receiver.base(dest_id)}
    return {"id": dest_id, "type": "segment:mixpanel", "sources": ["web"],
            "settings": MIXPANEL_SETTINGS, "delivery": options}  # fmt: skip


def mixpanel_native(receiver: Receiver, dest_id: str, batch: int | None) -> dict[str, Any]:
    settings = {"project_token": "bench-token", "api_secret": "bench-secret",
                "endpoint": receiver.base(dest_id)}  # fmt: skip
    options = {"batch_size": batch} if batch else {}
    return {"id": dest_id, "type": "mixpanel", "sources": ["web"], "settings": settings,
            "delivery": options}  # fmt: skip


def webhook(receiver: Receiver, dest_id: str, bridged: bool) -> dict[str, Any]:
    mapping: dict[str, Any] = {"url": f"{receiver.base(dest_id)}/hook", "method": "POST",
                               "data": {"@path": "$."}}  # fmt: skip
    options: dict[str, Any] = {}
    if bridged:
        options = {"batch_size": 1, "base_url": receiver.base(dest_id)}
    else:
        mapping["enable_batching"] = False
    return {
        "id": dest_id,
        "type": "segment:webhook" if bridged else "webhook-actions",
        "sources": ["web"],
        "mappings": [{"action": "send", "trigger": 'type = "track"', "mapping": mapping}],
        "delivery": options,
    }


def dummy_settings(entry: Any) -> dict[str, Any]:
    """A value for each required setting that passes `sluice apply` (type and choices)."""
    properties = entry.auth_fields.get("properties", {})
    settings: dict[str, Any] = {}
    for name in entry.auth_fields.get("required", []):
        field = properties.get(name, {})
        kind = field.get("type")
        kind = kind[0] if isinstance(kind, list) else kind
        if field.get("enum"):
            settings[name] = field["enum"][0]
        elif kind in ("number", "integer"):
            settings[name] = 1
        elif kind == "boolean":
            settings[name] = False
        elif field.get("format") == "uri" or any(w in name.lower() for w in URL_WORDS):
            settings[name] = "https://example.com"
        else:
            settings[name] = f"bench-{name}"
    return settings


# --- the scenarios ----------------------------------------------------------------------------
def throughput(sluice: Sluice, receiver: Receiver, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    n = args.events
    start = sluice.last_seq()
    asyncio.run(delivery.ingest(sluice.port, n))
    results["batch"] = {
        "segment:mixpanel (trackEvent performBatch, 100/execute)": drain(
            sluice, receiver, mixpanel_bridged(receiver, "bmp"), start, n, True
        ),
        "mixpanel native (batch 2000)": drain(
            sluice, receiver, mixpanel_native(receiver, "nmp", None), start, n, False
        ),
        "mixpanel native (batch_size 100)": drain(
            sluice, receiver, mixpanel_native(receiver, "nmp100", 100), start, n, False
        ),
    }
    n = args.per_event_events
    start = sluice.last_seq()
    asyncio.run(delivery.ingest(sluice.port, n))
    results["per_event"] = {
        "segment:webhook send (batch_size 1)": drain(
            sluice, receiver, webhook(receiver, "bwh", True), start, n, True
        ),
        "webhook-actions native send (no batching)": drain(
            sluice, receiver, webhook(receiver, "nwh", False), start, n, False
        ),
    }
    pid = node_pid(sluice)
    results["sidecar_after_throughput_runs"] = (
        {"vm_rss_mb": round(status_kib(pid, "VmRSS") / 1024),
         "vm_hwm_mb": round(status_kib(pid, "VmHWM") / 1024)} if pid else None
    )  # fmt: skip
    return results


def steady_overhead(sluice: Sluice, receiver: Receiver, args: argparse.Namespace) -> dict[str, Any]:
    """Both per-event destinations at once, a steady rate: receipt to receiver, per event."""
    dests = [webhook(receiver, "sbwh", True), webhook(receiver, "snwh", False)]
    receiver.record("sbwh", "snwh")
    sluice.start_destinations(dests, sluice.last_seq())
    # Warm: the consumers start and the sidecar loads the destination before the clock runs.
    asyncio.run(delivery.ingest(sluice.port, 20, per_request=1, concurrency=1))
    for d in dests:
        wait_events(receiver, d["id"], 20, timeout=60)
    warm = {d["id"]: len(receiver.stats(d["id"])["latencies"]) for d in dests}
    total = args.steady_rate * args.steady_seconds
    asyncio.run(delivery.ingest(sluice.port, total, per_request=2, concurrency=4,
                                rate=args.steady_rate))  # fmt: skip
    for d in dests:
        wait_events(receiver, d["id"], total + 20, timeout=120)
    sluice.apply([])
    bridged = percentiles(receiver.stats("sbwh")["latencies"][warm["sbwh"] :])
    native = percentiles(receiver.stats("snwh")["latencies"][warm["snwh"] :])
    return {
        "rate_events_per_s": args.steady_rate,
        "events": total,
        "bridged_ms": bridged,
        "native_ms": native,
        "difference_ms": {k: round(bridged[k] - native[k], 1) for k in bridged},
    }


async def execute_overhead(root: Path, receiver: Receiver, executes: int) -> dict[str, Any]:
    """In this process, one execute at a time: its wall time minus the time of its HTTP
    request(s) (aiohttp's own trace: request start to response headers), bridged
    (`BridgedDestination.perform`: the sidecar, Segment's code, the proxy) and native (the
    engine's `build` then `sluice.delivery.sender.send`)."""
    import aiohttp

    from sluice.bridge import location
    from sluice.delivery.config import compile_destination
    from sluice.delivery.sender import send
    from sluice.destinations.base import Mapped

    location.use_data_dir(root)
    http = {"began": 0.0, "s": 0.0}

    async def started(*_: Any) -> None:
        http["began"] = time.perf_counter()

    async def ended(*_: Any) -> None:
        http["s"] += time.perf_counter() - http["began"]

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(started)
    trace.on_request_end.append(ended)
    trace.on_request_exception.append(ended)
    results: dict[str, Any] = {}
    session = aiohttp.ClientSession(trace_configs=[trace], trust_env=False)
    try:
        for label, bridged in (("bridged", True), ("native", False)):
            config = compile_destination(webhook(receiver, f"x{label}", bridged))
            dest, mapping = config.destination, config.mappings[0]
            overheads, totals = [], []
            for i in range(executes + 50):  # the first 50 warm up (sidecar start, require)
                event = json.loads(EVENT % {"n": i, "id": f"ov-{label}-{i}"})
                event["receivedAt"] = "2026-11-28T10:00:00.200Z"
                mapped = Mapped(event["messageId"], mapping.evaluate_copy(event), event)
                http["s"] = 0.0
                began = time.perf_counter()
                for request in dest.build(mapping.action.id, [mapped]):
                    if bridged:
                        response = await dest.perform(session, request, 10.0)
                    else:
                        response = await send(session, request, 10.0)
                    outcome = dest.interpret(request, response)
                    assert outcome.verdict.name == "DELIVERED", outcome
                total = time.perf_counter() - began
                if i >= 50:
                    assert http["s"] > 0, "no HTTP request was timed"
                    totals.append(total)
                    overheads.append(total - http["s"])
            results[label] = {
                "execute_ms": percentiles(totals),
                "minus_http_ms": percentiles(overheads),
            }
    finally:
        await session.close()
        await location.stop_sidecar()
    return results


def memory(root: Path, receiver: Receiver) -> dict[str, Any]:
    """A fresh server with 20 bridged destinations, each made to load by an event."""
    from sluice.bridge.catalog import Catalog

    catalog = Catalog.load(root / "bridge" / "catalog.json")
    sluice = bridged_server(root)
    try:
        dests = [
            {"id": slug, "type": f"segment:{slug}", "sources": ["web"],
             "settings": dummy_settings(catalog.resolve(slug)),
             "delivery": {"base_url": receiver.base(slug), "retry_window_s": 60}}
            for slug in TWENTY
        ]  # fmt: skip
        sluice.start_destinations(dests, sluice.last_seq())
        deadline = time.monotonic() + 120
        loaded: list[str] = []
        while time.monotonic() < deadline:
            asyncio.run(delivery.ingest(sluice.port, 10, per_request=10, concurrency=1))
            stats = receiver.stats()
            loaded = [slug for slug in TWENTY if stats.get(slug, {}).get("requests")]
            if len(loaded) == len(TWENTY):
                break
            time.sleep(1)
        time.sleep(2)
        pid = node_pid(sluice)
        assert pid is not None, "no sidecar"
        return {
            "destinations_configured": len(TWENTY),
            "destinations_that_made_a_request": len(loaded),
            "missing": sorted(set(TWENTY) - set(loaded)),
            "vm_rss_mb": round(status_kib(pid, "VmRSS") / 1024),
            "vm_hwm_mb": round(status_kib(pid, "VmHWM") / 1024),
        }
    finally:
        sluice.stop()
        shutil.rmtree(sluice.root)


# --- output -----------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f
                      if line.startswith("model name")), "")  # fmt: skip
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "node": node,
    }


def print_table(results: dict[str, Any]) -> None:
    m = results["machine"]
    print(f"machine: {m['cpus']} CPUs ({m['cpu_model']}), load average at start "
          f"{m['load_average_at_start']}, at end {results.get('load_average_at_end')}, "
          f"Python {m['python']}, Node {m['node']}, package {results.get('package')}")  # fmt: skip
    head = f"{'run':<56}{'events/s':>9}{'req':>7}{'ev/req':>7}{'node cpu':>9}{'py cpu':>8}"
    head += f"{'rcv cpu':>8}{'node ms/1k':>11}{'py ms/1k':>9}{'stdio B/ev in/out':>19}"
    for group in ("batch", "per_event"):
        if group not in results:
            continue
        print(f"\n{group}: events/s from the receiver's first request to its last;"
              " cpu = cores kept busy over the run")  # fmt: skip
        print(head)
        for name, r in results[group].items():
            per_k = r["cpu_ms_per_1k_events"]
            stdio = r.get("node_stdio_bytes_per_event")
            io = f"{stdio['in']}/{stdio['out']}" if stdio else "-"
            print(f"{name:<56}{r['events_per_s']:>9}{r['requests']:>7}"
                  f"{r['events_per_request']:>7}{r['cores_busy']['node']:>9}"
                  f"{r['cores_busy']['python']:>8}{r['cores_busy']['receiver']:>8}"
                  f"{per_k.get('node', '-'):>11}{per_k['python']:>9}{io:>19}")  # fmt: skip
    for name, value in results.get("ratios", {}).items():
        print(f"ratio {name}: {value}")
    if "steady" in results:
        s = results["steady"]
        print(f"\nreceipt -> receiver, {s['rate_events_per_s']} events/s, {s['events']} events,"
              f" both destinations at once (ms): bridged {s['bridged_ms']}, native"
              f" {s['native_ms']}, bridged - native {s['difference_ms']}")  # fmt: skip
    if "execute_overhead" in results:
        for label, r in results["execute_overhead"].items():
            print(f"in-process sequential {label}: execute {r['execute_ms']} ms;"
                  f" execute minus HTTP request {r['minus_http_ms']} ms")  # fmt: skip
    if "sidecar_after_throughput_runs" in results:
        print(f"sidecar after the throughput runs: {results['sidecar_after_throughput_runs']}")
    if "memory" in results:
        print(f"sidecar with 20 bridged destinations loaded: {results['memory']}")
    print("\ntargets:")
    for name, met in results["targets"].items():
        print(f"  {name}: {'met' if met else 'MISSED'}")


SCENARIOS = ("throughput", "steady", "execute", "memory")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--per-event-events", type=int, default=10_000)
    parser.add_argument("--steady-seconds", type=int, default=15)
    parser.add_argument("--steady-rate", type=int, default=200)
    parser.add_argument("--executes", type=int, default=2000, help="in-process, sequential")
    parser.add_argument("--only", default=",".join(SCENARIOS))
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    only = set(args.only.split(","))
    results: dict[str, Any] = {"machine": machine()}
    root = bridge_root()
    results["package"] = json.loads((root / "bridge" / "catalog.json").read_text())["package"]
    receiver = Receiver()
    try:
        if only & {"throughput", "steady"}:
            sluice = bridged_server(root)
            try:
                if "throughput" in only:
                    results.update(throughput(sluice, receiver, args))
                if "steady" in only:
                    results["steady"] = steady_overhead(sluice, receiver, args)
            finally:
                sluice.stop()
                shutil.rmtree(sluice.root)
        if "execute" in only:
            results["execute_overhead"] = asyncio.run(
                execute_overhead(root, receiver, args.executes)
            )
        if "memory" in only:
            results["memory"] = memory(root, receiver)
    finally:
        receiver.stop()
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["ratios"], results["targets"] = judge(results)
    print_table(results)
    if args.json:
        print(json.dumps(results, indent=2))


def judge(results: dict[str, Any]) -> tuple[dict[str, float], dict[str, bool]]:
    ratios: dict[str, float] = {}
    targets: dict[str, bool] = {}
    if "batch" in results:
        rates = [r["events_per_s"] for r in results["batch"].values()]
        ratios["batch bridged/native(2000)"] = round(rates[0] / rates[1], 2)
        ratios["batch bridged/native(100)"] = round(rates[0] / rates[2], 2)
        targets["bridged batching >= 5,000 events/s"] = rates[0] >= 5000
    if "per_event" in results:
        rates = [r["events_per_s"] for r in results["per_event"].values()]
        ratios["per-event bridged/native"] = round(rates[0] / rates[1], 2)
        targets["bridged one-request-per-event >= 1,000 events/s"] = rates[0] >= 1000
    if "memory" in results:
        targets["sidecar RSS with 20 destinations < 200 MB"] = results["memory"]["vm_rss_mb"] < 200
    if "steady" in results:
        diff = results["steady"]["difference_ms"]["p99"]
        targets["p99 receipt->receiver, bridged minus native < 20 ms"] = diff < 20
    if "execute_overhead" in results:
        p99 = results["execute_overhead"]["bridged"]["minus_http_ms"]["p99"]
        targets["p99 execute minus HTTP request (in-process) < 20 ms"] = p99 < 20
    return ratios, targets


if __name__ == "__main__":
    main()
