"""The lake in a bucket, against a real S3-compatible server (moto's, in a subprocess): read back
equal to a local lake of the same log, a kill -9 mid-upload, credentials and buckets wrong then
fixed, compaction, and the settings refused."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lake_kit import append, load
from typer.testing import CliRunner

import s3server
import sluice.cli.lake
import sluice.cli.warehouse  # noqa: F401  (register the commands)
from ports import free_port
from s3server import REGION, S3Server, start_s3_server
from sluice.cli.app import app
from sluice.config import Settings
from sluice.lake.backend import LakeBackend
from sluice.lake.compaction import compact
from sluice.lake.config import open_lake
from sluice.lake.layout import META, parse
from sluice.lake.objectstorage import ObjectLakeStorage
from sluice.lake.query import connect
from sluice.lake.settings import lake_settings_problem
from sluice.lake.storage import LocalStorage
from sluice.objectstore import BucketNotFound, CredentialsRefused, ObjectStoreUnavailable
from sluice.store.base import ConfigObject
from sluice.store.sqlite import SqliteStore
from sluice.warehouse.base import WarehouseUnavailable
from sluice.warehouse.loader import LoadReport, WarehouseLoader, run_warehouses
from sluice.warehouse.stats import warehouse_stats

T2 = "2026-11-28T11:30:00.000Z"
KILL_WAIT_S = 60.0


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = start_s3_server(free_port())
    try:
        yield server
    finally:
        server.stop()


def s3_lake(server: S3Server, bucket: str, **changes: Any) -> dict[str, Any]:
    """A lake warehouse's settings aimed at the test server (as a workspace file holds them)."""
    settings: dict[str, Any] = {
        "storage": "s3",
        "bucket": bucket,
        "prefix": "lake",
        "endpoint_url": server.endpoint_url,
        "region": REGION,
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
        "path_style": True,
        "compact_files": 0,
    }
    settings.update(changes)
    return settings


def load_s3(
    store: SqliteStore, data_dir: Path, settings: dict[str, Any], chunk: int = 50_000
) -> LoadReport:
    """A load as the worker runs it: the warehouse config opens the lake (no factory given)."""
    body = msgspec.json.encode({"id": "lake", "type": "lake", "settings": settings})
    loader = WarehouseLoader(Settings(data_dir=data_dir), store, body, chunk_events=chunk)
    report: LoadReport = loader.load_once()
    return report


def s3_query(data_dir: Path, settings: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    with connect(open_lake("lake", data_dir / "lake", settings)) as db:
        return db.execute(sql).fetchall()


def object_ids(server: S3Server, bucket: str, folder: str = "lake/web/tracks/") -> Counter[str]:
    """Each id in every Parquet object of a folder, committed or not (as a plain glob reads)."""
    client = server.client(bucket)
    seen: Counter[str] = Counter()
    for info in client.list(folder):
        if info.key.endswith(".parquet"):
            table = pq.read_table(pa.BufferReader(client.get(info.key)), columns=["id"])
            seen.update(table["id"].to_pylist())
    return seen


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "log.db")
    try:
        yield s
    finally:
        s.close()


def _mixed_events(store: SqliteStore) -> None:
    for source in ("web", "ios"):
        append(
            store,
            *[
                {"type": "track", "event": "Order Completed", "userId": f"u{k}",
                 "properties": {"total": k * 1.5, "items": k, "coupon": f"c{k}", "tags": ["a"],
                                "shipping": {"city": "Lyon"}}}
                for k in range(30)
            ],
            *[{"type": "page", "name": "Home", "anonymousId": f"a{k}", "receivedAt": T2}
              for k in range(10)],
            *[{"type": "identify", "userId": f"u{k}", "traits": {"plan": "pro", "seats": k}}
              for k in range(5)],
            {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "Acme"}},
            # `total` is a float column by then: this value goes to the discards.
            {"type": "track", "event": "Order Completed", "properties": {"total": "free"}},
            source=source,
        )  # fmt: skip


