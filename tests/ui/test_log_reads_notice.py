"""The overview says when reads of the event log are degraded: a running `sluice serve` whose
log.db another program wrote a messageId into that is not UTF-8. Its workers read past it with
U+FFFD and count it; the overview (over real HTTP) shows the notice, and no notice before."""

from __future__ import annotations

import sqlite3
import time

from ui_kit import StartServer, exchange, signed_in_cookie

from server import wait_for

NOTICE = b'id="log-reads"'


def test_the_overview_shows_degraded_log_reads(start_server: StartServer) -> None:
    server = start_server({"SLUICE_WORKERS": "1"})
    cookie = signed_in_cookie("127.0.0.1", server.port, server.data_dir)

    def overview() -> bytes:
        page, _ = exchange("127.0.0.1", server.port, "GET", "/", headers={"cookie": cookie})
        assert page.status == 200, page.body[:300]
        return page.body

    assert NOTICE not in overview()
    db = sqlite3.connect(server.data_dir / "log.db", timeout=30)
    with db:  # as another program would: Sluice writes only UTF-8
        db.execute(
            "INSERT INTO events (source_id, message_id, type, event, received_at, payload)"
            " VALUES ('web', CAST(x'ff61' AS TEXT), 'track', 'Clicked', ?, x'7b7d')",
            (int(time.time() * 1000),),
        )
    db.close()
    sent = server.post("/v1/track", {"userId": "u1", "event": "After", "messageId": "after"})
    assert sent.status == 200  # the append's catch-up reads past it too
    body = wait_for(
        lambda: next((page for page in [overview()] if NOTICE in page), None),
        timeout=30,
        what="the overview's notice",
    )
    assert b"Event log reads degraded:" in body
