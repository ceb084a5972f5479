"""Helpers for the delivery tests that run the real server: destinations, events, the CLI.

A server here may keep its store in SQLite (its data dir) or PostgreSQL (`SLUICE_DATABASE_URL`
in its env); `sluice()` points the CLI at the same store.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from recorder import Recorded, Recorder
from server import WRITE_KEY, SluiceServer, basic, seed_sources
from sluice.store.base import ConfigObject

StartServer = Callable[..., SluiceServer]


def add_destination(server: SluiceServer, doc: dict[str, Any]) -> None:
    """Put a destination in the running server's workspace, starting at the log's end."""
    store = server.store
    store.commit_cursor(f"destination:{doc['id']}", store.last_seq())
    store.put_config(ConfigObject("destination", doc["id"], msgspec.json.encode(doc)))


def webhook(dest_id: str, recorder: Recorder, **extra: Any) -> dict[str, Any]:
    return {
        "id": dest_id,
        "type": "webhook",
        "sources": ["web"],
        "settings": {"urls": [f"{recorder.base_url}/{dest_id}"]},
        "delivery": {"retry_window_s": 3600},
        **extra,
    }


def track(message_id: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": "user-1",
        "messageId": message_id or f"m-{uuid.uuid4()}",
        "properties": {"revenue": 12.5},
        **fields,
    }


def send(server: SluiceServer, *items: dict[str, Any]) -> None:
    res = server.post(
        "/v1/batch", {"batch": list(items)}, headers={"authorization": basic(WRITE_KEY)}
    )
    assert res.status == 200, res.body


def message_ids(requests: list[Recorded]) -> list[str]:
    return [r.json()["messageId"] for r in requests]


def sluice(server: SluiceServer, *args: str) -> str:
    """Run the CLI against the server's store; its standard output."""
    where = ["--data-dir", str(server.data_dir)]
    url = server.env.get("SLUICE_DATABASE_URL")
    if url:
        where += ["--database-url", url]
    out = subprocess.run(
        [sys.executable, "-m", "sluice", *args, *where],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout


def trace(server: SluiceServer, message_id: str) -> dict[str, Any]:
    report = json.loads(sluice(server, "trace", message_id, "--json"))
    (found,) = report["found"]
    return {hop["destination"]: hop for hop in found["destinations"]}


def status(server: SluiceServer, destination: str) -> dict[str, Any]:
    stats: dict[str, Any] = json.loads(sluice(server, "status", "--json"))["destinations"]
    return stats[destination]  # type: ignore[no-any-return]


def store_env(request: pytest.FixtureRequest, backend: str, data_dir: Path) -> dict[str, str]:
    """One worker process and the test sources, on SQLite or a fresh PostgreSQL database;
    short leases, so a restarted server takes its consumers back within seconds."""
    env = {"SLUICE_WORKERS": "1", "SLUICE_WAREHOUSE_INTERVAL_S": "0", "SLUICE_LEASE_S": "3"}
    url = None
    if backend == "postgres":
        url = request.getfixturevalue("pg_url")
        env["SLUICE_DATABASE_URL"] = url
    seed_sources(data_dir, database_url=url)
    return env
