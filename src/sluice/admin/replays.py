"""Replays started through the admin API: `sluice replay`, run in the background of the server.

A replay runs as a task in the HTTP worker process that received the request, with the same
`archive.replay.Replay` the CLI uses: rate limited, and saving its position after every batch
in its state file (`<data dir>/replays/<destination>-<hash>.json`, one per destination, range and
filters). The state file's name is the replay's id.

The server has several worker processes, and any of them may answer the next request, so
everything a request needs to know lives outside the process:

- progress: the state file, which the replay rewrites after every batch;
- "running": a lease `replay:<id>` in the store, renewed while the task runs, so the same
  replay never runs twice at once (a second start answers 409) and a worker that dies frees it
  when the lease expires;
- a stop request: a file `<id>.stop` next to the state, which the running task looks for every
  second; the replay then ends after its batch in flight, and starting it again resumes;
- a failure: a file `<id>.error` with the message.

A replay interrupted by a server restart is resumed by starting it again (`POST` with the same
request): it continues from its state file, as the CLI does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from sluice.admin.errors import Conflict, Invalid, NotFound
from sluice.archive.reader import ArchiveQuery, ArchiveQueryError, parse_time
from sluice.archive.replay import (
    DEFAULT_RATE,
    STATE_FOLDER,
    Replay,
    ReplayError,
    ReplayRequest,
    ReplayState,
)
from sluice.config import Settings
from sluice.delivery.config import DestinationConfigError
from sluice.delivery.sender import new_session
from sluice.spec.timestamps import format_ms
from sluice.store.base import Store

log = logging.getLogger(__name__)

LEASE_PREFIX = "replay:"
LEASE_TTL_S = 30.0
RENEW_EVERY_S = 10.0
STOP_CHECK_S = 1.0
# `<destination id>-<16 hex digits>`, as `archive.replay.state_path` names state files.
# The last millisecond of year 9999: later times cannot be written as ISO-8601.
MAX_TIME_MS = 253_402_300_799_999
REPLAY_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}-[0-9a-f]{16}\Z")


class ReplayBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What `POST /replays` takes: the options of `sluice replay`."""

    destination: str
    start: str | int = msgspec.field(name="from")
    end: str | int = msgspec.field(name="to")
    source: str | None = None
    type: str | None = None
    event: str | None = None
    rate: float = DEFAULT_RATE
    restart: bool = False


def replay_request(body: ReplayBody) -> ReplayRequest:
    """The request a body describes; raises `Invalid` naming the field at fault."""
    times = {}
    for field, value in (("from", body.start), ("to", body.end)):
        try:
            times[field] = value if isinstance(value, int) else parse_time(value)
        except ArchiveQueryError as exc:
            raise Invalid(f"{field}: {exc}", field=field) from None
        if not 0 <= times[field] <= MAX_TIME_MS:
            raise Invalid(f"{field}: Expected a time from 1970 to 9999", field=field)
    try:
        query = ArchiveQuery(times["from"], times["to"], body.source, body.type, body.event)
    except ArchiveQueryError as exc:
        raise Invalid(f"to: {exc}", field="to") from None
    if not body.rate >= 0:  # also refuses NaN
        raise Invalid("rate: Expected a number of events per second, 0 or more", field="rate")
    return ReplayRequest(body.destination, query, rate=body.rate, restart=body.restart)


