"""`sluice events` and `sluice status`, run as the real command against the data dir of a
server that is running (and receiving) at the same time."""

from __future__ import annotations

import os
import select
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest

from server import OTHER_KEY, SLUICE, WRITE_KEY, CounterDelta, SluiceServer, StartServer, clean_env

# What the module's server holds, oldest first: (write key, path, body).
EVENTS: list[tuple[str, str, dict[str, Any]]] = [
    (WRITE_KEY, "/v1/identify", {"userId": "ada", "traits": {"email": "ada@example.com"}}),
    (WRITE_KEY, "/v1/track", {"userId": "ada", "event": "Signed Up", "properties": {"plan": 1}}),
    (WRITE_KEY, "/v1/page", {"anonymousId": "anon-1", "name": "Pricing"}),
    (OTHER_KEY, "/v1/track", {"userId": "bob", "event": "Signed Up"}),
    (WRITE_KEY, "/v1/track", {"userId": "cy", "event": "Logged In"}),
    (WRITE_KEY, "/v1/identify", {"userId": "cy", "traits": {"name": "Cy"}}),
    (WRITE_KEY, "/v1/track", {"userId": "dee", "event": "Signed Up"}),
]
WEB_COUNT = sum(1 for key, _, _ in EVENTS if key == WRITE_KEY)


@pytest.fixture(scope="module")
def server(start_module_server: StartServer) -> SluiceServer:
    server = start_module_server({"SLUICE_WORKERS": "1"})  # one process: see CounterDelta
    for key, path, body in EVENTS:
        assert server.post(path, body, key=key).status == 200
    # One item rejected, so status has a reason to show.
    assert server.post("/v1/track", {"userId": "x"}).status == 200
    CounterDelta(server)  # a barrier: the counters of everything above are on disk
    return server


