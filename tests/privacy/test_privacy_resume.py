"""A deletion killed with kill -9 in the middle resumes after a restart and completes: the legs
recorded before the crash stay done, the interrupted one runs again, nothing is left behind.
The regulation is made with the real CLI (`sluice regulations create`)."""

from __future__ import annotations

import gzip
import uuid
import zlib
from pathlib import Path

import msgspec
from privacy_kit import sluice, traces

from server import WRITE_KEY, SluiceServer, StartServer, wait_for
from sluice.archive.layout import DAY_MS, day_dir, file_name
from sluice.archive.writer import CURSOR
from sluice.store.base import Store

DAY = 1_717_200_000_000 - 1_717_200_000_000 % DAY_MS  # an old day the writer never touches
FILES = 40
LINES = 25_000  # a million archived events: the archive leg takes seconds, time to kill it
ENV = {
    "SLUICE_WORKERS": "1",
    "SLUICE_ARCHIVE_MAX_FILE_AGE_S": "1",
    "SLUICE_WAREHOUSE_INTERVAL_S": "0",  # the warehouse is another branch's target
}


def old_archive(data_dir: Path, victim: str) -> int:
    """Archive files of an old day, every thousandth event the victim's; returns how many."""
    folder = day_dir(data_dir / "archive", "web", DAY)
    folder.mkdir(parents=True)
    encode = msgspec.json.encode
    victims = 0
    for f in range(FILES):
        first = 10**12 + f * LINES
        lines = []
        for i in range(LINES):
            user = victim if i % 1000 == 7 else f"someone-{i % 5000}"
            victims += user == victim
            lines.append(
                encode({"type": "track", "event": "Old", "userId": user, "messageId": f"{f}-{i}"})
            )
        packer = zlib.compressobj(1, zlib.DEFLATED, 31)
        data = packer.compress(b"\n".join(lines) + b"\n") + packer.flush()
        (folder / file_name(first, first + LINES - 1)).write_bytes(data)
    return victims


def legs(store: Store, regulate_id: str) -> dict[str, str]:
    return {leg.target: leg.status for leg in store.regulation_legs(regulate_id)}


def test_kill_9_mid_deletion_then_restart_completes(
    start_server: StartServer, seeded_store: tuple[dict[str, str], Path]
) -> None:
    env, data_dir = seeded_store
    server: SluiceServer = start_server({**ENV, **env}, data_dir=data_dir)
    victim = f"victim-{uuid.uuid4().hex[:10]}"
    body = {"batch": [{"type": "track", "userId": victim, "event": "New"} for _ in range(3)]}
    assert server.post("/v1/batch", body, key=WRITE_KEY).status == 200
    keeper = {"type": "identify", "userId": "keeper", "traits": {"plan": "pro"}}
    assert server.post("/v1/batch", {"batch": [keeper]}, key=WRITE_KEY).status == 200
    old_victims = old_archive(data_dir, victim)
    store = server.store
    wait_for(lambda: (store.find_cursor(CURSOR) or 0) >= store.last_seq(), timeout=60)

    out = sluice(data_dir, env, "regulations", "create", "--type", "DELETE_ONLY", victim)
    regulate_id = out.stdout.split()[0]
    assert out.stdout.split()[1] == "INITIALIZED"
    wait_for(
        lambda: legs(store, regulate_id).get("log") == "FINISHED",
        timeout=60,
        interval=0.01,
        what="the log leg",
    )
    server.kill()  # kill -9 of every process, the deletion's batch lane included
    at_kill = legs(store, regulate_id)
    assert at_kill.get("archive") != "FINISHED", at_kill  # killed mid-deletion
    reg = store.regulation(regulate_id)
    assert reg is not None and reg.status == "RUNNING" and reg.subject_ids == (victim,)

    server.start()
    wait_for(
        lambda: (store.regulation(regulate_id) or reg).status == "FINISHED",
        timeout=180,
        interval=0.5,
        what="the regulation to finish after the restart",
    )
    done = {leg.target: leg for leg in store.regulation_legs(regulate_id)}
    assert {"log", "archive", "profiles"} <= set(done)  # and the workspace's warehouse
    assert {leg.status for leg in done.values()} == {"FINISHED"}, done
    server.stop()
    assert traces(data_dir, env.get("SLUICE_DATABASE_URL"), victim) == []
    # Every other old event is still there, in files of the same names.
    folder = day_dir(data_dir / "archive", "web", DAY)
    files = sorted(folder.iterdir())
    assert len(files) == FILES and all(not f.name.startswith(".") for f in files)
    remaining = sum(gzip.decompress(f.read_bytes()).count(b"\n") for f in files)
    assert remaining == FILES * LINES - old_victims
