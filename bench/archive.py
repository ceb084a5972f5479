"""Archive benchmark: how fast the archive writer turns the log into gzip NDJSON files.

    uv run python bench/archive.py [--events 1000000] [--level 3] [--max-file-mb 100] [--s3]

Appends `--events` events of about 650 bytes (normalised track calls from four sources, as the
collector stores them) to a fresh SQLite store in a temporary folder (not timed), then times
`ArchiveWriter.step` until the log is drained plus the final `close` (which finalizes, fsyncs
and renames the open files), and prints events/s, MB/s of JSON in, CPU time per event (the
figure to compare on a busy machine) and the compression ratio.

With `--s3` the same log is then archived again with `SLUICE_ARCHIVE_STORAGE=s3` to a moto
server this script starts on a loopback port (tests/s3server.py): every file is uploaded and
verified before the run ends, so the two figures of one run compare local and bucket storage.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgspec

from sluice.archive.layout import logs_dir
from sluice.archive.writer import CURSOR, DEFAULT_LEVEL, ArchiveWriter
from sluice.config import Settings
from sluice.spec.timestamps import format_ms
from sluice.store.base import AppendBatch, NewEvent
from sluice.store.sqlite import SqliteStore

SOURCES = ("web", "ios", "android", "server")
EVENTS = ("Order Completed", "Product Viewed", "Checkout Started", "Signed Up")
APPEND_BATCH = 10_000


def payload(n: int, rng: random.Random, received_ms: int) -> tuple[str, str, bytes]:
    message_id = str(uuid.UUID(int=rng.getrandbits(128)))
    name = EVENTS[n % len(EVENTS)]
    sent = format_ms(received_ms - rng.randrange(50, 500))
    event = {
        "type": "track",
        "event": name,
        "userId": f"user-{rng.randrange(1_000_000)}",
        "messageId": message_id,
        "timestamp": sent,
        "originalTimestamp": sent,
        "sentAt": sent,
        "receivedAt": format_ms(received_ms),
        "properties": {
            "order_id": f"o-{n}",
            "total": round(rng.uniform(5, 500), 2),
            "currency": "USD",
            "products": [{"product_id": f"p-{rng.randrange(5000)}", "price": 19, "quantity": 1}],
        },
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
            "locale": "en-US",
            "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
            "page": {"path": "/checkout", "referrer": "https://www.example.com/"},
            "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15",
        },
        "integrations": {},
    }
    return message_id, name, msgspec.json.encode(event)


def fill(store: SqliteStore, events: int) -> int:
    rng = random.Random(7)
    start_ms = int(time.time() * 1000) - events // 10  # ~10,000 events/s of history
    total_bytes = 0
    for base in range(0, events, APPEND_BATCH):
        batch = AppendBatch()
        for n in range(base, min(base + APPEND_BATCH, events)):
            received = start_ms + n // 10
            message_id, name, body = payload(n, rng, received)
            total_bytes += len(body)
            batch.events.append(
                NewEvent(SOURCES[n % len(SOURCES)], message_id, "track", name, received, body)
            )
        store.append(batch)
    return total_bytes


def run_writer(
    settings: Settings, store: SqliteStore, level: int
) -> tuple[int, float, float, float]:
    """Archive the whole log from its start: (events, seconds, CPU s, main thread CPU s)."""
    store.commit_cursor(CURSOR, 0)
    writer = ArchiveWriter(settings, store, level=level)
    started = time.perf_counter()
    cpu_started, main_started = time.process_time(), time.thread_time()
    written = 0
    while (n := writer.step()) > 0:
        written += n
    writer.close()
    elapsed = time.perf_counter() - started
    return (
        written,
        elapsed,
        time.process_time() - cpu_started,
        time.thread_time() - main_started,
    )


def print_figures(
    title: str, figures: tuple[int, float, float, float], json_bytes: int, files: int, gz: int
) -> None:
    written, elapsed, cpu, main_cpu = figures
    print(f"{title}: {written:,} events in {elapsed:.2f} s")
    print(f"  {written / elapsed:,.0f} events/s")
    print(f"  {json_bytes / elapsed / 1e6:,.1f} MB/s of JSON in")
    print(
        f"  CPU {cpu / written * 1e6:.2f} us/event: {main_cpu / written * 1e6:.2f} reading,"
        f" grouping (and uploading), {(cpu - main_cpu) / written * 1e6:.2f} compressing"
        " (other threads)"
    )
    print(f"  {files} files, {gz / 1e6:.1f} MB gzip, ratio {json_bytes / gz:.1f}")


def run_s3(settings: Settings, store: SqliteStore, level: int, json_bytes: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from s3server import start_s3_server

    server = start_s3_server()
    try:
        bucket = server.new_bucket()
        s3 = settings.replace(
            archive_dir=settings.data_dir / "staging",
            archive_storage="s3",
            archive_s3_bucket=bucket,
            archive_s3_endpoint_url=server.endpoint_url,
            archive_s3_region="us-east-1",
            archive_s3_access_key_id=server.access_key_id,
            archive_s3_secret_access_key=server.secret_access_key,
            archive_s3_path_style=True,
        )
        figures = run_writer(s3, store, level)
        objects = list(server.client(bucket).list())
        uploaded = sum(o.size for o in objects)
        print_figures(
            f"archive writer to S3 (moto on loopback), zlib level {level}",
            figures,
            json_bytes,
            len(objects),
            uploaded,
        )
        print(f"  {uploaded / figures[1] / 1e6:.1f} MB/s of gzip uploaded and verified")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--level", type=int, default=DEFAULT_LEVEL)
    parser.add_argument("--max-file-mb", type=int, default=100)
    parser.add_argument("--s3", action="store_true", help="also archive to a local S3 server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sluice-bench-archive-") as tmp:
        data_dir = Path(tmp)
        settings = Settings(
            data_dir=data_dir,
            sqlite_synchronous="normal",
            archive_max_file_bytes=args.max_file_mb * 1024 * 1024,
        )
        store = SqliteStore(settings.log_path, synchronous="normal")
        print(f"appending {args.events:,} events to {settings.log_path} ...", file=sys.stderr)
        json_bytes = fill(store, args.events)
        print(f"  {json_bytes / args.events:.0f} bytes per event on average", file=sys.stderr)
        figures = run_writer(settings, store, args.level)
        files = sorted(logs_dir(settings.data_dir / "archive").rglob("*.gz"))
        gz_bytes = sum(f.stat().st_size for f in files)
        title = f"archive writer to a local folder, zlib level {args.level}"
        print_figures(title, figures, json_bytes, len(files), gz_bytes)
        if args.s3:
            run_s3(settings, store, args.level, json_bytes)
        store.close()


if __name__ == "__main__":
    main()
