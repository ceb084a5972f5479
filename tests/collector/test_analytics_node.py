"""The real `@segment/analytics-node` (from npm, run by node) against `sluice serve`.

`tests/js/send_node.mjs` makes the calls it is given with the library's own `Analytics` client,
waits for `closeAndFlush()` and prints every HTTP request the library made with the status Sluice
answered. The library posts `{batch, writeKey, sentAt}` to `<host>/v1/batch` with Basic auth. Its
32 KB-per-event and 480 KB-per-batch guards measure an event as the number of `%XX` escapes and
letters `i` in its URI-encoded JSON, not its bytes, so plain ASCII passes whatever its size: that
is how it was seen sending 40 KB events in 530 KB batches, which Sluice's default limits must take.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from server import UNKNOWN_KEY, WRITE_KEY, CounterDelta, SluiceServer, StartServer, basic, require
from sluice.spec.timestamps import parse_ms

JS_DIR = Path(__file__).resolve().parent.parent / "js"
SCRIPT = JS_DIR / "send_node.mjs"
LIBRARY_PACKAGE = JS_DIR / "node_modules" / "@segment" / "analytics-node" / "package.json"
LIBRARY_NAME = "@segment/analytics-node"
RUN_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    require(path is not None, "node is not installed")
    assert path is not None
    require(LIBRARY_PACKAGE.is_file(), "analytics-node is missing: run `npm ci --prefix tests/js`")
    return path


@pytest.fixture(scope="module")
def library_version(node: str) -> str:
    version: str = msgspec.json.decode(LIBRARY_PACKAGE.read_bytes())["version"]
    return version


@pytest.fixture(scope="module")
def node_version(node: str) -> str:
    """What the library puts in `_metadata.nodeVersion` (`process.version`)."""
    out = subprocess.run([node, "--version"], capture_output=True, check=True, text=True)
    return out.stdout.strip()


@dataclass(frozen=True, slots=True)
class Sent:
    """What one run of the Node script reported."""

    exit_code: int
    requests: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    delivered: list[str]
    stderr: str

    def __str__(self) -> str:
        requests = [{k: v for k, v in r.items() if k != "messageIds"} for r in self.requests]
        return f"exit {self.exit_code}, requests {requests}, errors {self.errors}\n{self.stderr}"


def send(
    node: str,
    server: SluiceServer,
    calls: list[dict[str, Any]],
    key: str = WRITE_KEY,
    flush_at: int = 15,
) -> Sent:
    """Run the library over `calls` ({"call": "track", "params": {...}}) until it has flushed."""
    command = [node, str(SCRIPT), "--host", server.base_url, "--write-key", key]
    command += ["--flush-at", str(flush_at)]
    proc = subprocess.run(
        command,
        input=msgspec.json.encode(calls),
        capture_output=True,
        cwd=JS_DIR,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    stderr = proc.stderr.decode(errors="replace")
    assert proc.stdout, f"send_node.mjs printed nothing (exit {proc.returncode}):\n{stderr}"
    report = msgspec.json.decode(proc.stdout)
    return Sent(proc.returncode, report["requests"], report["errors"], report["delivered"], stderr)


def every_call(run: str) -> list[dict[str, Any]]:
    """One call of each type, for the user `<run>-user`."""
    user = f"{run}-user"
    return [
        {
            "call": "identify",
            "params": {"userId": user, "traits": {"email": "u1@example.com", "plan": "pro"}},
        },
        {
            "call": "track",
            "params": {
                "userId": user,
                "event": "Order Completed",
                "properties": {"revenue": 9.5, "products": [{"sku": "a", "qty": 2}]},
                "context": {"app": {"name": "shop"}},
                "timestamp": "2024-05-06T07:08:09.123+02:00",
            },
        },
        {
            "call": "page",
            "params": {
                "anonymousId": f"{run}-anon",
                "category": "Docs",
                "name": "Pricing",
                "properties": {"url": "https://e.example/pricing"},
            },
        },
        {"call": "screen", "params": {"userId": user, "name": "Home", "properties": {"n": 1}}},
        {"call": "group", "params": {"userId": user, "groupId": "g1", "traits": {"name": "Acme"}}},
        {"call": "alias", "params": {"userId": user, "previousId": f"{run}-anon"}},
    ]


def with_ids(run: str, calls: list[dict[str, Any]]) -> dict[str, str]:
    """Give each call the messageId `<run>-<index>-<call>`; returns {messageId: call type}."""
    ids = {}
    for index, call in enumerate(calls):
        message_id = f"{run}-{index}-{call['call']}"
        call["params"]["messageId"] = message_id
        ids[message_id] = call["call"]
    return ids


def stored_since(server: SluiceServer, seq: int, run: str) -> dict[str, dict[str, Any]]:
    """This run's events stored after `seq` (the barrier's probe events are left out)."""
    stored = {}
    for event in server.events_after(seq):
        if not event.message_id.startswith(run):
            continue
        payload = msgspec.json.decode(event.payload)
        assert event.source_id == "web"
        assert event.type == payload["type"]
        stored[event.message_id] = payload
    return stored


@pytest.mark.parametrize("flush_at", [15, 1], ids=["one-batch", "one-request-each"])
def test_every_call_type_is_stored_normalised(
    node: str,
    library_version: str,
    node_version: str,
    sluice_server: SluiceServer,
    flush_at: int,
) -> None:
    server = sluice_server
    run = f"node-{uuid.uuid4()}"
    calls = every_call(run)
    ids = with_ids(run, calls)
    seq = server.store.last_seq()

    sent = send(node, server, calls, flush_at=flush_at)

    assert sent.exit_code == 0, str(sent)
    assert sent.errors == []
    assert sorted(sent.delivered) == sorted(ids)
    assert len(sent.requests) == (1 if flush_at > len(calls) else len(calls))
    for request in sent.requests:
        assert request["url"] == f"{server.base_url}/v1/batch"
        assert request["headers"]["Authorization"] == basic(WRITE_KEY)
        assert request["status"] == 200, str(sent)

    stored = stored_since(server, seq, run)
    assert {mid: p["type"] for mid, p in stored.items()} == ids
    for payload in stored.values():
        assert payload["context"]["library"] == {"name": LIBRARY_NAME, "version": library_version}
        assert "ip" not in payload["context"]  # a server library: Sluice collects no IP for it
        assert payload["_metadata"] == {"nodeVersion": node_version, "jsRuntime": "node"}
        assert "writeKey" not in payload
        for field in ("timestamp", "originalTimestamp", "sentAt", "receivedAt"):
            assert payload[field].endswith("Z"), (field, payload[field])
            assert parse_ms(payload[field]) is not None, (field, payload[field])
        # One clock for both sides: the skew correction must not move the event noticeably.
        original = parse_ms(payload["originalTimestamp"])
        corrected = parse_ms(payload["timestamp"])
        if payload["type"] != "track":  # the track call carries an explicit 2024 timestamp
            assert original is not None and corrected is not None
            assert abs(corrected - original) < 5_000

    by_type = {p["type"]: p for p in stored.values()}
    identify = by_type["identify"]
    assert identify["userId"] == f"{run}-user"
    assert identify["traits"] == {"email": "u1@example.com", "plan": "pro"}
    track = by_type["track"]
    assert track["event"] == "Order Completed"
    assert track["properties"] == {"revenue": 9.5, "products": [{"sku": "a", "qty": 2}]}
    assert track["context"]["app"] == {"name": "shop"}
    assert track["originalTimestamp"] == "2024-05-06T05:08:09.123Z"
    page = by_type["page"]
    assert (page["anonymousId"], page["category"], page["name"]) == (
        f"{run}-anon",
        "Docs",
        "Pricing",
    )
    assert page["properties"]["url"] == "https://e.example/pricing"
    screen = by_type["screen"]
    assert (screen["userId"], screen["name"]) == (f"{run}-user", "Home")
    group = by_type["group"]
    assert (group["groupId"], group["traits"]) == ("g1", {"name": "Acme"})
    alias = by_type["alias"]
    assert (alias["userId"], alias["previousId"]) == (f"{run}-user", f"{run}-anon")


def test_a_resent_batch_is_acknowledged_but_not_stored_twice(
    node: str, sluice_server: SluiceServer
) -> None:
    """The library reuses messageIds on retry: a batch sent again must not double the data."""
    server = sluice_server
    run = f"node-{uuid.uuid4()}"
    calls = every_call(run)
    ids = with_ids(run, calls)
    first = send(node, server, calls)
    assert first.exit_code == 0, str(first)
    seq = server.store.last_seq()
    delta = CounterDelta(server)

    again = send(node, server, calls)

    assert again.exit_code == 0, str(again)
    assert [r["status"] for r in again.requests] == [200]
    assert stored_since(server, seq, run) == {}
    delta.settle()
    assert delta[("web", "duplicates")] == len(ids)


def test_unknown_write_key_fails_at_once_and_is_not_retried(
    node: str, sluice_server: SluiceServer
) -> None:
    """Sluice answers 401 where Segment says 200: the library reports it and does not retry."""
    server = sluice_server
    run = f"node-{uuid.uuid4()}"
    calls = every_call(run)
    ids = with_ids(run, calls)
    seq = server.store.last_seq()

    sent = send(node, server, calls, key=UNKNOWN_KEY)

    assert sent.exit_code == 1, str(sent)
    assert [r["status"] for r in sent.requests] == [401]  # one attempt: 4xx is final
    assert {e["messageId"] for e in sent.errors} == set(ids)
    assert all(e["code"] == "delivery_failure" for e in sent.errors)
    assert {r.message_id for r in server.events_after(seq)}.isdisjoint(ids)


@pytest.fixture(scope="module")
def default_server(start_module_server: StartServer) -> SluiceServer:
    """A server with Sluice's default size limits (64 KiB per message, 2 MiB per batch)."""
    return start_module_server({"SLUICE_WORKERS": "1"})


