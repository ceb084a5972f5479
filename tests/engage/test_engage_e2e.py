"""Done means: with a real server, an audience "ordered twice in 7 days" sends Audience Entered
to a webhook destination once (a third order changes nothing); and `sluice apply` refuses an
invalid definition naming its field."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import msgspec

from recorder import Recorder
from server import WRITE_KEY, SluiceServer, StartServer, basic, clean_env, wait_for
from sluice.identity.tables import PostgresIdentityDb, SqliteIdentityDb
from sluice.store.base import ConfigObject

AUDIENCE = {
    "key": "ordered_twice",
    "condition": {"events": [{"event": "Order Completed", "count": 2, "within_days": 7}]},
}


def engage_seq(data_dir: Path, url: str | None = None) -> int:
    db = PostgresIdentityDb(url) if url else SqliteIdentityDb(data_dir / "identity.db")
    try:
        rows = db.execute("SELECT seq FROM engage_position")
        return int(rows[0][0]) if rows else 0
    except Exception:
        return 0
    finally:
        db.close()


def order(n: int) -> dict[str, object]:
    return {"type": "track", "event": "Order Completed", "userId": "jane",
            "messageId": f"order-{n}", "properties": {"total": 10 * n}}  # fmt: skip


def test_ordered_twice_enters_once(
    start_server: StartServer, recorder: Recorder, seeded_store: tuple[dict[str, str], Path]
) -> None:
    env, data_dir = seeded_store  # SQLite, then PostgreSQL
    url = env.get("SLUICE_DATABASE_URL")
    server: SluiceServer = start_server({"SLUICE_WORKERS": "1", **env}, data_dir=data_dir)
    store = server.store
    store.put_config(
        ConfigObject("engage", "engage", msgspec.json.encode({"audiences": [AUDIENCE]}))
    )
    hook = {"id": "hook", "type": "webhook", "sources": ["sluice-engage"],
            "settings": {"urls": [f"{recorder.base_url}/hook"]}}  # fmt: skip
    store.put_config(ConfigObject("destination", "hook", msgspec.json.encode(hook)))
    auth = {"authorization": basic(WRITE_KEY)}
    assert server.post("/v1/batch", {"batch": [order(1)]}, headers=auth).status == 200
    wait_for(lambda: engage_seq(data_dir, url) >= 1, timeout=60, what="engage reads order 1")
    assert server.post("/v1/batch", {"batch": [order(2)]}, headers=auth).status == 200
    got = recorder.wait_for(2, timeout=60)
    bodies = sorted((r.json() for r in got), key=lambda b: b["type"])
    identify, track = bodies
    assert identify["type"] == "identify" and identify["traits"] == {"ordered_twice": True}
    assert track["event"] == "Audience Entered" and track["userId"] == "jane"
    assert track["properties"] == {"audience_key": "ordered_twice", "ordered_twice": True}
    assert track["context"]["personas"]["computation_key"] == "ordered_twice"
    assert track["context"]["personas"]["computation_class"] == "audience"
    # A third order: still a member, nothing more is sent.
    assert server.post("/v1/batch", {"batch": [order(3)]}, headers=auth).status == 200
    end = store.last_seq()
    wait_for(lambda: engage_seq(data_dir, url) >= end, timeout=60, what="engage reads order 3")
    wait_for(lambda: (store.find_cursor("destination:hook") or 0) >= store.last_seq(),
             timeout=60, what="the hook consumer at the log's end")  # fmt: skip
    assert len(recorder.requests) == 2
    entered = [r for r in recorder.requests if r.json().get("event") == "Audience Entered"]
    assert len(entered) == 1


def test_apply_refuses_an_invalid_definition_naming_the_field(tmp_path: Path) -> None:
    ws = tmp_path / "ws.yaml"
    ws.write_text(
        "sources: [{id: web}]\n"
        "destinations: [{id: hook, type: webhook, sources: [sluice-engage],"
        " settings: {urls: ['http://127.0.0.1:9/x']}}]\n"
        "audiences:\n"
        "  - key: ordered_twice\n"
        "    condition:\n"
        "      events: [{event: Order Completed, where: 'properties.total >', count: 2}]\n"
    )
    cmd = [sys.executable, "-m", "sluice", "apply", str(ws), "--data-dir", str(tmp_path / "d")]
    refused = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, check=False)
    assert refused.returncode != 0
    assert "audiences[0].condition.events[0].where" in refused.stderr
    ws.write_text(ws.read_text().replace("properties.total >", "properties.total > 5"))
    ok = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    ws.write_text("sources: [{id: web}]\ncomputed_traits: [{key: spent, kind: sum}]\n")
    refused = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, check=False)
    assert "computed_traits[0].property" in refused.stderr


def engage_tracks(server: SluiceServer) -> list[dict[str, object]]:
    return [
        msgspec.json.decode(e.payload)
        for e in server.store.read_after(0, 10**6)
        if e.source_id == "sluice-engage" and e.type == "track"
    ]


def test_server_killed_while_engage_works_sends_each_flip_once(
    start_server: StartServer,
) -> None:
    users = 1500
    server = start_server({"SLUICE_WORKERS": "1"})
    server.store.put_config(
        ConfigObject("engage", "engage", msgspec.json.encode({"audiences": [AUDIENCE]}))
    )
    # The definitions are read within seconds; events sent before would be history (not sent).
    wait_for(lambda: _engage_ready(server.data_dir),
             timeout=60, what="engage set up")  # fmt: skip
    auth = {"authorization": basic(WRITE_KEY)}
    for n in range(2):
        batch = [
            {**order(n), "userId": f"user-{u}", "messageId": f"o{n}-{u}"} for u in range(users)
        ]
        for start in range(0, users, 500):
            res = server.post("/v1/batch", {"batch": batch[start : start + 500]}, headers=auth)
            assert res.status == 200
    wait_for(lambda: engage_seq(server.data_dir) > 0, timeout=120, what="engage at work")
    server.kill()  # SIGKILL to the whole process group, wherever engage is
    server.close()
    server = start_server({"SLUICE_WORKERS": "1"}, data_dir=server.data_dir)
    wait_for(lambda: len(engage_tracks(server)) >= users, timeout=180, what="every flip sent")
    time.sleep(2)  # a duplicate would come right after
    entered = Counter(str(t["userId"]) for t in engage_tracks(server))
    assert len(entered) == users and set(entered.values()) == {1}


def _engage_ready(data_dir: Path) -> bool:
    db = SqliteIdentityDb(data_dir / "identity.db")
    try:
        return bool(db.execute("SELECT 1 FROM engage_position"))
    except Exception:
        return False
    finally:
        db.close()
