"""Protocols benchmark: what a 200-rule tracking plan costs the collector's item path.

Runs the collector's per-request work (parse a 100-event batch of bench/ingest.py's 656-byte
event, normalise every item, build the group commit's batch) in one process, alternating rounds
with the plan off and on (A B A B ...), and prints events/s of each and the ratio. Every event
is planned and valid, the common case (a valid event is one compiled validator call); a share of
invalid ones (`--invalid 0.05`) adds the cost of listing violations and omitting properties.

This is the item path only: HTTP, the group commit and fsync are not in it, so the ratio here
is an upper bound of what the plan costs the whole server (bench/ingest.py measures that path).

    uv run python bench/protocols.py [--rounds 6] [--seconds 2] [--rules 200] [--invalid 0.0]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from ingest import EVENT_TEMPLATE
from sluice.collector.batch import build_batch
from sluice.collector.body import decode_item, parse_batch
from sluice.config import Settings
from sluice.protocols.registry import load_enforcers
from sluice.spec.normalize import make_envelope
from sluice.store.base import SourceRow

BATCH = 100
ORDER_PROPERTIES = {
    "order_id": {"type": "string"}, "total": {"type": "number"}, "revenue": {"type": "number"},
    "shipping": {"type": "number"}, "tax": {"type": "number"}, "discount": {"type": "number"},
    "coupon": {"type": "string"}, "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "products": {"type": "array", "items": {"type": "object", "required": ["product_id"],
                 "properties": {"product_id": {"type": "string"}, "price": {"type": "number"},
                                "quantity": {"type": "integer"}}}},
}  # fmt: skip


def plan_body(rules: int) -> bytes:
    """A plan of `rules` rules: Order Completed as the events are, the others like it."""
    events = [{"name": "Order Completed", "rules": _schema(ORDER_PROPERTIES, ["order_id"])}]
    for i in range(rules - 3):
        props = {f"prop_{j}": {"type": ["string", "number", "boolean"][j % 3]} for j in range(6)}
        events.append({"name": f"Event {i}", "rules": _schema(props, ["prop_0"])})
    common = {"type": "object", "required": ["messageId"],
              "properties": {"userId": {"type": ["string", "null"]}}}  # fmt: skip
    identify = _schema({"email": {"type": "string", "format": "email"}}, [], "traits")
    body = {"id": "bench", "sources": ["web"], "rules": {"events": events, "global": common,
            "identify": identify}, "enforcement": {"unplanned_events": "block",
            "unplanned_properties": "omit", "violations": "omit"}}  # fmt: skip
    return json.dumps(body).encode()


def _schema(props: dict[str, Any], required: list[str], section: str = "properties") -> Any:
    inner = {"type": "object", "properties": props, "required": required}
    return {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": {section: inner}}  # fmt: skip


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


def run(
    settings: Settings, source: SourceRow, requests: list[bytes], plans: Any, seconds: float
) -> float:
    by_key = {k: source for k in source.write_keys}
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for body in requests:
            envelope_in = parse_batch(body)
            items = [decode_item(r) for r in envelope_in.batch]
            envelope = make_envelope(int(time.time() * 1000), "127.0.0.1", None, None, None)
            batch = build_batch(settings, by_key, source, items, envelope, None,
                                envelope_in.batch, plans)  # fmt: skip
            assert len(batch.events) == BATCH, batch.rejections[:1]
            done += BATCH
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--invalid", type=float, default=0.0)
    args = parser.parse_args()
    settings = Settings(data_dir=Path("/tmp/sluice-bench-protocols"))
    source = SourceRow(
        id="web", name="web", write_keys=("bench_write_key_0123456789",), enabled=True
    )
    started = time.perf_counter()
    plans = load_enforcers([plan_body(args.rules)])
    plan = plans["web"].plan
    n_rules = sum(len(v[1]) for v in plan.events.values()) + 2
    print(f"plan: {n_rules} rules compiled in {time.perf_counter() - started:.2f} s")
    requests = bodies(20, args.invalid)
    off: list[float] = []
    on: list[float] = []
    for _ in range(args.rounds):
        off.append(run(settings, source, requests, {}, args.seconds))
        on.append(run(settings, source, requests, plans, args.seconds))
    best_off, best_on = max(off), max(on)
    print(f"plan off: {best_off:,.0f} events/s   (rounds: {', '.join(f'{x:,.0f}' for x in off)})")
    print(f"plan on:  {best_on:,.0f} events/s   (rounds: {', '.join(f'{x:,.0f}' for x in on)})")
    print(f"on/off: {best_on / best_off:.3f}  (item path cost of the plan: "
          f"{(1 - best_on / best_off) * 100:.1f}%)")  # fmt: skip


if __name__ == "__main__":
    main()
