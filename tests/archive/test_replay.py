"""Replay from the archive to a webhook destination: real files, real store, real HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from recorder import Recorder, Reply
from sluice.archive.layout import DAY_MS
from sluice.archive.reader import ArchiveQuery
from sluice.archive.replay import Replay, ReplayError, ReplayRequest, ReplayState, state_path
from sluice.archive.writer import ArchiveWriter
from sluice.config import Settings
from sluice.delivery.sender import new_session
from sluice.spec.timestamps import format_ms, parse_ms
from sluice.store.base import AppendBatch, ConfigObject, NewEvent
from sluice.store.sqlite import SqliteStore

DAY = parse_ms("2024-06-01T00:00:00Z") or 0
HOUR_MS = 3_600_000
START, END = DAY + HOUR_MS, DAY + 2 * HOUR_MS  # the range replayed in most tests
REPLAYED = {"All": False, "Webhooks": True}


def event(n: int, received: int, **fields: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"u{n}",
        "messageId": f"r{n}",
        "receivedAt": format_ms(received),
        "properties": {"n": n},
        **fields,
    }


def archive(
    store: SqliteStore, settings: Settings, *events: dict[str, Any], source: str = "web"
) -> None:
    """Append the events to the log and let the real writer archive them."""
    batch = AppendBatch()
    for doc in events:
        received = parse_ms(doc["receivedAt"]) or 0
        body = msgspec.json.encode(doc)
        batch.events.append(
            NewEvent(source, doc["messageId"], doc["type"], doc.get("event"), received, body)
        )
    store.append(batch)
    writer = ArchiveWriter(settings, store)
    writer.step(now=(DAY + 3 * DAY_MS) / 1000)
    writer.close()


def add_destination(store: SqliteStore, recorder: Recorder, **extra: Any) -> None:
    doc = {
        "id": "hook",
        "type": "webhook",
        "settings": {"urls": [recorder.base_url + "/hook"]},
        **extra,
    }
    store.put_config(ConfigObject("destination", "hook", msgspec.json.encode(doc)))


def replay(
    settings: Settings,
    store: SqliteStore,
    query: ArchiveQuery | None = None,
    stop_after_batches: int | None = None,
    **options: Any,
) -> tuple[ReplayState, Replay]:
    request = ReplayRequest("hook", query or ArchiveQuery(START, END), **options)

    async def run() -> tuple[ReplayState, Replay]:
        async with new_session() as session:
            job = Replay(settings, store, request, session)
            batches = 0

            def progress(state: ReplayState, done: int, total: int) -> None:
                nonlocal batches
                batches += 1
                if stop_after_batches is not None and batches >= stop_after_batches:
                    job.stop()

            return await job.run(progress), job

    return asyncio.run(run())


def sent_ids(recorder: Recorder) -> list[str]:
    return [r.json()["messageId"] for r in recorder.requests]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


@pytest.fixture
def store(settings: Settings) -> Iterator[SqliteStore]:
    s = SqliteStore(settings.log_path, synchronous="normal")
    try:
        yield s
    finally:
        s.close()


def test_replay_sends_the_range_to_that_destination_only(
    store: SqliteStore, settings: Settings, recorder: Recorder
) -> None:
    consent = {"categoryPreferences": {"analytics": True}}
    archive(
        store,
        settings,
        event(0, START - 1),  # before the range
        event(1, START, integrations={"All": False}),  # live, no destination would get these
        event(2, START + 10, integrations={"Webhooks": False, "Amplitude": True}),
        event(3, START + 20, context={"consent": consent}),
        event(4, END - 1),
        event(5, END),  # the end is exclusive
    )
    add_destination(store, recorder)
    state, job = replay(settings, store)
    bodies = {r.json()["messageId"]: r.json() for r in recorder.requests}  # sent concurrently
    assert sorted(bodies) == ["r1", "r2", "r3", "r4"] and len(recorder.requests) == 4
    assert all(b["integrations"] == REPLAYED for b in bodies.values())
    assert bodies["r3"]["context"] == {"consent": consent}  # consent is kept
    assert bodies["r4"] == {**event(4, END - 1), "integrations": REPLAYED}  # nothing else changes
    assert (state.read, state.sent, state.filtered, state.parked) == (4, 4, 0, 0)
    assert state.done and not job.stopped
    assert store.find_cursor("destination:hook") is None  # the live consumer is not touched
    assert store.delivery_counters() == {}  # replays are not live delivery stats


def test_destination_filters_and_query_filters_apply(
    store: SqliteStore, settings: Settings, recorder: Recorder
) -> None:
    archive(
        store,
        settings,
        event(1, START),
        event(2, START + 1, event="Signed Up"),
        event(3, START + 2, properties={"secret": "x", "n": 3}),
        {**event(4, START + 3), "type": "identify", "event": None, "traits": {"plan": "pro"}},
    )
    filters = [
        {"title": "No sign-ups", "if": "event = 'Signed Up'", "actions": [{"type": "drop"}]},
        {
            "title": "No secrets",
            "if": "all",
            "actions": [{"type": "drop_properties", "fields": {"properties": ["secret"]}}],
        },
    ]
    add_destination(store, recorder, filters=filters)
    state, _ = replay(settings, store, ArchiveQuery(START, END, type="track"))
    assert sorted(sent_ids(recorder)) == ["r1", "r3"]
    (third,) = [r.json() for r in recorder.requests if r.json()["messageId"] == "r3"]
    assert third["properties"] == {"n": 3}
    assert (state.read, state.sent, state.filtered) == (3, 2, 1)
    recorder.clear()
    state, _ = replay(settings, store, ArchiveQuery(START, END, event="Order Completed"))
    assert sorted(sent_ids(recorder)) == ["r1", "r3"]


def test_a_disabled_destination_still_gets_a_replay(
    store: SqliteStore, settings: Settings, recorder: Recorder
) -> None:
    archive(store, settings, event(1, START))
    add_destination(store, recorder, enabled=False)
    replay(settings, store)
    assert sent_ids(recorder) == ["r1"]


def test_events_of_sources_not_connected_count_as_filtered(
    store: SqliteStore, settings: Settings, recorder: Recorder
) -> None:
    archive(store, settings, event(1, START), event(2, START + 1), source="web")
    archive(store, settings, event(3, START + 2), source="app")
    add_destination(store, recorder, sources=["app"])
    state, _ = replay(settings, store)
    assert sent_ids(recorder) == ["r3"]
    assert (state.read, state.sent, state.filtered) == (3, 1, 2)


def test_the_rate_limit_spaces_events_out(
    store: SqliteStore, settings: Settings, recorder: Recorder
) -> None:
    archive(store, settings, *(event(n, START + n) for n in range(40)))
    add_destination(store, recorder)
    started = time.monotonic()
    state, _ = replay(settings, store, rate=40)
    elapsed = time.monotonic() - started
    assert state.sent == 40 and len(recorder.requests) == 40
    # Batches of 4 (a tenth of a second each): the last starts 36 / 40 s after the first.
    assert elapsed >= 0.85
    times = [r.at for r in recorder.requests]
    # The schedule is 0.9 s from the first batch to the last; a first request that a busy
    # machine delays shortens the span measured at the receiver, never the whole replay.
    assert max(times) - min(times) >= 0.6
    assert elapsed < 10  # loose: the limit is a ceiling, but the replay does not crawl


def test_a_stopped_replay_resumes_and_sends_nothing_twice(
    store: SqliteStore, settings: Settings, recorder: Recorder
) -> None:
    archive(store, settings, *(event(n, START + n) for n in range(30)), source="web")
    archive(store, settings, *(event(n, START + n) for n in range(30, 40)), source="app")
    add_destination(store, recorder)
    state, job = replay(settings, store, stop_after_batches=2, rate=100)  # batches of 10
    assert job.stopped and not state.done
    assert len(recorder.requests) == 20 and state.sent == 20
    request = ReplayRequest("hook", ArchiveQuery(START, END), rate=100)
    saved = msgspec.json.decode(state_path(settings.data_dir, request).read_bytes())
    assert saved["line"] == 10 and saved["file"].startswith("web/")  # app sorts first
    state, job = replay(settings, store, rate=100)
    assert state.done and not job.already_done
    ids = sent_ids(recorder)
    assert sorted(ids) == sorted(f"r{n}" for n in range(40)) and len(ids) == 40
    assert state.read == 40 and state.sent == 40
    # Done: the same replay again sends nothing; --restart sends it all again.
    _, job = replay(settings, store, rate=100)
    assert job.already_done and len(recorder.requests) == 40
    state, _ = replay(settings, store, rate=0, restart=True)
    assert state.sent == 40 and len(recorder.requests) == 80


def test_refused_events_are_parked_for_the_destination(
    store: SqliteStore, settings: Settings, recorder: Recorder
) -> None:
    archive(store, settings, event(1, START), event(2, START + 1))
    add_destination(store, recorder)
    store.commit_cursor("destination:hook", 1)  # where the live consumer is
    recorder.respond_with(Reply(400, {"error": "bad"}))
    state, _ = replay(settings, store)
    assert (state.sent, state.parked) == (0, 2)
    parked = store.parked("hook")
    assert sorted(p.message_id for p in parked) == ["r1", "r2"]
    assert {p.reason for p in parked} == {"HTTP 400"}
    assert all(msgspec.json.decode(p.payload)["integrations"] == REPLAYED for p in parked)
    assert store.find_cursor("destination:hook") == 1  # the live cursor did not move


def test_retryable_errors_are_retried_not_parked(
    store: SqliteStore, settings: Settings, recorder: Recorder
) -> None:
    """Archived events are old; the retry window counts from the replay, not from receipt."""
    archive(store, settings, event(1, START))
    add_destination(store, recorder)
    answers = iter([Reply(503)])
    recorder.respond_with(lambda _request: next(answers, Reply(200)))
    state, _ = replay(settings, store)
    assert (state.sent, state.parked) == (1, 0)
    assert sent_ids(recorder) == ["r1", "r1"]


def test_unknown_destination_is_an_error(store: SqliteStore, settings: Settings) -> None:
    with pytest.raises(ReplayError, match="no destination 'hook'"):
        replay(settings, store)


def test_cli_replay_resumes_after_ctrl_c(
    store: SqliteStore, settings: Settings, recorder: Recorder
) -> None:
    archive(store, settings, *(event(n, START + n) for n in range(60)))
    add_destination(store, recorder)
    # The command on the CLI's typer app, registered by importing its module (with one more
    # command: typer runs a lone command without its name).
    program = "import sluice.cli.replay, sluice.cli.status; from sluice.cli.app import app; app()"
    command = [
        sys.executable, "-c", program, "replay", "--from", format_ms(START), "--to", str(END),
        "--destination", "hook", "--rate", "20", "--data-dir", str(settings.data_dir),
    ]  # fmt: skip
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        recorder.wait_for(10, timeout=30)
        first.send_signal(signal.SIGINT)
        out, err = first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
    assert first.returncode == 130, err
    assert b"Interrupted" in out and b"resume" in out
    sent_first = len(recorder.requests)
    assert 10 <= sent_first < 60
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert b"Replay complete" in done.stdout
    ids = sent_ids(recorder)
    assert sorted(ids) == sorted(f"r{n}" for n in range(60)) and len(ids) == 60
