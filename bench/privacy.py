"""Privacy benchmark: deleting one user from a large archive (issue 22: 10M events < 5 min).

    uv run python bench/privacy.py [--events 10000000] [--files-with-user 10] [--dir /tmp/...]

Writes `--events` archived events of about 600 bytes straight into archive files in Segment's
layout (`segment-logs/<source>/<day>/<first>-<last>.gz`, gzip level 1, 100,000 events a file,
as the archive writer makes them; not through HTTP, and not timed), one user's events in
`--files-with-user` of them. Then, in the same run:

  1. baseline: one pass that only decompresses every file (the floor of any scan);
  2. the archive target's deletion of that user (privacy/targets/archive.py): every file
     decompressed and searched, the files holding the user rewritten without those lines.

Prints events scanned per second and the total time of each, and their ratio, then checks
that no file holds the user any more.

With `--log N` it also fills a SQLite event log with N of the same events (100 of them the
user's) and times the log target's deletion (privacy/targets/log.py) against reading the
whole log once with `read_after` in pages, the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import shutil
import tempfile
import time
import zlib
from pathlib import Path

from sluice.archive.layout import DAY_MS, day_dir, file_name
from sluice.config import Settings
from sluice.privacy.targets.archive import ArchiveTarget
from sluice.privacy.targets.base import Subject
from sluice.privacy.targets.log import LogTarget
from sluice.store.base import AppendBatch, NewEvent
from sluice.store.sqlite import SqliteStore

SOURCES = ("web", "ios", "android", "server")
PER_FILE = 100_000
USER = "bench-user-0451"
DAY0 = 1_717_200_000_000 - 1_717_200_000_000 % DAY_MS
TEMPLATE = (
    '{"type":"track","event":"Order Completed","userId":"%s","messageId":"%032x",'
    '"timestamp":"2024-06-01T10:00:00.000Z","originalTimestamp":"2024-06-01T10:00:00.000Z",'
    '"sentAt":"2024-06-01T10:00:00.120Z","receivedAt":"2024-06-01T10:00:00.300Z",'
    '"properties":{"order_id":"o-%d","total":%d.5,"currency":"USD","products":'
    '[{"product_id":"p-%d","price":19,"quantity":1}]},"context":{"library":{"name":'
    '"analytics.js","version":"next-1.70.0"},"locale":"en-US","ip":"10.1.%d.%d","page":'
    '{"path":"/checkout","referrer":"https://www.example.com/"},"userAgent":"Mozilla/5.0'
    ' (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"},"integrations":{}}'
)


def write_archive(root: Path, events: int, files_with_user: int) -> tuple[int, int, int]:
    """The archive files; returns (files, files holding the user, the user's events)."""
    files = (events + PER_FILE - 1) // PER_FILE
    every = max(files // max(files_with_user, 1), 1)
    user_events = holding = 0
    seq = 1
    for f in range(files):
        n = min(PER_FILE, events - f * PER_FILE)
        holds_user = files_with_user > 0 and f % every == 0 and f // every < files_with_user
        holding += holds_user
        lines = []
        for i in range(n):
            k = seq + i
            user = USER if holds_user and i % 10_000 == 17 else f"user-{k * 7919 % 1_000_003}"
            user_events += user == USER
            lines.append(TEMPLATE % (user, k, k, k % 500, k % 5000, k % 256, k // 256 % 256))
        packer = zlib.compressobj(1, zlib.DEFLATED, 31)
        data = packer.compress(("\n".join(lines) + "\n").encode()) + packer.flush()
        folder = day_dir(root, SOURCES[f % len(SOURCES)], DAY0 + (f // 40) * DAY_MS)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / file_name(seq, seq + n - 1)).write_bytes(data)
        seq += n
    return files, holding, user_events


def decompress_all(root: Path) -> tuple[int, float]:
    start = time.perf_counter()
    lines = 0
    for path in root.rglob("*.gz"):
        lines += gzip.decompress(path.read_bytes()).count(b"\n")
    return lines, time.perf_counter() - start


def bench_log(data_dir: Path, events: int) -> None:
    store = SqliteStore(data_dir / "log.db", synchronous="normal")
    try:
        for base in range(0, events, 10_000):
            batch = AppendBatch()
            for k in range(base + 1, min(base + 10_000, events) + 1):
                user = USER if k % (events // 100 or 1) == 0 else f"user-{k * 7919 % 1_000_003}"
                body = TEMPLATE % (user, k, k, k % 500, k % 5000, k % 256, k // 256 % 256)
                batch.events.append(NewEvent("web", f"{k:032x}", "track", "Order Completed",
                                             1_717_200_000_000, body.encode()))  # fmt: skip
            store.append(batch)
        store.append(AppendBatch(events=[NewEvent("web", "last", "track", None, 1, b"{}")]))
        start = time.perf_counter()
        seq = read = 0
        while page := store.read_after(seq, 5_000):
            seq, read = page[-1].seq, read + len(page)
        base_s = time.perf_counter() - start
        print(f"log baseline (read_after in pages): {read:,} events in {base_s:.1f} s")
        start = time.perf_counter()
        outcome = asyncio.run(LogTarget(store).delete("bench", Subject("USER_ID", (USER,))))
        took = time.perf_counter() - start
        print(
            f"log: delete one user: {outcome.status}, {outcome.detail}; {read:,} events in"
            f" {took:.1f} s, {read / took:,.0f} events/s ({took / base_s:.2f}x the read)"
        )
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--files-with-user", type=int, default=10)
    parser.add_argument("--dir", type=Path, default=None, help="where (default: a temp dir)")
    parser.add_argument("--log", type=int, default=0, help="also time the log leg on N events")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="privacy-bench-", dir=args.dir))
    try:
        if args.log:
            bench_log(data_dir, args.log)
        root = data_dir / "archive"
        started = time.perf_counter()
        files, holding, user_events = write_archive(root, args.events, args.files_with_user)
        size = sum(p.stat().st_size for p in root.rglob("*.gz"))
        print(
            f"archive: {args.events:,} events in {files} files, {size / 1e6:,.0f} MB gzip,"
            f" {user_events} of the user's in {holding} files"
            f" (written in {time.perf_counter() - started:.0f} s, not timed)"
        )
        lines, base_s = decompress_all(root)
        print(f"baseline (decompress only): {lines:,} events in {base_s:.1f} s,"
              f" {lines / base_s:,.0f} events/s")  # fmt: skip
        store = SqliteStore(data_dir / "archive-bench.db")
        try:
            target = ArchiveTarget(Settings(data_dir=data_dir), store)
            start = time.perf_counter()
            outcome = asyncio.run(target.delete("bench", Subject("USER_ID", (USER,))))
            took = time.perf_counter() - start
        finally:
            store.close()
        scanned = target.events_scanned
        print(
            f"delete one user: {outcome.status}, {outcome.detail}; {scanned:,} events scanned"
            f" in {took:.1f} s, {scanned / took:,.0f} events/s"
            f" ({took / base_s:.2f}x the decompress-only pass)"
        )
        assert outcome.removed == user_events, (outcome.removed, user_events)
        left = sum(USER.encode() in gzip.decompress(p.read_bytes()) for p in root.rglob("*.gz"))
        print(f"files still holding the user: {left}")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        os.sync()


if __name__ == "__main__":
    main()