class ReplayManager:
    """Starts replays in this process, and reports on every replay of the data dir."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.folder = settings.data_dir / STATE_FOLDER
        self._tasks: dict[str, asyncio.Task[None]] = {}

    # --- starting ----------------------------------------------------------------------------
    async def start(self, request: ReplayRequest) -> tuple[dict[str, Any], bool]:
        """Start (or resume) a replay; returns its status and whether it started.

        A replay already complete is not sent again unless the request says `restart`.
        Raises `NotFound` (no such destination), `Conflict` (running already).
        """
        session = new_session()
        try:
            replay = await asyncio.to_thread(self._replay, request, session)
            replay_id = replay.state_file.stem
            holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
            claimed = await asyncio.to_thread(
                self.store.claim_lease, LEASE_PREFIX + replay_id, holder, LEASE_TTL_S
            )
            if not claimed:
                raise Conflict(f"Replay {replay_id} is running already", code="replay_running")
        except BaseException:
            await session.close()
            raise
        try:
            state = await asyncio.to_thread(self._prepare, replay, replay_id)
        except BaseException:
            await session.close()
            await asyncio.to_thread(self._release, replay_id, holder)
            raise
        if state.done:
            await session.close()
            await asyncio.to_thread(self._release, replay_id, holder)
            return await asyncio.to_thread(self.status, replay_id), False
        task = asyncio.create_task(self._run(replay, replay_id, session, holder))
        self._tasks[replay_id] = task  # a reference, so the task is not garbage-collected
        task.add_done_callback(lambda _: self._tasks.pop(replay_id, None))
        return await asyncio.to_thread(self.status, replay_id), True

    def _replay(self, request: ReplayRequest, session: aiohttp.ClientSession) -> Replay:
        try:
            return Replay(self.settings, self.store, request, session)
        except DestinationConfigError as exc:
            raise Conflict(
                f"Destination {request.destination_id!r} cannot be used: {exc}",
                code="destination_invalid",
            ) from None
        except ReplayError as exc:
            raise NotFound(str(exc)) from None

    def _prepare(self, replay: Replay, replay_id: str) -> ReplayState:
        """Clear what a previous run left, and write the state the run starts from.

        Writing it now (rather than after the first batch) lets every worker report the
        replay from the moment it is accepted.
        """
        try:
            state = replay.load_state()
        except ReplayError as exc:
            raise Conflict(f"{exc}", code="replay_damaged") from None
        for path in (self._stop_file(replay_id), self._error_file(replay_id)):
            path.unlink(missing_ok=True)
        if not state.done:
            replay._save_state(state)  # the replay's own atomic write
        return state

    async def _run(
        self, replay: Replay, replay_id: str, session: aiohttp.ClientSession, holder: str
    ) -> None:
        watcher = asyncio.create_task(self._watch(replay, replay_id, holder))
        try:
            await replay.run()
        except Exception as exc:
            log.exception("replay %s failed", replay_id)
            await asyncio.to_thread(self._error_file(replay_id).write_text, f"{exc}\n")
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await session.close()
            await asyncio.to_thread(self._release, replay_id, holder)

    async def _watch(self, replay: Replay, replay_id: str, holder: str) -> None:
        """Renew the lease while the replay runs, and stop it when a stop is requested."""
        renewed = time.monotonic()
        stop_file = self._stop_file(replay_id)
        while True:
            await asyncio.sleep(STOP_CHECK_S)
            if await asyncio.to_thread(stop_file.exists):
                replay.stop()
            if time.monotonic() - renewed >= RENEW_EVERY_S:
                kept = await asyncio.to_thread(
                    self.store.claim_lease, LEASE_PREFIX + replay_id, holder, LEASE_TTL_S
                )
                renewed = time.monotonic()
                if not kept:  # another worker took it over: this one must not go on
                    log.warning("replay %s lost its lease; stopping", replay_id)
                    replay.stop()

    def _release(self, replay_id: str, holder: str) -> None:
        self.store.release_lease(LEASE_PREFIX + replay_id, holder)
        self._stop_file(replay_id).unlink(missing_ok=True)

    # --- stopping ----------------------------------------------------------------------------
    def request_stop(self, replay_id: str) -> dict[str, Any]:
        """Ask the running replay to stop after its batch in flight; raises `Conflict`."""
        status = self.status(replay_id)
        if not status["running"]:
            raise Conflict(f"Replay {replay_id} is not running", code="not_running")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._stop_file(replay_id).touch()
        return {**status, "stopping": True}

    # --- reporting ---------------------------------------------------------------------------
    def status(self, replay_id: str) -> dict[str, Any]:
        """What a replay has done, and whether it is running; raises `NotFound`."""
        if REPLAY_ID.fullmatch(replay_id) is None:
            raise NotFound(f"No replay {replay_id!r}")
        try:
            state = msgspec.json.decode(self._state_file(replay_id).read_bytes(), type=ReplayState)
        except FileNotFoundError:
            raise NotFound(f"No replay {replay_id!r}") from None
        except msgspec.DecodeError as exc:
            raise Conflict(
                f"Replay {replay_id}: damaged state ({exc})", code="replay_damaged"
            ) from None
        return self._document(replay_id, state, self._running_ids())

    def list(self) -> list[dict[str, Any]]:
        """Every replay with a state file, the most recently active first."""
        try:
            files = sorted(self.folder.glob("*.json"), key=_mtime, reverse=True)
        except FileNotFoundError:
            return []
        running = self._running_ids()
        found = []
        for path in files:
            if REPLAY_ID.fullmatch(path.stem) is None:
                continue
            try:
                state = msgspec.json.decode(path.read_bytes(), type=ReplayState)
            except (OSError, msgspec.DecodeError):
                continue  # being replaced right now, or damaged: `status` says which
            found.append(self._document(path.stem, state, running))
        return found

    def _running_ids(self) -> set[str]:
        # Leases expire by the store's clock; on one machine (SQLite) that is this clock too.
        now_ms = int(time.time() * 1000)
        return {
            lease.name.removeprefix(LEASE_PREFIX)
            for lease in self.store.leases()
            if lease.name.startswith(LEASE_PREFIX) and lease.expires_at_ms > now_ms
        }

    def _document(self, replay_id: str, state: ReplayState, running: set[str]) -> dict[str, Any]:
        try:
            error: str | None = self._error_file(replay_id).read_text().strip() or None
        except FileNotFoundError:
            error = None
        is_running = replay_id in running
        return {
            "id": replay_id,
            "destination": state.destination,
            "from": format_ms(state.start_ms),
            "to": format_ms(state.end_ms),
            "source": state.source,
            "type": state.type,
            "event": state.event,
            "read": state.read,
            "sent": state.sent,
            "filtered": state.filtered,
            "parked": state.parked,
            "done": state.done,
            "running": is_running,
            "stopping": is_running and self._stop_file(replay_id).exists(),
            "position": {"file": state.file, "line": state.line},
            "error": error,
        }

    def _state_file(self, replay_id: str) -> Path:
        return self.folder / f"{replay_id}.json"

    def _stop_file(self, replay_id: str) -> Path:
        return self.folder / f"{replay_id}.stop"

    def _error_file(self, replay_id: str) -> Path:
        return self.folder / f"{replay_id}.error"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
