"""Transformations and PII rules end to end (issue 22, parts 3 and 6): a real `sluice serve`
whose workspace file is applied with `sluice apply`, three webhook destinations pointed at a
recording server, the DuckDB warehouse loaded by `sluice load`, and the log file read back."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from recorder import Recorded, Recorder
from server import PROBE_KEY, CounterDelta, SluiceServer, StartServer, wait_for

WEB, APP = "wk_web_transforms_01", "wk_app_transforms_01"
CARD = "4111 1111 1111 1111"
SECRET_CARD = "4242 4242 4242 4242"


def workspace(recorder: Recorder) -> dict[str, Any]:
    def hook(dest: str) -> dict[str, Any]:
        return {"id": dest, "type": "webhook", "sources": ["web"],
                "settings": {"urls": [f"{recorder.base_url}/{dest}"]}}  # fmt: skip

    return {
        "sources": [{"id": "web", "write_keys": [WEB]}, {"id": "app", "write_keys": [APP]},
                    {"id": "probe", "write_keys": [PROBE_KEY]}],  # CounterDelta's barrier
        "destinations": [hook("a"), hook("b"), hook("c")],
        "transformations": [
            {"id": "fix-order-name", "source": "web", "type": "rename_event",
             "event": "order_completed", "new_event_name": "Order Completed"},
            {"id": "fix-order-id", "source": "web", "type": "rename_properties",
             "event": "order_completed", "renames": [{"old": "order.id", "new": "order_id"}]},
            {"id": "a-signup", "source": "web", "destination": "a", "type": "rename_event",
             "event": "Signed Up", "new_event_name": "signup"},
            {"id": "a-plan", "source": "web", "destination": "a", "type": "rename_properties",
             "event": "Signed Up", "renames": [{"old": "plan", "new": "tier"}]},
        ],
        "privacy": {"pii": {
            "destinations": {"a": {"red": "hash"}, "b": {"red": "block"}},
            "sources": {"app": {"red": "block"}},
        }},
    }  # fmt: skip


def sluice(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice", *args, "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(
    start_module_server: StartServer, recorder: Recorder, tmp_path_factory: pytest.TempPathFactory
) -> SluiceServer:
    tmp = tmp_path_factory.mktemp("transforms")
    file = tmp / "workspace.json"
    file.write_text(json.dumps(workspace(recorder)))  # JSON is YAML
    done = sluice(tmp / "data", "apply", str(file))
    assert done.returncode == 0, done.stderr
    # Warehouse loads only when the test runs `sluice load`.
    env = {"SLUICE_WORKERS": "1", "SLUICE_WAREHOUSE_INTERVAL_S": "100000"}
    return start_module_server(env, data_dir=tmp / "data")


def send(server: SluiceServer, key: str, *items: dict[str, Any]) -> None:
    res = server.post("/v1/batch", {"batch": list(items)}, key=key)
    assert res.status == 200, res.body


def received(recorder: Recorder, message_id: str) -> dict[str, dict[str, Any]]:
    """Destination -> the body it received for `message_id`, once all three have it."""

    def by_destination() -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for r in list(recorder.requests):
            body = _json(r)
            if isinstance(body, dict) and body.get("messageId") == message_id:
                found[r.path.strip("/")] = body
        return found

    wait_for(lambda: len(by_destination()) == 3, timeout=30, what=f"{message_id} at a, b and c")
    return by_destination()


def _json(r: Recorded) -> Any:
    try:
        return r.json()
    except ValueError:
        return None


def stored(server: SluiceServer, message_id: str) -> dict[str, Any]:
    (event,) = server.store.find_events(message_id)
    return dict(json.loads(event.payload))


def test_source_scoped_changes_reach_every_destination_the_log_and_the_warehouse(
    server: SluiceServer, recorder: Recorder
) -> None:
    send(server, WEB, {"type": "track", "event": "order_completed", "userId": "u1",
                       "messageId": "src-1",
                       "properties": {"order": {"id": "o-1"}, "revenue": 5}})  # fmt: skip
    got = received(recorder, "src-1")
    for dest in ("a", "b", "c"):
        assert got[dest]["event"] == "Order Completed", dest
        assert got[dest]["properties"] == {"order_id": "o-1", "revenue": 5}, dest
    log = stored(server, "src-1")
    assert log["event"] == "Order Completed" and log["properties"]["order_id"] == "o-1"
    loaded = sluice(server.data_dir, "load")
    assert loaded.returncode == 0, loaded.stderr
    db = duckdb.connect(str(server.data_dir / "warehouse.duckdb"), read_only=True)
    try:
        rows = db.execute(
            "SELECT event_text, order_id FROM web.order_completed WHERE id = 'src-1'"
        ).fetchall()
        columns = {r[0] for r in db.execute("DESCRIBE web.order_completed").fetchall()}
    finally:
        db.close()
    assert rows == [("Order Completed", "o-1")]
    assert "order_id" in columns and not any(c.startswith("order_id_") for c in columns)


def test_destination_scoped_changes_only_at_that_destination(
    server: SluiceServer, recorder: Recorder
) -> None:
    send(server, WEB, {"type": "track", "event": "Signed Up", "userId": "u2",
                       "messageId": "dst-1", "properties": {"plan": "pro"}})  # fmt: skip
    got = received(recorder, "dst-1")
    assert got["a"]["event"] == "signup" and got["a"]["properties"] == {"tier": "pro"}
    for dest in ("b", "c"):
        assert got[dest]["event"] == "Signed Up" and got[dest]["properties"] == {"plan": "pro"}
    log = stored(server, "dst-1")
    assert log["event"] == "Signed Up" and log["properties"] == {"plan": "pro"}


def test_a_card_number_is_hashed_for_a_removed_for_b_untouched_for_c(
    server: SluiceServer, recorder: Recorder
) -> None:
    send(server, WEB, {"type": "track", "event": "Paid", "userId": "u3", "messageId": "pii-1",
                       "properties": {"card": CARD, "plan": "pro"}})  # fmt: skip
    got = received(recorder, "pii-1")
    assert got["a"]["properties"] == {
        "card": hashlib.sha256(CARD.encode()).hexdigest(),
        "plan": "pro",
    }
    assert got["b"]["properties"] == {"plan": "pro"}
    assert got["c"]["properties"] == {"card": CARD, "plan": "pro"}
    assert stored(server, "pii-1")["properties"]["card"] == CARD  # no rule at source web


def test_block_red_at_source_keeps_it_out_of_the_log_file(server: SluiceServer) -> None:
    delta = CounterDelta(server)
    send(server, APP, {"type": "identify", "userId": "u4", "messageId": "src-pii-1",
                       "traits": {"password": "hunter2-marker", "plan": "marker-plan-77"},
                       "properties": {"creditCard": "x"},
                       "context": {"note": SECRET_CARD}})  # fmt: skip
    log = stored(server, "src-pii-1")
    assert log["traits"] == {"plan": "marker-plan-77"}
    assert "note" not in log.get("context", {}) and log["properties"] == {}
    assert delta.settle()[("app", "pii_blocked")] == 3
    status = sluice(server.data_dir, "status")
    assert status.returncode == 0, status.stderr
    assert "source app at ingest: 3 PII fields blocked" in status.stdout
    files = [p for p in server.data_dir.iterdir() if p.name.startswith("log.db")]
    raw = b"".join(p.read_bytes() for p in files)
    assert b"marker-plan-77" in raw  # the event is in these files...
    assert SECRET_CARD.encode() not in raw and b"hunter2-marker" not in raw  # ...without them
