"""The cost of PII rules and transformations on the delivery path: `plan()` (routing, filters,
the destination's stage, mappings) over the same events for a webhook destination without any
rule, with a destination-scoped transformation, with a PII rule hashing Red and blocking Yellow
(Segment's default matchers plus 5 custom ones), and both; alternating in one run, best of
`--rounds`. Also the ingest stage (a source's transformation and "block Red at source") alone.

    uv run python bench/pii.py            # --events 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from sluice.delivery.config import compile_destination
from sluice.delivery.plan import plan
from sluice.store.base import StoredEvent
from sluice.transform.stages import build_destinations, build_ingest
from sluice.workspace.model_privacy import PiiSettings
from sluice.workspace.model_transformations import Transformation

HOOK = {"id": "hook", "type": "webhook", "settings": {"urls": ["http://127.0.0.1:9/h"]}}
PII = msgspec.convert(
    {
        "matchers": [
            {"name": "loyalty", "classification": "red", "terms": ["loyalty number"]},
            {"name": "employee", "classification": "yellow", "target": "value",
             "match": "regex", "terms": [r"^EMP-\d{6}$"]},
            {"name": "plan code", "classification": "yellow", "match": "similar",
             "terms": ["plan code"]},
            {"name": "codename", "classification": "red", "target": "value", "terms": ["falcon"]},
            {"name": "sku", "classification": "green", "terms": ["sku"]},
        ],
        "destinations": {"hook": {"red": "hash", "yellow": "block"}},
        "sources": {"web": {"red": "block"}},
    },
    PiiSettings,
)  # fmt: skip
TRANSFORMS = [
    msgspec.convert(
        {"id": "t", "source": "web", "destination": "hook", "type": "rename_properties",
         "event": "Order Completed", "renames": [{"old": "order.id", "new": "order_id"}]},
        Transformation,
    ),
    msgspec.convert(
        {"id": "s", "source": "web", "type": "rename_event", "event": "Order Completed",
         "new_event_name": "Order Done"},
        Transformation,
    ),
]  # fmt: skip


def event(i: int) -> dict[str, Any]:
    """A ~900-byte track event: Segment's context, a few PII-looking fields, most not."""
    return {
        "type": "track",
        "event": "Order Completed" if i % 2 else "Product Viewed",
        "userId": f"user-{i}",
        "anonymousId": str(uuid.UUID(int=i)),
        "messageId": f"m-{i}",
        "timestamp": "2026-12-06T10:00:00.000Z",
        "receivedAt": "2026-12-06T10:00:00.000Z",
        "context": {
            "ip": "203.0.113.7",
            "library": {"name": "analytics.js", "version": "5.2.0"},
            "page": {
                "path": "/checkout",
                "url": "https://shop.example/checkout",
                "title": "Checkout",
                "referrer": "https://shop.example/cart",
            },
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0",
            "locale": "en-GB",
            "traits": {"email": f"user{i}@example.com", "plan": "pro"},
        },
        "properties": {
            "order": {"id": f"o-{i}", "total": 42.5},
            "revenue": 42.5,
            "currency": "EUR",
            "coupon": "WINTER",
            "sku": "SKU-1",
            "products": [{"product_id": "p1", "name": "Tea", "price": 4.5, "quantity": 2}],
            "card": "4111 1111 1111 1111" if i % 10 == 0 else None,
            "shipping_city": "Lyon",
            "loyalty_number": f"L{i}",
        },
    }


def rate(run: Callable[[], None], n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n = args.events
    bodies = [msgspec.json.encode(event(i)) for i in range(n)]
    stored = [
        StoredEvent(i + 1, "web", f"m-{i}", "track", None, 0, b) for i, b in enumerate(bodies)
    ]
    print(f"{n} events of {sum(map(len, bodies)) // n} bytes on average, best of {args.rounds}")

    transforms_only = build_destinations(TRANSFORMS, None)["hook"]
    pii_only = build_destinations([], PII)["hook"]
    both = build_destinations(TRANSFORMS, PII)["hook"]
    configs = {
        "no rule": compile_destination(HOOK),
        "transformation": compile_destination(HOOK, transforms_only),
        "PII rule": compile_destination(HOOK, pii_only),
        "PII rule + transformation": compile_destination(HOOK, both),
    }
    results: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(3):  # alternate: the machine's speed drifts during a run
        for name, config in configs.items():
            results[name].append(rate(lambda c=config: plan(c, stored), n, args.rounds))
    base = max(results["no rule"])
    print("\ndelivery path: plan() for one webhook destination")
    for name, rates in results.items():
        best = max(rates)
        print(f"  {name:28s} {best:>10,.0f} events/s  {best / base:6.1%} of no rule")

    stage = build_ingest(TRANSFORMS, PII)["web"]
    decode = msgspec.json.Decoder().decode

    def decode_only() -> None:
        for b in bodies:
            decode(b)

    def with_stage() -> None:
        for b in bodies:
            stage.apply(decode(b))

    plain = rate(decode_only, n, args.rounds)
    staged = rate(with_stage, n, args.rounds)
    print("\ningest stage (source transformation + block Red at source), per decoded event")
    print(f"  decode only                  {plain:>10,.0f} events/s")
    print(f"  decode + stage               {staged:>10,.0f} events/s"
          f"  (stage {1e6 / staged - 1e6 / plain:.1f} µs per event)")  # fmt: skip


if __name__ == "__main__":
    main()