def test_s3_lake_reads_back_as_the_local_lake(
    s3: S3Server, store: SqliteStore, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    settings = s3_lake(s3, bucket)
    _mixed_events(store)
    load(store, tmp_path / "local")
    report = load_s3(store, tmp_path, settings)
    assert report.events == 94 and report.position == 94
    keys = [o.key for o in s3.client(bucket).list()]
    assert "lake/_sluice/manifest.json" in keys
    assert (
        "lake/web/order_completed/day=2026-11-28/hr=10/part-000000000001-000000000094.parquet"
        in keys
    )
    assert "lake/ios/pages/day=2026-11-28/hr=11/part-000000000001-000000000094.parquet" in keys
    local_lake = LakeBackend(LocalStorage(tmp_path / "local"))
    with connect(local_lake) as local, connect(open_lake("lake", tmp_path, settings)) as bucketed:
        views = local.sql("SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal")
        names = views.fetchall()
        assert len(names) > 10
        for schema, view in names:
            when = "discarded_at" if schema == META else "uuid_ts"  # the time of each load
            sql = f'SELECT * EXCLUDE ({when}) FROM "{schema}"."{view}" ORDER BY ALL'
            rows = local.sql(sql).fetchall()
            assert rows and bucketed.sql(sql).fetchall() == rows, (schema, view)


def test_sluice_lake_query_and_status_on_a_bucket(
    s3: S3Server, store: SqliteStore, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    settings = s3_lake(s3, bucket)
    _mixed_events(store)
    body = msgspec.json.encode({"id": "lake", "type": "lake", "settings": settings})
    store.put_config(ConfigObject("warehouse", "lake", body))
    data = ["--data-dir", str(tmp_path)]
    runner = CliRunner()
    loaded = runner.invoke(app, ["load", *data])
    assert loaded.exit_code == 0, loaded.output
    sql = "SELECT name, count(*) AS n FROM pages GROUP BY 1"
    result = runner.invoke(app, ["lake", "query", sql, "--json", *data])
    assert result.exit_code == 0, result.output
    assert msgspec.json.decode(result.output) == {"name": "Home", "n": 20}
    status = runner.invoke(app, ["lake", "status", "--json", *data])
    doc = msgspec.json.decode(status.output)
    assert doc["position"] == 94
    assert doc["collections"]["web.order_completed"] == {"files": 1, "rows": 31}
    discards = runner.invoke(app, ["warehouse", "discards", "--warehouse", "lake", *data])
    assert discards.exit_code == 0 and "free" in discards.output, discards.output
    shown = runner.invoke(app, ["lake", "status", *data])
    assert f"s3://{bucket}/lake/ at {s3.endpoint_url}" in shown.output
    assert s3.secret_access_key not in shown.output


_KILLED = textwrap.dedent(
    """
    import os, sys, threading
    from pathlib import Path
    import msgspec
    import s3server
    from sluice.config import Settings
    from sluice.lake.backend import LakeBackend
    from sluice.lake.objectstorage import ObjectLakeStorage
    from sluice.objectstore import ObjectStore
    from sluice.store.sqlite import SqliteStore
    from sluice.warehouse.loader import WarehouseLoader

    db, local, what, at = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    settings = msgspec.json.decode(sys.argv[5])
    s3server.free_port = lambda: int(sys.argv[6])
    proxy = s3server.FaultyProxy(int(settings.pop("port")))
    store_settings = s3server.ObjectStoreSettings(endpoint_url=proxy.endpoint_url, **settings)
    calls = [0]

    class Stalling(ObjectLakeStorage):
        def put(self, path, data):
            if path.endswith(".parquet") == (what == "file"):
                calls[0] += 1
                if calls[0] == at:
                    proxy.mode = "stall"  # this upload hangs half-sent until we are killed
            super().put(path, data)

    def tell() -> None:
        proxy.stalled.wait()
        print("stalled", flush=True)

    threading.Thread(target=tell, daemon=True).start()
    storage = Stalling(ObjectStore(store_settings), local)
    body = msgspec.json.encode({"id": "lake", "type": "lake"})
    loader = WarehouseLoader(
        Settings(), SqliteStore(Path(db)), body,
        backend_factory=lambda c: LakeBackend(storage, compact_files=0), chunk_events=100,
    )
    loader.load_once()
    print("done", flush=True)
    """
)


@pytest.mark.parametrize(
    ("what", "at"),
    [("file", 1), ("file", 4), ("manifest", 2), ("manifest", 4)],
    ids=["first-file", "file-of-a-later-chunk", "first-commit", "a-later-commit"],
)
def test_killed_mid_upload_then_resumed_each_event_once(
    s3: S3Server, store: SqliteStore, tmp_path: Path, what: str, at: int
) -> None:
    bucket = s3.new_bucket()
    # Random text makes `paid` files of ~100 kB: an upload is more than one network read, and
    # past the multipart threshold (the temporary file's way).
    pad = [os.urandom(1000).hex() for _ in range(250)]
    ids = append(
        store,
        *[{"type": "track", "event": "Paid", "properties": {"pad": p, "k": k}}
          for k, p in enumerate(pad)],
    )  # fmt: skip
    client_settings = {
        "bucket": bucket, "prefix": "lake", "region": REGION, "path_style": True,
        "access_key_id": s3.access_key_id, "secret_access_key": s3.secret_access_key,
        "read_timeout_s": 30, "multipart_threshold": 50_000,
        "port": s3.endpoint_url.rsplit(":", 1)[1],
    }  # fmt: skip
    errors = tmp_path / "stderr.txt"
    with errors.open("wb") as stderr, subprocess.Popen(
        [sys.executable, "-c", _KILLED, str(tmp_path / "log.db"), str(tmp_path / "lake"),
         what, str(at), msgspec.json.encode(client_settings).decode(), str(free_port())],
        stdout=subprocess.PIPE, stderr=stderr,
        env={**os.environ, "PYTHONPATH": str(Path(s3server.__file__).parent)},
    ) as proc:  # fmt: skip
        watchdog = threading.Timer(KILL_WAIT_S, proc.kill)  # never a hung test
        watchdog.start()
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line == b"stalled\n", (line, errors.read_text())
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(10) == -signal.SIGKILL
        finally:
            watchdog.cancel()
            proc.kill()
    ids += append(store, *[{"type": "track", "event": "Paid"} for _ in range(30)])
    settings = s3_lake(s3, bucket)
    load_s3(store, tmp_path, settings, chunk=100)
    counted = s3_query(tmp_path, settings, "SELECT id, count(*) FROM web.paid GROUP BY 1")
    assert dict(counted) == dict.fromkeys(ids, 1)
    assert object_ids(s3, bucket, "lake/web/paid/") == Counter(ids)  # no file left over


def test_wrong_credentials_fail_clearly_then_load_once_fixed(
    s3: S3Server, store: SqliteStore, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    ids = append(store, *[{"type": "track", "event": "Paid"} for _ in range(20)])
    load_s3(store, tmp_path, s3_lake(s3, bucket))
    ids += append(store, *[{"type": "track", "event": "Paid"} for _ in range(20)])
    wrong = s3_lake(s3, bucket, secret_access_key="not-the-secret-0123456789")
    body = msgspec.json.encode({"id": "lake", "type": "lake", "settings": wrong})
    store.put_config(ConfigObject("warehouse", "lake", body))
    with pytest.raises(CredentialsRefused) as caught:
        load_s3(store, tmp_path, wrong)
    assert bucket in str(caught.value) and "not-the-secret" not in str(caught.value)
    shown = warehouse_stats(Settings(data_dir=tmp_path), store)["lake"]
    assert bucket in shown["error"] and "not-the-secret" not in shown["error"]
    report = load_s3(store, tmp_path, s3_lake(s3, bucket))
    assert (report.events, report.position) == (20, 40)  # from the manifest's position
    counted = s3_query(tmp_path, s3_lake(s3, bucket), "SELECT id, count(*) FROM paid GROUP BY 1")
    assert dict(counted) == dict.fromkeys(ids, 1)


def test_missing_bucket_or_endpoint_down_fail_clearly_then_load_once_there(
    s3: S3Server, store: SqliteStore, tmp_path: Path
) -> None:
    bucket = f"missing-{os.urandom(4).hex()}"
    ids = append(store, *[{"type": "track", "event": "Paid"} for _ in range(20)])
    with pytest.raises(BucketNotFound, match=f"s3://{bucket}/lake/_sluice/manifest.json "):
        load_s3(store, tmp_path, s3_lake(s3, bucket))  # the key as in the bucket: prefix too
    down = s3_lake(s3, bucket, endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ObjectStoreUnavailable, match=f"s3://{bucket}/"):
        load_s3(store, tmp_path, down)
    s3.client(bucket).create_bucket()
    assert load_s3(store, tmp_path, s3_lake(s3, bucket)).events == 20
    counted = s3_query(tmp_path, s3_lake(s3, bucket), "SELECT id, count(*) FROM paid GROUP BY 1")
    assert dict(counted) == dict.fromkeys(ids, 1)


def test_the_worker_logs_a_missing_bucket_once_naming_its_key_then_the_recovery(
    s3: S3Server, store: SqliteStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The worker's loop (`run_warehouses`, new loaders each round) retries every interval: the
    failure is one warning that names the object as the bucket holds it (the prefix too), not
    one per retry; then one line when it loads again."""
    bucket = f"missing-{os.urandom(4).hex()}"
    ids = append(store, *[{"type": "track", "event": "Paid"} for _ in range(20)])
    body = msgspec.json.encode({"id": "lake", "type": "lake", "settings": s3_lake(s3, bucket)})
    store.put_config(ConfigObject("warehouse", "lake", body))
    settings = Settings(data_dir=tmp_path, warehouse_interval_s=0.05)

    def lines(level: int) -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == level]

    async def until(done: Callable[[], bool]) -> None:
        async with asyncio.timeout(30):
            while not done():
                await asyncio.sleep(0.02)

    async def worker() -> None:
        task = asyncio.create_task(run_warehouses(settings, store))
        try:
            await until(lambda: len(lines(logging.DEBUG)) >= 3)  # three repeats
            warned = lines(logging.WARNING)
            assert len(warned) == 1, warned
            assert f"s3://{bucket}/lake/_sluice/manifest.json at {s3.endpoint_url}" in warned[0]
            assert "does not exist" in warned[0]
            await asyncio.to_thread(s3.client(bucket).create_bucket)
            await until(lambda: any("works again" in m for m in lines(logging.INFO)))
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    caplog.set_level(logging.DEBUG, logger="sluice.warehouse.loader")
    asyncio.run(worker())
    assert len(lines(logging.WARNING)) == 1
    assert any("warehouse lake: load works again, after" in m for m in lines(logging.INFO))
    counted = s3_query(tmp_path, s3_lake(s3, bucket), "SELECT id, count(*) FROM paid GROUP BY 1")
    assert dict(counted) == dict.fromkeys(ids, 1)


def test_compaction_on_s3(s3: S3Server, store: SqliteStore, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    settings = s3_lake(s3, bucket)
    for _ in range(4):
        append(
            store, *[{"type": "track", "event": "Paid", "properties": {"k": k}} for k in range(5)]
        )
        load_s3(store, tmp_path, settings)
    sql = "SELECT id, k FROM web.paid ORDER BY id"
    before = s3_query(tmp_path, settings, sql)
    assert len(before) == 20
    backend = open_lake("lake", tmp_path / "lake", settings)
    report = compact(backend.storage, backend.manifest.position)
    assert (report.partitions, report.merged) == (2, 8)  # tracks and paid, 4 files each
    files = [parse(o.key.removeprefix("lake/")) for o in s3.client(bucket).list("lake/web/")]
    assert sorted((f.table, f.first, f.last) for f in files if f) == [
        ("paid", 1, 20),
        ("tracks", 1, 20),
    ]
    assert s3_query(tmp_path, settings, sql) == before
    # A load past `compact_files` compacts the partitions it wrote to, as a local lake's does.
    append(store, {"type": "track", "event": "Paid", "properties": {"k": 9}})
    load_s3(store, tmp_path, {**settings, "compact_files": 2})
    assert len([o for o in s3.client(bucket).list("lake/web/paid/")]) == 1
    assert len(s3_query(tmp_path, settings, sql)) == 21
    cached = list((tmp_path / "lake" / ".s3-cache").rglob("*.parquet"))
    assert cached and all("000000000001-000000000021" in p.name for p in cached if "paid" in str(p))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"storage": "gcs"}, "storage"),
        ({"bucket": None}, "bucket"),
        ({"bucket": "Not_A_Bucket"}, "bucket"),
        ({"endpoint_url": "ftp://host"}, "endpoint_url"),
        ({"endpoint_url": "http://me:pw@host"}, "endpoint_url"),
        ({"secret_access_key": None}, "secret_access_key"),
        ({"access_key_id": None}, "access_key_id"),
        ({"path_style": "yes"}, "path_style"),
        ({"prefix": "/lake"}, "prefix"),
        ({"storage": None}, "bucket"),  # local storage with S3 settings: refused, not ignored
        ({"storage": None, "bucket": None, "endpoint_url": None, "region": None,
          "access_key_id": None, "secret_access_key": None, "path_style": None, "prefix": None,
          "path": "s3://b/lake"}, "path"),
    ],
    ids=["storage", "no-bucket", "bad-bucket", "endpoint-scheme", "endpoint-credentials",
         "key-without-secret", "secret-without-key", "path-style", "prefix", "s3-fields-on-local",
         "url-as-path"],
)  # fmt: skip
def test_bad_settings_are_refused_naming_the_field(
    s3: S3Server, tmp_path: Path, changes: dict[str, Any], field: str
) -> None:
    given = {**s3_lake(s3, "lake-bucket"), **changes}
    settings = {k: v for k, v in given.items() if v is not None}
    problem = lake_settings_problem(settings)
    assert problem is not None and problem.field == field
    with pytest.raises(WarehouseUnavailable, match=f"settings.{field} ") as caught:
        open_lake("lake", tmp_path, settings)
    assert s3.secret_access_key not in str(caught.value)


def test_the_secret_is_in_no_repr(s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    backend: LakeBackend = open_lake("lake", tmp_path, s3_lake(s3, bucket))
    assert isinstance(backend.storage, ObjectLakeStorage)
    shown = (
        repr(backend.storage) + repr(backend.storage.store) + repr(backend.storage.store.settings)
    )
    assert bucket in shown and s3.secret_access_key not in shown
