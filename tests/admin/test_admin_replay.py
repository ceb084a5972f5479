"""Replays through the admin API: events archived by the running server, replayed to a
recording server in the background, followed, stopped and resumed over HTTP."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest
from admin_client import Api

from recorder import Recorder
from server import WRITE_KEY, SluiceServer, wait_for
from sluice.archive.layout import archive_root
from sluice.archive.reader import ArchiveQuery, read_archive
from sluice.config import Settings
from sluice.spec.timestamps import format_ms

REPLAYED = {"All": False, "Webhooks": True}


@pytest.fixture(autouse=True)
def reset(api: Api) -> None:
    api.reset()


def now_ms() -> int:
    return int(time.time() * 1000)


def archive_events(server: SluiceServer, count: int) -> tuple[str, list[str], int, int]:
    """Send `count` track events of a new name; wait until the archive holds them all."""
    name = f"Replayed {uuid.uuid4()}"
    ids = [f"r{i}-{uuid.uuid4()}" for i in range(count)]
    start = now_ms() - 1000
    items = [{"type": "track", "event": name, "userId": "u", "messageId": i} for i in ids]
    res = server.post("/v1/batch", {"batch": items}, key=WRITE_KEY)
    assert res.status == 200, res.body
    end = now_ms() + 1000
    root = archive_root(Settings(data_dir=server.data_dir))
    query = ArchiveQuery(start, end, event=name)
    wait_for(
        lambda: len(list(read_archive(root, query))) == count,
        timeout=20,
        what="the archive files to be finalized",
    )
    return name, ids, start, end


def add_webhook(api: Api, recorder: Recorder, dest_id: str) -> None:
    body = {"id": dest_id, "type": "webhook", "settings": {"urls": [recorder.base_url + "/r"]}}
    api.ok(api.post("/destinations", body), 201)


def replay_body(dest_id: str, name: str, start: int, end: int, **extra: Any) -> dict[str, Any]:
    return {"destination": dest_id, "from": format_ms(start), "to": end, "event": name, **extra}


def finished(api: Api, replay_id: str) -> dict[str, Any] | None:
    status = api.ok(api.get(f"/replays/{replay_id}"))
    return status if status["done"] and not status["running"] else None


def test_replay_sends_archived_events_to_one_destination(
    api: Api, admin_server: SluiceServer, recorder: Recorder
) -> None:
    name, ids, start, end = archive_events(admin_server, 10)
    # Added after the events: live delivery starts at the log's end, so all it gets is replayed.
    add_webhook(api, recorder, "replayhook")

    body = replay_body("replayhook", name, start, end, rate=0)
    res = api.post("/replays", body)
    status = api.ok(res, 202)
    replay_id = status["id"]
    assert re.fullmatch(r"replayhook-[0-9a-f]{16}", replay_id)
    assert res.headers["location"] == f"/api/v1/replays/{replay_id}"
    assert status["destination"] == "replayhook" and status["event"] == name
    assert status["from"] == format_ms(start) and status["to"] == format_ms(end)

    done = wait_for(lambda: finished(api, replay_id), timeout=20, what="the replay to finish")
    assert done["read"] == 10 and done["sent"] == 10
    assert done["filtered"] == 0 and done["parked"] == 0 and done["error"] is None
    requests = recorder.wait_for(10)
    # One request per event, sent concurrently: compared without their order.
    assert sorted(r.json()["messageId"] for r in requests) == sorted(ids)
    assert all(r.json()["integrations"] == REPLAYED for r in requests)
    assert done in api.ok(api.get("/replays"))["replays"]

    # Complete: asking again sends nothing, unless asked to restart.
    again = api.post("/replays", body)
    assert again.status == 200 and again.json() == done
    time.sleep(0.5)
    assert len(recorder.requests) == 10
    api.ok(api.post("/replays", {**body, "restart": True}), 202)
    wait_for(lambda: len(recorder.requests) == 20, what="the restarted replay")
    assert sorted(r.json()["messageId"] for r in recorder.requests[10:]) == sorted(ids)


def test_a_stopped_replay_resumes_where_it_stopped(
    api: Api, admin_server: SluiceServer, recorder: Recorder
) -> None:
    name, ids, start, end = archive_events(admin_server, 20)
    add_webhook(api, recorder, "slowhook")

    body = replay_body("slowhook", name, start, end, rate=4)  # one event a quarter second
    replay_id = api.ok(api.post("/replays", body), 202)["id"]
    wait_for(lambda: len(recorder.requests) >= 2, what="the first events")
    res = api.post("/replays", body)
    assert res.status == 409
    assert res.json() == {
        "code": "replay_running",
        "message": f"Replay {replay_id} is running already",
    }

    stopping = api.ok(api.post(f"/replays/{replay_id}/stop"), 202)
    assert stopping["stopping"] is True and stopping["running"] is True
    stopped = wait_for(
        lambda: (s := api.ok(api.get(f"/replays/{replay_id}"))) and not s["running"] and s,
        timeout=10,
        what="the replay to stop",
    )
    assert stopped["done"] is False and 2 <= stopped["sent"] < 20
    assert stopped["sent"] == len(recorder.requests)
    res = api.post(f"/replays/{replay_id}/stop")
    assert res.status == 409 and res.json()["code"] == "not_running"

    # Same destination, range and filters: the same replay, resumed (faster this time).
    resumed = api.ok(api.post("/replays", {**body, "rate": 0}), 202)
    assert resumed["id"] == replay_id
    done = wait_for(lambda: finished(api, replay_id), timeout=20, what="the resumed replay")
    assert done["sent"] == 20 and done["read"] == 20
    sent = [r.json()["messageId"] for r in recorder.requests]
    assert sorted(sent) == sorted(ids)  # each exactly once: nothing sent twice on resuming


@pytest.mark.parametrize(
    ("body", "status", "field", "message"),
    [
        (
            {"destination": "nowhere", "from": "2024-01-01", "to": "2024-01-02"},
            404,
            None,
            "no destination 'nowhere' in the workspace",
        ),
        (
            {"destination": "hook", "from": "yesterday", "to": "2024-01-02"},
            422,
            "from",
            "from: 'yesterday' is neither ISO-8601 nor epoch milliseconds",
        ),
        (
            {"destination": "hook", "from": "2024-01-02", "to": "2024-01-01"},
            422,
            "to",
            "to: the end of the range must be after its start",
        ),
        (
            {"destination": "hook", "from": 0, "to": 10, "rate": -1},
            422,
            "rate",
            "rate: Expected a number of events per second, 0 or more",
        ),
        (
            {"destination": "hook", "from": 0, "to": 10, "speed": 3},
            422,
            "",
            "Object contains unknown field speed",
        ),
        ({"from": 0, "to": 10}, 422, "", "Object missing required field destination"),
    ],
    ids=[
        "unknown-destination",
        "bad-time",
        "empty-range",
        "negative-rate",
        "unknown-field",
        "no-destination",
    ],
)
def test_replay_requests_that_cannot_start(
    api: Api, recorder: Recorder, body: dict[str, Any], status: int, field: str, message: str
) -> None:
    add_webhook(api, recorder, "hook")
    res = api.post("/replays", body)
    assert res.status == status, res.body
    error = res.json()
    assert error["message"] == message
    assert error.get("field") == field


def test_unknown_replays(api: Api) -> None:
    for replay_id in ("hook-0123456789abcdef", "not-an-id", "..%2F..%2Fetc"):
        res = api.get(f"/replays/{replay_id}")
        assert res.status == 404, replay_id
        assert res.json()["code"] == "not_found"
    assert api.post("/replays/hook-0123456789abcdef/stop").status == 404
