"""Archive names and folders, the settings that place them, and reading a range back."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sluice.archive.layout import (
    DAY_MS,
    archive_root,
    day_dir,
    day_of,
    file_name,
    parse_day,
    parse_file_name,
    partial_name,
    source_folder,
    source_of_folder,
)
from sluice.archive.reader import (
    ArchiveQuery,
    ArchiveQueryError,
    archive_files,
    parse_time,
    read_archive,
)
from sluice.archive.writer import ArchiveWriter
from sluice.config import Settings, load_settings
from sluice.spec.timestamps import format_ms, parse_ms
from sluice.store.base import AppendBatch, NewEvent
from sluice.store.sqlite import SqliteStore

DAY = parse_ms("2024-06-01T00:00:00Z") or 0


# --- layout -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("moment", "day"),
    [
        ("2015-05-27T00:00:00.000Z", 1432684800000),  # Segment's documented example
        ("2015-05-27T23:59:59.999Z", 1432684800000),
        ("2015-05-28T00:00:00.000Z", 1432771200000),
        ("2015-05-27T23:30:00-02:00", 1432771200000),  # UTC decides, not the sender's zone
    ],
    ids=["midnight", "last-ms", "next-day", "offset"],
)
def test_day_folder_is_utc_midnight_in_epoch_ms(moment: str, day: int) -> None:
    ms = parse_ms(moment)
    assert ms is not None and day_of(ms) == day
    assert parse_day(str(day)) == day


def test_day_folder_path() -> None:
    root = Path("/a")
    assert day_dir(root, "web", 1432684800000) == Path("/a/segment-logs/web/1432684800000")


def test_file_names_sort_in_log_order_and_parse_back() -> None:
    names = [file_name(1, 9), file_name(10, 10), file_name(11, 2_000_000), file_name(99, 100)]
    assert names[0] == "00000000000000000001-00000000000000000009.gz"
    assert sorted(names) == names
    assert [parse_file_name(n) for n in names] == [(1, 9), (10, 10), (11, 2_000_000), (99, 100)]


@pytest.mark.parametrize(
    "name",
    [partial_name(1), "1-9.gz", "00000000000000000001-00000000000000000009.json", "dummy.txt"],
    ids=["partial", "unpadded", "not-gz", "other"],
)
def test_other_names_are_not_archive_files(name: str) -> None:
    assert parse_file_name(name) is None


@pytest.mark.parametrize("name", ["web", "20240601", "1432684800001", "-1", ""])
def test_other_folders_are_not_days(name: str) -> None:
    assert parse_day(name) is None


@pytest.mark.parametrize(
    ("source_id", "folder"),
    [("web", "web"), ("ios_app-2", "ios_app-2"), ("a/b", "a%2Fb"), ("..", "%2E%2E"), ("", "-")],
    ids=["plain", "underscore-dash", "slash", "dots", "empty"],
)
def test_source_folders_are_safe_and_reversible(source_id: str, folder: str) -> None:
    assert source_folder(source_id) == folder
    assert source_of_folder(folder) == source_id


def test_archive_folder_defaults_to_the_data_dir_and_can_move(tmp_path: Path) -> None:
    assert archive_root(Settings(data_dir=tmp_path)) == tmp_path / "archive"
    settings = load_settings(
        {
            "SLUICE_DATA_DIR": str(tmp_path),
            "SLUICE_ARCHIVE_DIR": "/srv/archive",
            "SLUICE_ARCHIVE_MAX_FILE_BYTES": "1000",
            "SLUICE_ARCHIVE_MAX_FILE_AGE_S": "60",
            "SLUICE_ARCHIVE_RETENTION_DAYS": "30",
        }
    )
    assert archive_root(settings) == Path("/srv/archive")
    assert settings.archive_max_file_bytes == 1000
    assert settings.archive_max_file_age_s == 60
    assert settings.archive_retention_days == 30
    defaults = Settings()
    assert defaults.archive_max_file_bytes == 100 * 1024 * 1024
    assert defaults.archive_max_file_age_s == 3600
    assert defaults.archive_retention_days == 0


# --- reading a range back ---------------------------------------------------------------------
EVENTS: list[tuple[str, int, str, str | None]] = [
    # (source, receivedAt, type, event)
    ("web", DAY - 1, "track", "Signed Up"),  # the day before
    ("web", DAY, "track", "Order Completed"),
    ("app", DAY + 1000, "identify", None),
    ("web", DAY + 2000, "track", "Signed Up"),
    ("app", DAY + DAY_MS - 1, "track", "Order Completed"),
    ("web", DAY + DAY_MS, "page", None),  # the next day
    ("web", DAY + 3 * DAY_MS, "track", "Order Completed"),
]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An archive written by the real writer: the events above, one message id each."""
    data_dir = tmp_path_factory.mktemp("reader")
    store = SqliteStore(data_dir / "log.db", synchronous="normal")
    batch = AppendBatch()
    for n, (source, received, type_, name) in enumerate(EVENTS):
        doc: dict[str, Any] = {
            "type": type_,
            "messageId": f"e{n}",
            "receivedAt": format_ms(received),
        }
        if name:
            doc["event"] = name
        body = msgspec.json.encode(doc)
        batch.events.append(NewEvent(source, f"e{n}", type_, name, received, body))
    store.append(batch)
    writer = ArchiveWriter(Settings(data_dir=data_dir), store)
    writer.step(now=(DAY + 5 * DAY_MS) / 1000)
    writer.close()
    store.close()
    yield data_dir / "archive"


