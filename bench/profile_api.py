"""Profile API latency: p50/p99 of `/traits` and `/events` for random profiles, over HTTP.

Builds a data dir whose log holds `--profiles` people (a page by anonymous id, an identify
joining it to a user id and an email, then `--tracks` track calls), resolves them, starts
`sluice serve` on it and times `--requests` GETs of each route for random user ids, one
keep-alive connection, one request at a time. Run by hand:

    uv run python bench/profile_api.py --profiles 100000 --requests 2000
    uv run python bench/profile_api.py --profiles 1000000 --fill direct
    uv run python bench/profile_api.py --verify 2000     # direct fill == the consumer's tables

`--fill consumer` (the default) resolves the log with the identity consumer, as the worker
does: at 1,000,000 people (10,000,000 events) that takes hours on a small machine. `--fill
direct` writes the very rows the consumer would write for this log (sorted by key, indexes made
after), in minutes; `--verify N` builds N people both ways and checks that every table is equal,
row for row, so the direct fill measures the same tables the consumer makes.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import msgspec

from sluice.identity.consumer import IdentityConsumer
from sluice.identity.graph import profile_id
from sluice.identity.rules import USERS, rules_from
from sluice.identity.tables import _SCHEMA, TABLES, SqliteIdentityDb
from sluice.spec.timestamps import parse_ms
from sluice.store.base import AppendBatch, NewEvent
from sluice.store.sqlite import SqliteStore

SLUICE = [sys.executable, "-m", "sluice"]
SPACE = "bench"
TIMESTAMP = "2026-12-01T00:00:00.000Z"
INDEXES = ("identities_profile", "profiles_merged_into", "merges_winner")
CHUNK = 200_000


def sluice(data: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    done = subprocess.run(
        [*SLUICE, *args, "--data-dir", str(data)], env=env, capture_output=True, text=True
    )
    done.check_returncode()
    return done.stdout


def received_base(profiles: int, tracks: int) -> int:
    """When the log's events were received: one a millisecond, the last an hour ago (never in
    the future, where the collector's dedupe window would keep them all)."""
    return int(time.time() * 1000) - 3_600_000 - profiles * (2 + tracks)


def fill(data: Path, profiles: int, tracks: int, now: int) -> int:
    """The log: person i's events are seqs i*(2+tracks)+1 on, received at `now` + seq ms."""
    store = SqliteStore(data / "log.db")
    batch: list[NewEvent] = []
    n = 0

    def add(body: dict[str, object]) -> None:
        nonlocal n
        n += 1
        body["messageId"] = f"m{n}"
        body["timestamp"] = TIMESTAMP
        event = body.get("event")
        batch.append(
            NewEvent("web", f"m{n}", str(body["type"]), event if isinstance(event, str) else None,
                     now + n, msgspec.json.encode(body))
        )  # fmt: skip
        if len(batch) == 5000:
            store.append(AppendBatch(events=batch))
            batch.clear()

    for i in range(profiles):
        add({"type": "page", "anonymousId": f"a{i}", "name": "Home"})
        add({"type": "identify", "anonymousId": f"a{i}", "userId": f"u{i}",
             "traits": {"email": f"p{i}@example.com", "plan": "free", "n": i}})  # fmt: skip
        for t in range(tracks):
            add({"type": "track", "userId": f"u{i}", "event": f"Viewed {t % 5}",
                 "properties": {"t": t}})  # fmt: skip
    if batch:
        store.append(AppendBatch(events=batch))
    store.close()
    return n


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def resolve(data: Path) -> None:
    """The identity consumer over the whole log, as the worker runs it."""
    consumer = IdentityConsumer(
        SqliteStore(data / "log.db"),
        SqliteIdentityDb(data / "identity.db"),
        SPACE,
        rules_from(None),
    )
    consumer.prepare()
    consumer.run_until_caught_up()


