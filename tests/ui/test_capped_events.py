"""Event names past a source's `max_event_tables` are findable in the UI: the warehouses page
lists them (and finds one by name), and the event lookup says that such a name has no table of
its own and that its rows are in `tracks`, by event name and by message id. DuckDB and
PostgreSQL warehouses, read by a real `sluice serve` over HTTP."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgspec
import pytest
from ui_kit import ADMIN_EMAIL, ADMIN_PASSWORD, StartServer, cookie_header, create_admin, exchange

from server import SluiceServer, seed_sources
from sluice.config import Settings
from sluice.store.base import AppendBatch, ConfigObject, NewEvent
from sluice.store.sqlite import SqliteStore
from sluice.warehouse.loader import WarehouseLoader

NAMES = ["Signed Up", "Clicked", "Viewed 1", "Viewed 2", "Viewed 2", "Viewed 3"]


def _seed(data_dir: Path, warehouse: dict[str, Any]) -> None:
    """Tracks of six names into a warehouse that makes two event tables per source, loaded."""
    seed_sources(data_dir)
    store = SqliteStore(data_dir / "log.db")
    try:
        events = []
        for n, name in enumerate(NAMES):
            body = {
                "type": "track",
                "event": name,
                "messageId": f"capped-{n}",
                "userId": "u1",
                "receivedAt": "2026-11-28T10:00:00.000Z",
                "properties": {"n": n},
            }
            events.append(NewEvent("web", body["messageId"], "track", name, 0, _json(body)))
        store.append(AppendBatch(events=events))
        store.put_config(ConfigObject("warehouse", warehouse["id"], _json(warehouse)))
        WarehouseLoader(Settings(data_dir=data_dir), store, _json(warehouse)).load_once()
    finally:
        store.close()


def _json(value: Any) -> bytes:
    return msgspec.json.encode(value)


@pytest.fixture(params=["duckdb", "postgres"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(
    request: pytest.FixtureRequest, kind: str, tmp_path: Path, start_server: StartServer
) -> Iterator[SluiceServer]:
    settings: dict[str, Any] = {"max_event_tables": 2}
    if kind == "postgres":
        settings["url"] = request.getfixturevalue("pg_url")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _seed(data_dir, {"id": "main", "type": kind, "settings": settings})
    # The seeded events were received in 1970: log retention (7 days) would trim them once
    # every consumer passed them, and the lookups by message id read the log.
    server = start_server(
        {"SLUICE_WAREHOUSE_INTERVAL_S": "0", "SLUICE_LOG_RETENTION_DAYS": "0"}, data_dir=data_dir
    )
    create_admin(data_dir)
    yield server


def _signed_in(server: SluiceServer) -> str:
    """A session cookie, through the sign-in form."""
    signin, cookies = exchange("127.0.0.1", server.port, "GET", "/signin")
    token = re.search(rb'name="csrf_token" value="([^"]+)"', signin.body)
    assert token
    form = urlencode(
        {"csrf_token": token.group(1).decode(), "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    headers = {"content-type": "application/x-www-form-urlencoded"}
    headers["cookie"] = cookie_header(cookies)
    answer, session = exchange("127.0.0.1", server.port, "POST", "/signin", form.encode(), headers)
    assert answer.status == 303
    return cookie_header(session)


def _text(server: SluiceServer, cookie: str, path: str, **query: str) -> str:
    """The page's text as a reader sees it: tags out, entities read, spaces collapsed."""
    url = f"{path}?{urlencode(query)}" if query else path
    answer, _ = exchange("127.0.0.1", server.port, "GET", url, headers={"cookie": cookie})
    assert answer.status == 200, (url, answer.status, answer.body[:300])
    text = html.unescape(re.sub(r"<[^>]+>", " ", answer.body.decode()))
    return " ".join(text.split()).replace(" ,", ",").replace(" :", ":")


def test_capped_event_names_are_listed_and_found(server: SluiceServer, kind: str) -> None:
    cookie = _signed_in(server)
    page = _text(server, cookie, "/warehouses")
    assert "Event names with no table of their own" in page
    assert "A source makes at most 2 event tables ( max_event_tables )" in page
    assert "SLUICE_WAREHOUSE_MAX_EVENT_TABLES" in page
    assert (
        "web: 2 event tables; 3 event names capped, their 4 events are in web.tracks only" in page
    )
    listed = page[page.index("Events in tracks only") :]
    assert re.findall(r"(Viewed \d) (\d) web\.(viewed_\d)", listed) == [
        ("Viewed 2", "2", "viewed_2"),
        ("Viewed 1", "1", "viewed_1"),
        ("Viewed 3", "1", "viewed_3"),
    ]
    found = _text(server, cookie, "/warehouses", capped="viewed 3")
    assert "1 match viewed 3" in found
    assert re.findall(r"(Viewed \d) (\d) web\.", found) == [("Viewed 3", "1")]

    # Looking the name up says where its rows are, and why it has no table.
    capped = _text(server, cookie, "/lookup", event="Viewed 2")
    assert (
        f"capped warehouse main {kind}, schema web: no table of its own: capped at 2 event"
        " tables (max_event_tables), its rows are in web.tracks (2 events so far)" in capped
    )
    assert "schema app: none loaded yet; they will get app.viewed_2" in capped
    own = _text(server, cookie, "/lookup", event="Signed Up")
    assert "schema web: its rows are in web.signed_up and web.tracks" in own
    new = _text(server, cookie, "/lookup", event="Brand New")
    assert (
        "schema web: none loaded; the schema has all its 2 event tables, so they would load"
        " into web.tracks only" in new
    )

    # So does looking up one of its events by message id.
    event = _text(server, cookie, "/lookup", message_id="capped-4")
    assert (
        "into web.tracks: no table of its own: capped at 2 event tables (max_event_tables),"
        " its rows are in web.tracks" in event
    )
    first = _text(server, cookie, "/lookup", message_id="capped-0")
    assert "into web.tracks, web.signed_up" in first and "no table of its own" not in first
