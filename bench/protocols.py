"""Protocols benchmark: what a 200-rule tracking plan costs ingest, plan on vs off, same run.

Two measures, both alternating plan off and on (A B B A ...) so the machine's drift favours
neither side:

- the collector's item path (default): in one process, parse a 100-event batch of
  bench/ingest.py's 656-byte event, normalise every item, check it against the plan, build the
  group commit's batch. Timed in process CPU time (the machine is shared: wall time here mostly
  measures the neighbours), reported as events per CPU-second.
- the whole server (`--server`): `sluice serve` with two sources, one without a plan and one
  with it, driven over loopback by wrk with bench/ingest.py's batch100 load (64 connections),
  alternating the source. Reports events/s (wrk's acknowledged events) and the server's CPU
  time per event (every process of the server, read from /proc), and checks that the log holds
  every acknowledged event.

Every event is planned and valid, the common case; `--invalid 0.05` (item path) sends a share
with a wrong type, which adds listing violations and omitting properties.

    uv run python bench/protocols.py [--rounds 6] [--seconds 2] [--rules 200] [--invalid 0.0]
    uv run python bench/protocols.py --server [--rounds 4] [--duration 10]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from ingest import EVENT_TEMPLATE, LUA_COMMON, Server, run_wrk
from sluice.collector.batch import build_batch
from sluice.collector.body import decode_item, parse_batch
from sluice.config import Settings
from sluice.protocols.registry import load_enforcers
from sluice.spec.normalize import make_envelope
from sluice.store.base_event_store import SourceRow

BATCH = 100
KEYS = {"off": "bench_key_plan_off_0123456789", "on": "bench_key_plan_on_0123456789"}
ORDER_PROPERTIES = {
    "order_id": {"type": "string"}, "total": {"type": "number"}, "revenue": {"type": "number"},
    "shipping": {"type": "number"}, "tax": {"type": "number"}, "discount": {"type": "number"},
    "coupon": {"type": "string"}, "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "products": {"type": "array", "items": {"type": "object", "required": ["product_id"],
                 "properties": {"product_id": {"type": "string"}, "sku": {"type": "string"},
                                "name": {"type": "string"}, "price": {"type": "number"},
                                "quantity": {"type": "integer"},
                                "category": {"type": "string"}}}},
}  # fmt: skip


def plan(rules: int, source: str) -> dict[str, Any]:
    """A plan of `rules` rules: Order Completed as the events are, the others like it."""
    events = [{"name": "Order Completed", "rules": _schema(ORDER_PROPERTIES, ["order_id"])}]
    for i in range(rules - 3):
        props = {f"prop_{j}": {"type": ["string", "number", "boolean"][j % 3]} for j in range(6)}
        events.append({"name": f"Event {i}", "rules": _schema(props, ["prop_0"])})
    common = {"type": "object", "required": ["messageId"],
              "properties": {"userId": {"type": ["string", "null"]}}}  # fmt: skip
    identify = _schema({"email": {"type": "string", "format": "email"}}, [], "traits")
    return {"id": "bench", "sources": [source], "rules": {"events": events, "global": common,
            "identify": identify}, "enforcement": {"unplanned_events": "block",
            "unplanned_properties": "omit", "violations": "omit"}}  # fmt: skip


def _schema(props: dict[str, Any], required: list[str], section: str = "properties") -> Any:
    inner = {"type": "object", "properties": props, "required": required}
    return {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": {section: inner}}  # fmt: skip


# --- the item path ---------------------------------------------------------------------------


def bodies(count: int, invalid: float) -> list[bytes]:
    rng = random.Random(7)
    out = []
    for b in range(count):
        items = []
        for i in range(BATCH):
            event = EVENT_TEMPLATE % f"m-{b}-{i}"
            if rng.random() < invalid:
                event = event.replace('"revenue":25', '"revenue":"25"')
            items.append(event)
        out.append(('{"batch":[' + ",".join(items) + "]}").encode())
    return out


def run_items(
    settings: Settings, source: SourceRow, requests: list[bytes], plans: Any, seconds: float
) -> float:
    """Events per CPU-second of the item path over about `seconds` of CPU time."""
    by_key = {k: source for k in source.write_keys}
    done = 0
    started = time.process_time()
    while time.process_time() - started < seconds:
        for body in requests:
            envelope_in = parse_batch(body)
            items = [decode_item(r) for r in envelope_in.batch]
            envelope = make_envelope(int(time.time() * 1000), "127.0.0.1", None, None, None)
            batch = build_batch(settings, by_key, source, items, envelope, None,
                                envelope_in.batch, plans)  # fmt: skip
            assert len(batch.events) == BATCH, batch.rejections[:1]
            done += BATCH
    return done / (time.process_time() - started)


def item_path(args: argparse.Namespace) -> None:
    settings = Settings(data_dir=Path("/tmp/sluice-bench-protocols"))
    source = SourceRow(id="web", name="web", write_keys=(KEYS["on"],), enabled=True)
    started = time.perf_counter()
    plans = load_enforcers([json.dumps(plan(args.rules, "web")).encode()])
    compiled = plans["web"].plan
    n_rules = sum(len(v[1]) for v in compiled.events.values()) + 2
    print(f"plan: {n_rules} rules compiled in {time.perf_counter() - started:.2f} s")
    requests = bodies(20, args.invalid)
    runs: dict[str, list[float]] = {"off": [], "on": []}
    for n in range(args.rounds):
        for mode in ("off", "on") if n % 2 == 0 else ("on", "off"):
            chosen = plans if mode == "on" else {}
            runs[mode].append(run_items(settings, source, requests, chosen, args.seconds))
    off, on = _median(runs["off"]), _median(runs["on"])
    for mode in ("off", "on"):
        rounds = ", ".join(f"{x:,.0f}" for x in runs[mode])
        print(f"plan {mode + ':':<4} {_median(runs[mode]):>8,.0f} events/CPU-s (median; {rounds})")
    print(f"item path: on/off {on / off:.3f}, the plan costs {(1 - on / off) * 100:.1f}%"
          f" of the item path's CPU")  # fmt: skip


# --- the whole server ------------------------------------------------------------------------

LUA_KEYED = (
    LUA_COMMON
    + """