def ids(root: Path, query: ArchiveQuery) -> list[str]:
    return [a.event["messageId"] for a in read_archive(root, query)]


CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("one-day", {"start_ms": DAY, "end_ms": DAY + DAY_MS}, ["e2", "e4", "e1", "e3"]),
    ("end-exclusive", {"start_ms": DAY, "end_ms": DAY + 2000}, ["e2", "e1"]),
    ("start-inclusive", {"start_ms": DAY + 2000, "end_ms": DAY + DAY_MS + 1}, ["e4", "e3", "e5"]),
    ("all", {"start_ms": 0, "end_ms": DAY + 10 * DAY_MS}, [f"e{n}" for n in (0, 2, 4, 1, 3, 5, 6)]),
    ("source", {"start_ms": DAY, "end_ms": DAY + DAY_MS, "source_id": "app"}, ["e2", "e4"]),
    ("type", {"start_ms": DAY - DAY_MS, "end_ms": DAY + 5 * DAY_MS, "type": "page"}, ["e5"]),
    ("event", {"start_ms": 0, "end_ms": DAY + DAY_MS, "event": "Signed Up"}, ["e0", "e3"]),
    ("no-source", {"start_ms": 0, "end_ms": DAY + DAY_MS, "source_id": "nobody"}, []),
    ("empty-day", {"start_ms": DAY + 2 * DAY_MS, "end_ms": DAY + 3 * DAY_MS}, []),
]


@pytest.mark.parametrize(("fields", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_reader_range_and_filters(
    archive: Path, fields: dict[str, Any], expected: list[str]
) -> None:
    assert ids(archive, ArchiveQuery(**fields)) == expected


def test_reader_opens_only_the_days_of_the_range(archive: Path) -> None:
    files = archive_files(archive, ArchiveQuery(DAY + 1, DAY + DAY_MS + 1))
    assert sorted({f.day_ms for f in files}) == [DAY, DAY + DAY_MS]
    assert [f.order for f in files] == sorted(f.order for f in files)
    assert files[0].name == f"app/{DAY}/{file_name(3, 5)}"


def test_reader_yields_the_line_as_stored_and_where_it_was(archive: Path) -> None:
    (found,) = read_archive(archive, ArchiveQuery(DAY + 1000, DAY + 1001))
    assert found.file.source_id == "app" and found.line == 1
    assert found.received_at_ms == DAY + 1000
    assert msgspec.json.decode(found.raw) == found.event
    assert found.raw in gzip.decompress(found.file.path.read_bytes()).splitlines()


def test_reader_ignores_files_being_written(archive: Path) -> None:
    partial = day_dir(archive, "web", DAY) / partial_name(999)
    partial.write_bytes(gzip.compress(b'{"messageId": "half"}\n'))
    try:
        assert "half" not in ids(archive, ArchiveQuery(DAY, DAY + DAY_MS))
    finally:
        partial.unlink()


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2024-06-01", DAY),
        ("2024-06-01T00:00:00Z", DAY),
        ("2024-06-01T02:00:00+02:00", DAY),
        ("2024-06-01T00:00:01.500Z", DAY + 1500),
        (str(DAY + 7), DAY + 7),
    ],
    ids=["date", "utc", "offset", "millis", "epoch-ms"],
)
def test_parse_time(text: str, ms: int) -> None:
    assert parse_time(text) == ms


def test_bad_times_and_ranges_are_refused() -> None:
    with pytest.raises(ArchiveQueryError, match="neither ISO-8601"):
        parse_time("yesterday")
    with pytest.raises(ArchiveQueryError, match="after its start"):
        ArchiveQuery(DAY, DAY)
