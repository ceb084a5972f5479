"""Identity consumer throughput: events/s applied to a graph that already holds many profiles.

Builds a log of `--profiles` people (each seen anonymously, then identified with a user id and
an email: 3 events per person, with merges of anonymous and known activity), runs the consumer
over it, then times a second log range of `--events` mixed events (80% returning visitors by
anonymous id, 10% identifies of known users, 10% new visitors) applied on top. Prints events/s
of both phases. Run by hand:

    uv run python bench/identity.py --profiles 1000000 --events 200000
    uv run python bench/identity.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
    uv run python bench/identity.py --profiles 1000000 --both --postgres postgresql://...

`--checkpoints inline` runs SQLite's WAL checkpoints inside the consumer's commits (SQLite's
automatic checkpoint, as before checkpoint.py) instead of on the background thread, to compare.
`--window-days N` gives anonymous_id a limit window (Segment's default rules have none): the
graph then keeps "last seen" for anonymous ids, a row rewrite per returning visitor and hour.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import msgspec
import psycopg
from psycopg import sql

from sluice.identity.consumer import IdentityConsumer
from sluice.identity.rules import Rules, rules_from
from sluice.identity.tables import IdentityDb, PostgresIdentityDb, SqliteIdentityDb
from sluice.store.base import StoredEvent
from sluice.workspace.model import IdentitySettings, IdTypeRule

T0 = 1_765_000_000_000  # one event a second: "last seen" moves as in real traffic


class Log:
    """The events in memory: what the consumer reads is the same either way, and the bench
    then measures the graph, not the log's reads."""

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []

    def add(self, body: dict[str, object]) -> None:
        seq = len(self.events) + 1
        body["messageId"] = f"m{seq}"
        body["timestamp"] = "2026-12-01T00:00:00.000Z"
        self.events.append(
            StoredEvent(seq, "web", f"m{seq}", str(body["type"]), None, T0 + seq * 1000,
                        msgspec.json.encode(body))
        )  # fmt: skip

    def read_after(self, seq: int, limit: int) -> list[StoredEvent]:
        return self.events[seq : seq + limit]  # seqs are 1..n


def person(log: Log, i: int) -> None:
    log.add({"type": "page", "anonymousId": f"a{i}", "context": {"page": {"path": "/"}}})
    log.add({"type": "identify", "anonymousId": f"a{i}", "userId": f"u{i}",
             "traits": {"email": f"p{i}@example.com", "plan": "free", "n": i}})  # fmt: skip
    log.add({"type": "track", "userId": f"u{i}", "event": "Signed Up",
             "properties": {"plan": "free"}})  # fmt: skip


def mixed(log: Log, profiles: int, events: int, rng: random.Random) -> None:
    fresh = profiles
    for _ in range(events):
        roll = rng.random()
        if roll < 0.8:
            i = rng.randrange(profiles)
            log.add({"type": "track", "anonymousId": f"a{i}", "event": "Viewed",
                     "properties": {"sku": rng.randrange(1000)}})  # fmt: skip
        elif roll < 0.9:
            i = rng.randrange(profiles)
            log.add({"type": "identify", "userId": f"u{i}", "traits": {"plan": "pro"}})
        else:
            fresh += 1
            log.add({"type": "page", "anonymousId": f"a{fresh}"})


def run(db: IdentityDb, log: Log, start: int, label: str, step: int, rules: Rules) -> float:
    consumer = IdentityConsumer(log, db, "default", rules, step_events=step)  # type: ignore[arg-type]
    consumer.prepare()
    began, cpu = time.perf_counter(), time.process_time()
    done = consumer.run_until_caught_up()
    seconds = time.perf_counter() - began
    cpu = time.process_time() - cpu
    rate = done / seconds if seconds else 0.0
    print(f"{label}: {done:,} events after seq {start:,} in {seconds:.1f} s: {rate:,.0f} events/s"
          f" (CPU of this process {cpu:.1f} s)")  # fmt: skip
    return rate


def bench(db: IdentityDb, log: Log, build_end: int, backend: str, args: argparse.Namespace) -> None:
    """Build, then the mixed phase on top, on one backend."""
    full = log.events
    log.events = full[:build_end]
    rules = rules_from(
        IdentitySettings(id_types=[IdTypeRule(type="anonymous_id", window_days=args.window_days)])
        if args.window_days
        else None
    )
    label = f"{backend} build ({args.profiles:,} profiles, 3 events each)"
    run(db, log, 0, label, args.step, rules)
    log.events = full
    profiles = db.execute("SELECT count(*) FROM profiles WHERE merged_into IS NULL")[0][0]
    print(f"{backend}: {profiles:,} live profiles before the timed phase")
    run(db, log, build_end, f"{backend} mixed events on top", args.step, rules)
    if isinstance(db, SqliteIdentityDb):
        wal = db.path.with_name(db.path.name + "-wal")
        print(f"SQLite: WAL file {wal.stat().st_size / 2**20:.0f} MiB at the end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--step", type=int, default=5_000)
    parser.add_argument("--checkpoints", choices=("background", "inline"), default="background")
    parser.add_argument("--window-days", type=int, help="a limit window on anonymous_id")
    parser.add_argument("--postgres", help="a server URL: the bench makes and drops a database")
    parser.add_argument(
        "--both", action="store_true", help="SQLite, then PostgreSQL (--postgres) on the same log"
    )
    args = parser.parse_args()
    if args.both and not args.postgres:
        parser.error("--both needs --postgres URL")
    print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    log = Log()
    for i in range(args.profiles):
        person(log, i)
    build_end = len(log.events)
    mixed(log, args.profiles, args.events, random.Random(7))
    if args.both or not args.postgres:
        tmp = Path(tempfile.mkdtemp(prefix="sluice-identity-bench-"))
        try:
            background = args.checkpoints == "background"
            db: IdentityDb = SqliteIdentityDb(
                tmp / "identity.db", background_checkpoints=background
            )
            bench(db, log, build_end, "SQLite", args)
            db.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.postgres:
        name = f"sluice_bench_identity_{uuid.uuid4().hex[:8]}"
        admin = psycopg.connect(args.postgres, autocommit=True)
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            base = args.postgres.rsplit("/", 1)[0]
            db = PostgresIdentityDb(f"{base}/{name}")
            bench(db, log, build_end, "PostgreSQL", args)
            db.close()
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))  # fmt: skip
            admin.close()


if __name__ == "__main__":
    main()