def sluice(*args: str, data_dir: Path | None, env: dict[str, str] | None = None) -> str:
    command = [*SLUICE, *args]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    result = subprocess.run(
        command, env=clean_env(env), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def json_lines(output: str) -> list[dict[str, Any]]:
    lines = output.splitlines()
    assert lines, "no output"
    values = [msgspec.json.decode(line) for line in lines]
    assert all(isinstance(v, dict) for v in values)
    return values


def user_event_payloads(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Leave out the barrier's probe events."""
    return [v for v in values if v.get("userId") != "probe"]


# --- events ------------------------------------------------------------------------------------
def test_events_pretty(server: SluiceServer) -> None:
    output = sluice("events", data_dir=server.data_dir)
    assert "Signed Up" in output
    assert "Logged In" in output
    assert "Pricing" in output
    assert "ada" in output
    assert "source=web" in output


def test_events_json_is_one_object_per_line(server: SluiceServer) -> None:
    values = user_event_payloads(json_lines(sluice("events", "--json", data_dir=server.data_dir)))
    assert [(v["type"], v.get("event")) for v in values] == [
        (body.get("type", path.rsplit("/", 1)[1]), body.get("event")) for _, path, body in EVENTS
    ]
    for value in values:
        assert value["receivedAt"].endswith("Z")
        assert value["messageId"]


def test_events_limit_gives_the_newest_oldest_first(server: SluiceServer) -> None:
    output = sluice("events", "--json", "--limit", "2", "--source", "web", data_dir=server.data_dir)
    values = json_lines(output)
    assert [(v["type"], v["userId"]) for v in values] == [("identify", "cy"), ("track", "dee")]


def test_events_source_filter(server: SluiceServer) -> None:
    values = json_lines(sluice("events", "--json", "--source", "app", data_dir=server.data_dir))
    assert [(v["userId"], v["event"]) for v in values] == [("bob", "Signed Up")]


def test_events_type_filter(server: SluiceServer) -> None:
    values = json_lines(sluice("events", "--json", "--type", "identify", data_dir=server.data_dir))
    values = user_event_payloads(values)
    assert [v["userId"] for v in values] == ["ada", "cy"]
    assert {v["type"] for v in values} == {"identify"}


def test_events_event_filter(server: SluiceServer) -> None:
    output = sluice("events", "--json", "--event", "Signed Up", data_dir=server.data_dir)
    assert [v["userId"] for v in json_lines(output)] == ["ada", "bob", "dee"]


def test_events_filters_combine(server: SluiceServer) -> None:
    output = sluice(
        "events", "--json", "--event", "Signed Up", "--source", "web", "--limit", "1",
        data_dir=server.data_dir,
    )  # fmt: skip
    assert [v["userId"] for v in json_lines(output)] == ["dee"]


def test_events_with_no_match_prints_nothing(server: SluiceServer) -> None:
    output = sluice("events", "--json", "--event", "Never Sent", data_dir=server.data_dir)
    assert output == ""


def test_events_finds_the_store_through_the_environment(server: SluiceServer) -> None:
    output = sluice(
        "events", "--json", "--source", "app", data_dir=None,
        env={"SLUICE_DATA_DIR": str(server.data_dir)},
    )  # fmt: skip
    assert [v["userId"] for v in json_lines(output)] == ["bob"]


def test_events_follow_prints_new_events(server: SluiceServer) -> None:
    command = [*SLUICE, "events", "--json", "--follow", "--limit", "1", "--source", "web"]
    proc = subprocess.Popen(
        [*command, "--data-dir", str(server.data_dir)],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    try:
        lines = LineReader(proc.stdout.fileno())
        assert msgspec.json.decode(lines.next(timeout=30))["userId"] == "dee"
        marker = f"follow-{uuid.uuid4()}"
        assert server.post("/v1/track", {"userId": marker, "event": "Followed"}).status == 200
        assert msgspec.json.decode(lines.next(timeout=30))["userId"] == marker
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


class LineReader:
    """Whole lines from a pipe, each within a deadline (a blocking readline could hang)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""

    def next(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out waiting for a line; got {self._buffer!r}"
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if ready:
                chunk = os.read(self._fd, 65536)
                assert chunk, "the command exited"
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line


# --- status ------------------------------------------------------------------------------------
@pytest.fixture
def status(server: SluiceServer) -> dict[str, Any]:
    CounterDelta(server)  # a barrier, in case an earlier test sent something
    result: dict[str, Any] = msgspec.json.decode(
        sluice("status", "--json", data_dir=server.data_dir)
    )
    return result


def test_status_json_shape(status: dict[str, Any], server: SluiceServer) -> None:
    assert set(status) == {
        "sources", "log_end", "destinations", "warehouses", "workers", "bridge", "archive",
        "identity", "regulations", "log_reads",
    }  # fmt: skip
    # The identity graph, as its consumer reports it (identity/report.py; tests/identity).
    assert all(set(g) >= {"position", "lag", "merges"} for g in status["identity"].values())
    assert status["regulations"] == {}
    assert status["log_reads"] == {"texts_replaced": 0, "compiled_reader_failures": 0}
    assert status["archive"]["storage"] == "local"
    assert status["bridge"] == {}  # no worker runs Segment's destinations here
    # The server's batch process holds the archive, warehouse and retention consumers; its
    # delivery process the destinations'. Each reports its pid, CPU time and memory.
    lanes = {w["lane"]: w for w in status["workers"].values()}
    assert set(lanes) == {"batch", "delivery"}
    assert {"archive", "retention", "warehouses"} <= set(lanes["batch"]["units"])
    assert lanes["batch"]["units"]["archive"]["lag"] >= 0
    for worker in lanes.values():
        assert worker["pid"] > 0 and worker["rss_mib"] > 0 and worker["cpu_s"] >= 0
    assert status["log_end"] == server.store.last_seq()
    for counters in status["sources"].values():
        assert all(isinstance(v, int) for v in counters.values())


def test_status_counts_per_source(status: dict[str, Any]) -> None:
    web = status["sources"]["web"]
    # Events sent to web: the module's, the rejected one, and maybe the follow test's.
    assert web["received"] in (WEB_COUNT + 1, WEB_COUNT + 2)
    assert web["stored"] == web["received"] - 1
    assert web["rejected:missing_event"] == 1
    assert status["sources"]["app"] == {"received": 1, "stored": 1, "stored:track": 1}


def test_status_pretty(server: SluiceServer) -> None:
    output = sluice("status", data_dir=server.data_dir, env={"COLUMNS": "200"})
    assert "web" in output
    assert "app" in output
    assert "missing_event=1" in output