local headers = {["Authorization"] = "Basic %(auth)s", ["Content-Type"] = "application/json"}
request = function()
  local items = {}
  for i = 1, %(size)d do
    counter = counter + 1
    items[i] = string.format(template, prefix .. counter)
  end
  local body = '{"batch":[' .. table.concat(items, ",") .. '],"sentAt":"2026-11-28T10:00:01.000Z"}'
  return wrk.format("POST", "/v1/batch", headers, body)
end
"""
)


def cpu_of_group(pgid: int) -> float:
    """CPU seconds (user + system) used so far by every live process of the server's group."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ProcessLookupError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def whole_server(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        sys.exit("bench/protocols.py --server needs wrk: apt-get install wrk")
    server = Server(args.workers)
    workspace = {
        "sources": [{"id": mode, "write_keys": [key]} for mode, key in KEYS.items()],
        "tracking_plans": [plan(args.rules, "on")],
    }
    server.workspace = json.dumps(workspace)  # JSON is YAML
    server.start()
    template = EVENT_TEMPLATE.replace("%", "%%").replace("%%s", "%s")
    scripts = {
        mode: LUA_KEYED % {"template": template, "size": BATCH,
                           "auth": base64.b64encode(f"{key}:".encode()).decode()}
        for mode, key in KEYS.items()
    }  # fmt: skip
    url = f"http://127.0.0.1:{server.port}/"
    events: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    acknowledged = {"off": 0, "on": 0}
    try:
        run_wrk(url, scripts["off"], 2, args.connections, args.threads)  # warm up
        for n in range(args.rounds):
            for mode in ("off", "on") if n % 2 == 0 else ("on", "off"):
                cpu_before = cpu_of_group(server.proc.pid)
                r = run_wrk(url, scripts[mode], args.duration, args.connections, args.threads)
                used = cpu_of_group(server.proc.pid) - cpu_before
                done = (r["requests"] - r["non2xx"]) * BATCH
                acknowledged[mode] += int(done)
                events[mode].append(r["rps"] * BATCH)
                cpu[mode].append(used / max(done, 1) * 1e6)
                print(f"  plan {mode:<3} {r['rps'] * BATCH:>9,.0f} events/s  {cpu[mode][-1]:>6.1f}"
                      f" server CPU-us/event  non-2xx {r['non2xx']}")  # fmt: skip
        time.sleep(1)
        stored = _stored_per_source(server)
    finally:
        server.stop()
    # Each round ran both sides back to back: compare within rounds, then take the median, so
    # a burst of the neighbours' load or the log's growth lands on one pair, not on a side.
    ratio = _median([n / f for n, f in zip(events["on"], events["off"], strict=True)])
    cpu_ratio = _median([f / n for n, f in zip(cpu["on"], cpu["off"], strict=True)])
    print(f"whole server, batch{BATCH}, {args.rounds} rounds of {args.duration}s per side,"
          f" {args.connections} connections, {os.cpu_count()} CPUs:")  # fmt: skip
    print(f"  throughput: off {_median(events['off']):,.0f}, on {_median(events['on']):,.0f}"
          f" events/s (median); on/off per round (median) {ratio:.3f}: the plan costs"
          f" {(1 - ratio) * 100:.1f}% of ingest throughput")  # fmt: skip
    print(f"  server CPU per event: off {_median(cpu['off']):.1f} us, on {_median(cpu['on']):.1f}"
          f" us (median); off/on per round (median) {cpu_ratio:.3f}: the plan costs"
          f" {(1 - cpu_ratio) * 100:.1f}% of the server's capacity")  # fmt: skip
    # the first warm-up run's events are in "off" too: stored may exceed acknowledged
    for mode in ("off", "on"):
        if stored.get(mode, 0) < acknowledged[mode]:
            print(f"WARNING: source {mode}: {acknowledged[mode]} acknowledged,"
                  f" {stored.get(mode, 0)} stored")  # fmt: skip


def _stored_per_source(server: Server) -> dict[str, int]:
    import sqlite3

    db = sqlite3.connect(server.data_dir / "data" / "log.db")
    return dict(db.execute("SELECT source_id, count(*) FROM events GROUP BY source_id"))


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per item round")
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--invalid", type=float, default=0.0)
    parser.add_argument("--server", action="store_true", help="measure the whole server")
    parser.add_argument("--duration", type=int, default=10, help="seconds per server round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=None, help="server HTTP workers")
    args = parser.parse_args()
    if args.server:
        whole_server(args)
    else:
        item_path(args)


if __name__ == "__main__":
    main()
