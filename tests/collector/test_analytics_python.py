"""The real `segment-analytics-python` client against `sluice serve`: every call type, batch and
sync modes, gzip, and its retries after a 429 from the per-source rate limit."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from segment.analytics.client import Client

from server import UNKNOWN_KEY, WRITE_KEY, CounterDelta, SluiceServer, StartServer
from sluice.spec.timestamps import parse_ms


class Errors:
    """An `on_error` callback that records what the client reports."""

    def __init__(self) -> None:
        self.seen: list[tuple[Exception, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, error: Exception, batch: Any) -> None:
        with self._lock:
            self.seen.append((error, batch))


@pytest.fixture
def make_client() -> Iterator[Any]:
    clients: list[Client] = []

    def make(server: SluiceServer, errors: Errors, key: str = WRITE_KEY, **options: Any) -> Client:
        # Short waits and few retries: a test that fails must not sit in the client's backoff.
        options.setdefault("upload_interval", 0.05)
        options.setdefault("timeout", 10)
        options.setdefault("max_retries", 3)
        client = Client(key, host=server.base_url, on_error=errors, **options)
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            if client.consumers:
                client.join()


def send_every_call(client: Client, run: str) -> dict[str, str]:
    """One call of each type; returns {messageId: type}."""
    sent = {
        f"{run}-identify": "identify",
        f"{run}-track": "track",
        f"{run}-page": "page",
        f"{run}-screen": "screen",
        f"{run}-group": "group",
        f"{run}-alias": "alias",
    }
    at = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    client.identify("u1", {"email": "u1@example.com"}, message_id=f"{run}-identify")
    client.track(
        "u1",
        "Order Completed",
        {"revenue": 9.5, "products": [{"sku": "a"}]},
        context={"app": {"name": "shop"}},
        timestamp=at,
        message_id=f"{run}-track",
    )
    client.page("u1", "Docs", "Pricing", {"url": "https://e.example/p"}, message_id=f"{run}-page")
    client.screen("u1", "App", "Home", message_id=f"{run}-screen")
    client.group("u1", "g1", {"name": "Acme"}, message_id=f"{run}-group")
    client.alias("anon-1", "u1", message_id=f"{run}-alias")
    return sent


def stored_since(server: SluiceServer, seq: int) -> dict[str, tuple[Any, dict[str, Any]]]:
    return {e.message_id: (e, msgspec.json.decode(e.payload)) for e in server.events_after(seq)}


@pytest.mark.parametrize(
    "options",
    [{}, {"gzip": True}, {"sync_mode": True}, {"sync_mode": True, "gzip": True}],
    ids=["batch", "batch-gzip", "sync", "sync-gzip"],
)
def test_every_call_type(
    sluice_server: SluiceServer, make_client: Any, options: dict[str, Any]
) -> None:
    server = sluice_server
    errors = Errors()
    client = make_client(server, errors, **options)
    seq = server.store.last_seq()
    run = f"py-{uuid.uuid4()}"
    sent = send_every_call(client, run)
    client.flush()
    assert errors.seen == []
    stored = stored_since(server, seq)
    assert {mid: e.type for mid, (e, _) in stored.items()} == sent
    for event, payload in stored.values():
        assert event.source_id == "web"
        assert payload["context"]["library"]["name"] == "analytics-python"
        assert "ip" not in payload["context"]  # a server library: no IP collection
        assert "writeKey" not in payload
        for field in ("timestamp", "originalTimestamp", "sentAt", "receivedAt"):
            assert payload[field].endswith("Z"), (field, payload[field])
            assert parse_ms(payload[field]) is not None
    _, track = stored[f"{run}-track"]
    assert track["event"] == "Order Completed"
    assert track["properties"] == {"revenue": 9.5, "products": [{"sku": "a"}]}
    assert track["context"]["app"] == {"name": "shop"}
    assert track["originalTimestamp"] == "2024-05-06T05:08:09.123Z"
    _, alias = stored[f"{run}-alias"]
    assert (alias["previousId"], alias["userId"]) == ("anon-1", "u1")
    _, group = stored[f"{run}-group"]
    assert (group["groupId"], group["traits"]) == ("g1", {"name": "Acme"})
    _, page = stored[f"{run}-page"]
    assert (page["category"], page["name"]) == ("Docs", "Pricing")


def test_skew_correction_with_the_clients_sent_at(
    sluice_server: SluiceServer, make_client: Any
) -> None:
    """The client stamps the batch `sentAt`; the stored timestamp is corrected with it."""
    server = sluice_server
    errors = Errors()
    client = make_client(server, errors, sync_mode=True)
    seq = server.store.last_seq()
    at = datetime.now(tz=UTC) - timedelta(minutes=5)
    client.track("u1", "Old Event", timestamp=at, message_id=f"py-{uuid.uuid4()}")
    assert errors.seen == []
    [(event, payload)] = stored_since(server, seq).values()
    original = parse_ms(payload["originalTimestamp"])
    sent = parse_ms(payload["sentAt"])
    corrected = parse_ms(payload["timestamp"])
    assert original is not None and sent is not None and corrected is not None
    assert sent - original >= 5 * 60 * 1000
    assert corrected == event.received_at_ms - (sent - original)


def test_retries_reuse_message_ids_and_are_stored_once(
    sluice_server: SluiceServer, make_client: Any
) -> None:
    server = sluice_server
    errors = Errors()
    client = make_client(server, errors, sync_mode=True)
    seq = server.store.last_seq()
    message_id = f"py-{uuid.uuid4()}"
    for _ in range(3):
        client.track("u1", "Retried", message_id=message_id)
    assert errors.seen == []
    assert [e.message_id for e in server.events_after(seq)] == [message_id]


def test_an_unknown_write_key_is_reported_not_retried(
    sluice_server: SluiceServer, make_client: Any
) -> None:
    server = sluice_server
    errors = Errors()
    client = make_client(server, errors, key=UNKNOWN_KEY)
    seq = server.store.last_seq()
    client.track("u1", "Lost", message_id=f"py-{uuid.uuid4()}")
    client.flush()
    assert len(errors.seen) == 1
    error = errors.seen[0][0]
    assert (getattr(error, "status", None), getattr(error, "code", None)) == (
        401,
        "invalid_write_key",
    )
    assert server.events_after(seq) == []


def test_retries_after_429_store_every_event_once(
    start_server: StartServer, make_client: Any
) -> None:
    server = start_server(
        {
            "SLUICE_RATE_LIMIT_PER_SOURCE": "20",
            "SLUICE_RATE_LIMIT_BURST": "20",
            "SLUICE_WORKERS": "1",  # for the counter barrier (CounterDelta.settle)
        }
    )
    delta = CounterDelta(server)
    errors = Errors()
    client = make_client(server, errors, upload_size=10, max_rate_limit_duration=60)
    ids = [f"py-{uuid.uuid4()}" for _ in range(60)]
    for index, message_id in enumerate(ids):
        client.track(f"u{index}", "Rate Limited", {"n": index}, message_id=message_id)
    client.flush()
    assert errors.seen == []
    stored = [e for e in server.events_after(0) if e.source_id == "web"]
    assert sorted(e.message_id for e in stored) == sorted(ids)
    delta.settle()
    assert delta[("web", "stored")] == 60
    assert delta[("web", "duplicates")] == 0
    # The limit was hit: the client got 429s and came back after Retry-After.
    assert delta[("web", "throttled")] > 0