def big_tracks(run: str, count: int, size: int) -> list[dict[str, Any]]:
    """Track calls of about `size` bytes each, in plain ASCII (which the library's guard
    undercounts, so it lets them through)."""
    return [
        {
            "call": "track",
            "params": {
                "userId": f"{run}-user",
                "event": "Report Exported",
                "properties": {"n": n, "blob": "x" * size},
            },
        }
        for n in range(count)
    ]


def test_a_batch_over_500_kb_of_40_kb_events_is_accepted_by_default(
    node: str, default_server: SluiceServer
) -> None:
    server = default_server
    run = f"node-{uuid.uuid4()}"
    calls = big_tracks(run, 14, 40 * 1024)
    ids = with_ids(run, calls)
    seq = server.store.last_seq()

    sent = send(node, server, calls, flush_at=20)

    assert sent.exit_code == 0, str(sent)
    # The library really sent it all in one request, over Segment's documented 500 KB.
    [request] = sent.requests
    assert request["items"] == 14
    assert request["bytes"] > 560_000
    assert request["status"] == 200
    stored = stored_since(server, seq, run)
    assert set(stored) == set(ids)
    for payload in stored.values():
        assert len(msgspec.json.encode(payload)) > 40 * 1024
        assert payload["properties"]["blob"] == "x" * (40 * 1024)
        assert payload["context"]["library"]["name"] == LIBRARY_NAME


def test_an_event_over_the_message_limit_is_rejected_alone(
    node: str, default_server: SluiceServer
) -> None:
    """A 70 KiB event (the library sends it) is over 64 KiB: refused, its batch-mates stored."""
    server = default_server
    run = f"node-{uuid.uuid4()}"
    calls = big_tracks(run, 3, 1024)
    calls[1]["params"]["properties"]["blob"] = "x" * (70 * 1024)
    ids = with_ids(run, calls)
    seq = server.store.last_seq()
    delta = CounterDelta(server)

    sent = send(node, server, calls)

    assert sent.exit_code == 0, str(sent)  # 200 for the batch: the library sees success
    assert [(r["items"], r["status"]) for r in sent.requests] == [(3, 200)]
    too_big = f"{run}-1-track"
    assert set(stored_since(server, seq, run)) == set(ids) - {too_big}
    delta.settle()
    assert delta[("web", "rejected:message_too_large")] == 1
    # Kept for inspection (cut to the limit, so its messageId, after the blob, may be gone).
    [kept] = [r for r in server.store.rejections(100, "web") if r.reason == "message_too_large"]
    assert kept.payload.startswith(b"{")