def direct(data: Path, profiles: int, tracks: int, now: int) -> None:
    """The rows the consumer writes for `fill`'s log, written in key order (`--verify`)."""
    per = 2 + tracks
    updated = parse_ms(TIMESTAMP)
    db = SqliteIdentityDb(data / "identity.db")
    conn = db.conn
    indexes = [s for s in _SCHEMA if any(f"EXISTS {name} " in s for name in INDEXES)]
    for name in INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    pids = [profile_id(SPACE, USERS, f"m{i * per + 1}", now + i * per + 1) for i in range(profiles)]
    order = sorted(range(profiles), key=pids.__getitem__)

    def insert(sql: str, rows: Iterator[tuple[object, ...]]) -> None:
        chunk: list[tuple[object, ...]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == CHUNK:
                conn.executemany(sql, chunk)
                chunk.clear()
        conn.executemany(sql, chunk)

    conn.execute("BEGIN")
    insert(
        "INSERT INTO profiles (space, profile_id, collection, merged_into, first_seq, created_ms,"
        " updated_ms, first_message_id, first_source_id) VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?)",
        ((SPACE, pids[i], USERS, i * per + 1, now + i * per + 1, now + i * per + 1,
          f"m{i * per + 1}", "web") for i in order),
    )  # fmt: skip
    ids = []
    for i in range(profiles):
        first = i * per + 1
        ids.append(("anonymous_id", f"a{i}", pids[i], first))
        ids.append(("user_id", f"u{i}", pids[i], first + 1))
        ids.append(("email", f"p{i}@example.com", pids[i], first + 1))
    ids.sort()
    insert(
        "INSERT INTO identities (space, collection, id_type, id_value, profile_id, source_id,"
        " first_message_id, first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ((SPACE, USERS, t, v, p, "web", f"m{seq}", now + seq, now + seq) for t, v, p, seq in ids),
    )
    del ids
    insert(
        "INSERT INTO profile_traits (space, profile_id, key, value, source_id, updated_ms, seq)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (row for i in order for row in (
            (SPACE, pids[i], "email", f'"p{i}@example.com"', "web", updated, i * per + 2),
            (SPACE, pids[i], "n", str(i), "web", updated, i * per + 2),
            (SPACE, pids[i], "plan", '"free"', "web", updated, i * per + 2),
        )),
    )  # fmt: skip
    insert(
        "INSERT INTO profile_events (space, profile_id, seq) VALUES (?, ?, ?)",
        ((SPACE, pids[i], i * per + k) for i in order for k in range(1, per + 1)),
    )
    last = profiles * per
    conn.execute(
        "INSERT INTO identity_position (space, seq, clock_ms, first_seq, rules, rebuild_needed,"
        " events, merges, refused, demoted) VALUES (?, ?, ?, 1, ?, 0, ?, 0, 0, 0)",
        [SPACE, last, now + last, rules_from(None).fingerprint, last],
    )
    for statement in indexes:
        conn.execute(statement)
    conn.execute("COMMIT")
    db.close()


def build(data: Path, profiles: int, tracks: int, how: str, now: int) -> int:
    ws = data.parent / "ws.yaml"
    ws.write_text(f"workspace: {SPACE}\nsources: [{{id: web}}]\n")
    sluice(data, "apply", str(ws))
    started = time.perf_counter()
    events = fill(data, profiles, tracks, now)
    print(f"log: {events} events in {time.perf_counter() - started:.0f} s", flush=True)
    started = time.perf_counter()
    if how == "consumer":
        resolve(data)
    else:
        direct(data, profiles, tracks, now)
    print(f"identity tables ({how}): {time.perf_counter() - started:.0f} s", flush=True)
    return events


def verify(profiles: int, tracks: int) -> None:
    """Both fills of the same log give the same tables, row for row."""
    now = received_base(profiles, tracks)
    root = Path(tempfile.mkdtemp(prefix="sluice-papi-verify-"))
    dirs = {how: root / how / "data" for how in ("consumer", "direct")}
    for how, data in dirs.items():
        data.parent.mkdir(parents=True)
        build(data, profiles, tracks, how, now)
    dbs = {how: SqliteIdentityDb(data / "identity.db") for how, data in dirs.items()}
    for table in (*TABLES, "identity_position"):
        rows = {how: sorted(db.execute(f"SELECT * FROM {table}")) for how, db in dbs.items()}
        if rows["consumer"] != rows["direct"]:
            raise SystemExit(f"{table}: the direct fill differs from the consumer's")
        print(f"{table}: {len(rows['direct'])} rows, equal")


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) of a process and its descendants, from /proc: the server's
    cost per request, which other work on a shared machine does not inflate as it does
    latency."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total


def report(what: str, times: list[float], cpu_s: float | None = None) -> None:
    per = f", server CPU {cpu_s * 1000 / len(times):.2f} ms a request" if cpu_s else ""
    print(
        f"{what}: {len(times)} requests, p50 {percentile(times, 50):.2f} ms,"
        f" p99 {percentile(times, 99):.2f} ms, max {max(times):.2f} ms{per}",
        flush=True,
    )


