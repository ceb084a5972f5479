"""Several worker nodes sharing one store: leases, partitions, takeover after kill -9.

Real processes: two `sluice serve --role collector` and two `sluice serve --role worker` sharing
one store: PostgreSQL (a fresh database), and SQLite (one data dir, shared by the processes of a
machine as PostgreSQL is by nodes).
Leases are short here (SLUICE_LEASE_S) so a takeover takes seconds, not the default 30.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from recorder import Recorder
from server import WRITE_KEY, SluiceServer, basic, wait_for
from sluice.delivery.partitions import partition_cursors, partition_of, starting_position
from sluice.store.base import ConfigObject

StartServer = Callable[..., SluiceServer]
LEASE_S = 3.0
ENV = {"SLUICE_LEASE_S": str(LEASE_S), "SLUICE_WAREHOUSE_INTERVAL_S": "0", "SLUICE_WORKERS": "1"}


def test_partition_of_is_by_user_and_stable() -> None:
    a = partition_of({"userId": "u-1", "messageId": "x"}, 4)
    assert a == partition_of({"userId": "u-1", "messageId": "y"}, 4)
    assert partition_of({"anonymousId": "anon"}, 4) == partition_of({"anonymousId": "anon"}, 4)
    spread = {partition_of({"userId": f"u-{i}"}, 4) for i in range(100)}
    assert spread == {0, 1, 2, 3}


def test_new_partitions_start_at_the_destinations_lowest_cursor() -> None:
    cursors = {"destination:d": 50, "destination:d#0/2": 80, "destination:d#1/2": 70, "x": 1}
    assert starting_position(cursors, "d") == 50
    assert partition_cursors(cursors, "d", 2) == {0: 80, 1: 70}
    assert partition_cursors(cursors, "d", 3) == {}
    assert starting_position({"destination:other": 5}, "d") is None


def _holders(store: Any, prefix: str) -> dict[str, str]:
    now_ms = int(time.time() * 1000)
    return {
        lease.name: lease.holder
        for lease in store.leases()
        if lease.name.startswith(prefix) and lease.expires_at_ms > now_ms
    }


@pytest.fixture
def cluster_env(seeded_store: tuple[dict[str, str], Path]) -> tuple[dict[str, str], Path]:
    """Settings shared by every node of the cluster, on a store seeded with the test sources."""
    env, data_dir = seeded_store
    return {**ENV, **env}, data_dir


def test_workers_share_a_partitioned_destination_and_nodes_survive_kill_9(
    start_server: StartServer, recorder: Recorder, cluster_env: tuple[dict[str, str], Path]
) -> None:
    """Two collectors and two workers; one of each is killed with SIGKILL while events flow.

    Every acknowledged event reaches the destination (at least once), and each user's events
    arrive in order. On SQLite the two collectors are two processes of one machine.
    """
    env, data_dir = cluster_env
    collectors = [start_server(env, data_dir=data_dir, args=("--role", "collector"))
                  for _ in range(2)]  # fmt: skip
    store = collectors[0].store
    doc = {
        "id": "hooks",
        "type": "webhook",
        "sources": ["web"],
        "settings": {"urls": [f"{recorder.base_url}/hooks"]},
        "delivery": {"partitions": 2, "concurrency": 1, "retry_window_s": 3600},
    }
    store.commit_cursor("destination:hooks", store.last_seq())
    store.put_config(ConfigObject("destination", "hooks", msgspec.json.encode(doc)))
    workers = [start_server(env, data_dir=data_dir, args=("--role", "worker")) for _ in range(2)]
    pids = {w.proc.pid: w for w in workers if w.proc is not None}

    # Five units (archive, warehouses, retention, two partitions) over two workers: 3 + 2. The
    # partitions may land on one worker; what matters is that both are held and work is spread.
    wait_for(lambda: len(_holders(store, "destination:hooks#")) == 2, 20, what="partitions held")
    wait_for(lambda: len(_holders(store, "worker:delivery:")) == 2, 20, what="both workers live")
    units = _holders(store, "")
    wait_for(
        lambda: (
            {h for n, h in _holders(store, "").items() if not n.startswith("worker:")}
            == set(_holders(store, "worker:").values())
        ),
        20,
        what=f"both workers hold units: {units}",
    )

    users = [f"user-{i}" for i in range(40)]
    sent: list[dict[str, Any]] = []
    live_collectors = list(collectors)
    stop = threading.Event()

    def produce() -> None:
        n = 0
        while not stop.is_set() and n < 60:
            batch = [
                {"type": "track", "event": "Tick", "userId": users[(n * 7 + i) % len(users)],
                 "messageId": f"m-{uuid.uuid4()}", "properties": {"n": n, "i": i}}
                for i in range(25)
            ]  # fmt: skip
            target = live_collectors[n % len(live_collectors)]
            try:
                res = target.post("/v1/batch", {"batch": batch}, key=None,
                                  headers={"authorization": basic(WRITE_KEY)})  # fmt: skip
            except OSError:
                res = None  # the node was killed mid-request: not acknowledged
            if res is not None and res.status == 200:
                sent.extend(batch)
            n += 1
            time.sleep(0.05)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        wait_for(lambda: len(recorder.requests) > 100, 30, what="delivery under way")
        doomed = live_collectors.pop()  # the producer stops sending to it; a request may be
        doomed.kill()  # in flight: it gets no answer and counts as not acknowledged
        victim_holder = _holders(store, "destination:hooks#")["destination:hooks#0/2"]
        victim = pids[os.getpgid(int(victim_holder.split(":")[1]))]  # the lane's server
        victim.kill()
        killed_at = time.monotonic()
        wait_for(
            lambda: (
                _holders(store, "destination:hooks#").get("destination:hooks#0/2")
                not in (None, victim_holder)
            ),
            LEASE_S * 5,
            what="partition 0 taken over",
        )
        takeover_s = time.monotonic() - killed_at
    finally:
        producer.join()
    assert takeover_s < LEASE_S * 3
    assert len(sent) > 1000
    expected = {e["messageId"] for e in sent}
    wait_for(
        lambda: expected <= {r.json()["messageId"] for r in recorder.requests},
        60,
        what="every acknowledged event delivered",
    )
    # At least once; and per user (concurrency 1: one request at a time per partition), first
    # deliveries keep the order the events were sent in, across the takeover.
    first_seen: dict[str, list[str]] = {}
    seen: set[str] = set()
    for r in recorder.requests:
        body = r.json()
        if body["messageId"] not in seen and body["messageId"] in expected:
            seen.add(body["messageId"])
            first_seen.setdefault(body["userId"], []).append(body["messageId"])
    for user in users:
        in_order = [e["messageId"] for e in sent if e["userId"] == user]
        assert first_seen.get(user, []) == in_order, user
    # The survivor runs both partitions now; the victim holds nothing.
    survivors = set(_holders(store, "worker:delivery:").values())
    assert victim_holder not in survivors
    assert set(_holders(store, "destination:hooks#").values()) == survivors
