"""Done means: with a real server, an audience "ordered twice in 7 days" sends Audience Entered
to a webhook destination once (a third order changes nothing); and `sluice apply` refuses an
invalid definition naming its field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec

from recorder import Recorder
from server import WRITE_KEY, SluiceServer, StartServer, basic, clean_env, wait_for
from sluice.identity.tables import SqliteIdentityDb
from sluice.store.base import ConfigObject

AUDIENCE = {
    "key": "ordered_twice",
    "condition": {"events": [{"event": "Order Completed", "count": 2, "within_days": 7}]},
}


def engage_seq(data_dir: Path) -> int:
    db = SqliteIdentityDb(data_dir / "identity.db")
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


def test_ordered_twice_enters_once(start_server: StartServer, recorder: Recorder) -> None:
    server: SluiceServer = start_server({"SLUICE_WORKERS": "1"})
    store = server.store
    store.put_config(
        ConfigObject("engage", "engage", msgspec.json.encode({"audiences": [AUDIENCE]}))
    )
    hook = {"id": "hook", "type": "webhook", "sources": ["sluice-engage"],
            "settings": {"urls": [f"{recorder.base_url}/hook"]}}  # fmt: skip
    store.put_config(ConfigObject("destination", "hook", msgspec.json.encode(hook)))
    auth = {"authorization": basic(WRITE_KEY)}
    assert server.post("/v1/batch", {"batch": [order(1)]}, headers=auth).status == 200
    wait_for(lambda: engage_seq(server.data_dir) >= 1, timeout=60, what="engage reads order 1")
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
    wait_for(lambda: engage_seq(server.data_dir) >= end, timeout=60, what="engage reads order 3")
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