def time_ui(
    data: Path, port: int, pid: int, profiles: int, requests: int, rng: random.Random
) -> None:
    """The UI's search (a redirect) and profile page (20 events, each id's fate) for random
    users, signed in through the real form."""
    email, password = "bench@example.com", "bench password 1234"
    again = ("--update",) if email in sluice(data, "admin", "list") else ()
    sluice(data, "admin", "create", email, "--password", password, *again)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/signin")
    res = conn.getresponse()
    body = res.read()
    cookie = "; ".join(v.split(";")[0] for k, v in res.getheaders() if k.lower() == "set-cookie")
    csrf = body.split(b'name="csrf_token" value="')[1].split(b'"')[0].decode()
    form = urllib.parse.urlencode({"csrf_token": csrf, "email": email, "password": password})
    conn.request("POST", "/signin", form, {"content-type": "application/x-www-form-urlencoded",
                                          "cookie": cookie})  # fmt: skip
    res = conn.getresponse()
    res.read()
    cookie = "; ".join(v.split(";")[0] for k, v in res.getheaders() if k.lower() == "set-cookie")
    headers = {"cookie": cookie}
    searches: list[float] = []
    pages: list[float] = []
    cpu_before = 0.0
    for i in range(requests + 5):
        if i == 5:
            cpu_before = tree_cpu_s(pid)
        user = rng.randrange(profiles)
        began = time.perf_counter()
        conn.request("GET", f"/profiles?q=user_id:u{user}", headers=headers)
        res = conn.getresponse()
        res.read()
        found = res.getheader("location")
        if res.status != 303 or not found:
            raise SystemExit(f"search user_id:u{user}: {res.status}")
        middle = time.perf_counter()
        conn.request("GET", found, headers=headers)
        res = conn.getresponse()
        page = res.read()
        if res.status != 200 or f"u{user}".encode() not in page:
            raise SystemExit(f"{found}: {res.status}")
        if i >= 5:
            searches.append((middle - began) * 1000)
            pages.append((time.perf_counter() - middle) * 1000)
    cpu_s = tree_cpu_s(pid) - cpu_before
    report("UI /profiles?q= (search)", searches)
    report("UI /profiles/<id>", pages)
    print(f"UI: server CPU {cpu_s * 1000 / len(pages):.2f} ms a search and page", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--tracks", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--fill", choices=("consumer", "direct"), default="consumer")
    parser.add_argument("--verify", type=int, metavar="N", help="check the direct fill, N people")
    parser.add_argument("--reuse", type=Path, help="a data dir this script built (same --profiles)")
    parser.add_argument("--ui", action="store_true", help="also time the UI's profile page")
    args = parser.parse_args()
    if args.verify:
        verify(args.verify, args.tracks)
        return
    if args.reuse:
        data = args.reuse
    else:
        data = Path(tempfile.mkdtemp(prefix="sluice-papi-")) / "data"
        started = time.perf_counter()
        now = received_base(args.profiles, args.tracks)
        events = build(data, args.profiles, args.tracks, args.fill, now)
        print(
            f"built {args.profiles} profiles, {events} events"
            f" in {time.perf_counter() - started:.0f} s ({data})"
        )
    token = sluice(data, "token", "create", "--scope", "profile").split()[0]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    server = subprocess.Popen(
        [*SLUICE, "serve", "--data-dir", str(data), "--port", str(port)],
        # The HTTP role only: a worker would archive and load the whole log meanwhile. A dedupe
        # window of 1 s: the built log was all received in the last hours, and each HTTP
        # process would otherwise spend its first minute loading its 10M message ids (a
        # quarter of a core, measured), which has nothing to do with reading profiles.
        env={**env, "SLUICE_WORKERS": "1", "SLUICE_PROFILE_API_RATE_LIMIT": "0",
             "SLUICE_ROLE": "collector", "SLUICE_DEDUPE_WINDOW_S": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        deadline = time.monotonic() + 30
        while True:
            try:
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                conn.close()
                time.sleep(0.2)
        auth = {"Authorization": "Basic " + base64.b64encode(f"{token}:".encode()).decode()}
        rng = random.Random(7)
        for route in ("traits", "events", "external_ids"):
            times: list[float] = []
            cpu_before = 0.0
            for i in range(args.requests + 50):
                if i == 50:
                    cpu_before = tree_cpu_s(server.pid)
                user = rng.randrange(args.profiles)
                path = f"/v1/spaces/{SPACE}/collections/users/profiles/user_id:u{user}/{route}"
                began = time.perf_counter()
                conn.request("GET", path, headers=auth)
                res = conn.getresponse()
                res.read()
                if res.status != 200:
                    raise SystemExit(f"{path}: {res.status}")
                if i >= 50:  # the first requests warm caches and open the identity tables
                    times.append((time.perf_counter() - began) * 1000)
            report(f"/{route}", times, tree_cpu_s(server.pid) - cpu_before)
        if args.ui:
            time_ui(data, port, server.pid, args.profiles, max(args.requests // 10, 20), rng)
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
