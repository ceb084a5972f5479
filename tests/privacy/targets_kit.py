"""What the deletion targets' tests share: a real log holding several users' events of every call
type, loaded by Sluice's own loader, and a search of every value of every table as text."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import msgspec

from sluice.config import Settings
from sluice.store.base import AppendBatch, NewEvent
from sluice.store.sqlite import SqliteStore
from sluice.warehouse.loader import LoadReport, WarehouseLoader

SUBJECT = "u-alice-7f3a"  # distinct enough that finding it as text anywhere means a trace
SUBJECT_EMAIL = "alice.7f3a@example.com"
OTHERS = ("u-bob-2c9d", "u-carol-81ee")
_ids = itertools.count(1)
_hours = itertools.cycle(["10", "11", "12"])


def event(user: str, kind: str, **fields: Any) -> dict[str, Any]:
    at = f"2026-11-28T{next(_hours)}:00:00.123Z"
    return {
        "messageId": f"m-{next(_ids)}",
        "type": kind,
        "userId": user,
        "anonymousId": f"anon-{user}",
        "receivedAt": at,
        "timestamp": at,
        "context": {"ip": "203.0.113.9", "library": {"name": "analytics-python"}},
        **fields,
    }


def user_events(user: str, email: str, amount: Any = 19) -> list[dict[str, Any]]:
    """One of each call type, two event tables, and a property whose type varies by user."""
    return [
        event(user, "identify", traits={"email": email, "plan": "pro"}),
        event(user, "track", event="Order Completed", properties={"total": amount, "sku": "p1"}),
        event(user, "track", event="Signed Up", properties={"method": "email"}),
        event(user, "page", name="Home", properties={"url": "https://example.com/"}),
        event(user, "screen", name="Main"),
        event(user, "group", groupId="g-1", traits={"name": "Acme"}),
        event(user, "alias", previousId=f"anon-{user}"),
    ]


def seed(store: SqliteStore, source: str = "web") -> dict[str, list[str]]:
    """Each user's events appended to the log (bob's first, so that alice's `total` in text is
    discarded from an integer column); returns each user's message ids."""
    by_user: dict[str, list[str]] = {}
    batches = [
        (OTHERS[0], f"{OTHERS[0]}@example.com", 19),
        (SUBJECT, SUBJECT_EMAIL, f"total of {SUBJECT}"),
        (OTHERS[1], f"{OTHERS[1]}@example.com", 25),
    ]
    for user, email, amount in batches:
        msgs = user_events(user, email, amount)
        events = [
            NewEvent(source, m["messageId"], m["type"], m.get("event"), 0, msgspec.json.encode(m))
            for m in msgs
        ]
        store.append(AppendBatch(events=events))
        by_user[user] = [m["messageId"] for m in msgs]
    return by_user


def load(
    store: SqliteStore, data_dir: Path, body: dict[str, Any], chunk: int = 50_000
) -> LoadReport:
    """A load as the worker runs it: the warehouse config opens its backend."""
    loader = WarehouseLoader(
        Settings(data_dir=data_dir), store, msgspec.json.encode(body), chunk_events=chunk
    )
    return loader.load_once()


def texts_holding(rows: list[tuple[str, str, str, int]]) -> list[str]:
    """`schema.table.column` of the (schema, table, column, matches) rows with matches."""
    return sorted(f"{s}.{t}.{c}" for s, t, c, n in rows if n)
