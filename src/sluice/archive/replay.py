"""Replay: send archived events of a time range to one destination, as live delivery would.

Segment's rule for replays: the `integrations` object is replaced by `{"All": false,
"<destination>": true}` so the events reach that destination only, and the destination's own
filters still apply. Delivery goes through the delivery engine's code (`plan` and
`Sender.deliver`): routing, filters, mappings, batching and parking behave exactly as live.
Three differences, all deliberate: a replay retries a failed event in place (it has no retry
set of its own: a batch waits for its retries, then parks), the retry window counts from when
the replay sends an event (counted from its original receipt, a month-old event would be parked
at its first 500), and a replay adds nothing to the live delivery counters (Segment does not
show replays in Event Delivery either). Events a replay parks go to the destination's parked
table like any other.

A replay is rate limited (events per second, default 1,000) so live traffic keeps flowing, and
resumable: a state file per (destination, range, filters) in `<data_dir>/replays/` remembers the
last archive file and line completed. A stop requested with `stop()` finishes the batch in flight
first, so a resumed replay sends nothing twice; a killed one sends its last batch again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import os
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from sluice.archive.reader import (
    ArchivedEvent,
    ArchiveFile,
    ArchiveQuery,
    archive_files,
    archive_location,
    read_file,
)
from sluice.config import Settings
from sluice.delivery.config import DestinationConfig, compile_destination
from sluice.delivery.plan import plan
from sluice.delivery.sending import Sender
from sluice.devicemode import is_device_mode
from sluice.errors import SluiceError
from sluice.store.base import Store, StoredEvent
from sluice.store.base_delivery import DeliveryCommit, NewParked
from sluice.transform.stages import destination_stages

DEFAULT_RATE = 1000.0  # events/s
MAX_BATCH_EVENTS = 500
BATCHES_PER_S = 10  # a batch is a tenth of a second of the rate: smooth pacing
STATE_FOLDER = "replays"


class ReplayError(SluiceError):
    """A replay cannot start: unknown destination, or an unusable request."""


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    destination_id: str
    query: ArchiveQuery
    rate: float = DEFAULT_RATE  # events/s; 0 = as fast as the destination takes them
    restart: bool = False  # ignore the saved position


class ReplayState(msgspec.Struct, kw_only=True):
    """What a replay has done so far; saved after every batch."""

    destination: str
    start_ms: int
    end_ms: int
    source: str | None = None
    type: str | None = None
    event: str | None = None
    file: str = ""  # the last file read from (`<source>/<day>/<name>`), "" before the first
    order: tuple[int, str, int] | None = None  # that file's place in the reading order
    line: int = 0  # lines of that file completed
    read: int = 0  # events of the range (after the type/event filters) taken from the archive
    sent: int = 0  # delivered
    filtered: int = 0  # not sent by the destination's rules (filters, mappings, sources, ...)
    parked: int = 0
    done: bool = False


_state_decoder = msgspec.json.Decoder(ReplayState)


def state_path(data_dir: Path, request: ReplayRequest) -> Path:
    """The state file of a replay: one per destination, range and filters."""
    q = request.query
    identity = [request.destination_id, q.start_ms, q.end_ms, q.source_id, q.type, q.event]
    digest = hashlib.sha256(msgspec.json.encode(identity)).hexdigest()[:16]
    return data_dir / STATE_FOLDER / f"{request.destination_id}-{digest}.json"


def load_destination(store: Store, destination_id: str) -> DestinationConfig:
    """The destination's compiled configuration (it may be disabled: replays still go)."""
    for obj in store.list_config("destination"):
        if obj.id == destination_id:
            if is_device_mode(obj.body):
                raise ReplayError(
                    f"destination {destination_id!r} runs in the page (mode: device):"
                    " Sluice cannot send it events"
                )
            # Segment: a destination-scoped transformation applies to a replay too.
            return compile_destination(obj.body, destination_stages(store).get(destination_id))
    raise ReplayError(f"no destination {destination_id!r} in the workspace")


ProgressCallback = Callable[[ReplayState, int, int], None]  # state, bytes done, bytes total


class Replay:
    """One replay; `await run()` sends what is left of it, `stop()` ends it after a batch."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        request: ReplayRequest,
        session: aiohttp.ClientSession,
    ) -> None:
        if request.rate < 0:
            raise ReplayError("the rate must be positive (or 0 for no limit)")
        self.store = store
        self.request = request
        self.root = archive_location(settings)  # the folder, or the bucket (s3 storage)
        self.state_file = state_path(settings.data_dir, request)
        self.config = load_destination(store, request.destination_id)
        self.name = self.config.names[0]
        self.sender = Sender(self.config, session)
        rate = request.rate
        per_batch = int(rate / BATCHES_PER_S) if rate else MAX_BATCH_EVENTS
        self.batch_events = max(1, min(MAX_BATCH_EVENTS, per_batch))
        self.stopped = False  # the last run ended on `stop()` before the end
        self.already_done = False  # the last run found the replay complete: nothing sent
        self._stopping = False

    def stop(self) -> None:
        """Finish the batch in flight, save the position, and return from `run`."""
        self._stopping = True

    # --- state -----------------------------------------------------------------------------
    def _fresh_state(self) -> ReplayState:
        q = self.request.query
        return ReplayState(
            destination=self.request.destination_id,
            start_ms=q.start_ms,
            end_ms=q.end_ms,
            source=q.source_id,
            type=q.type,
            event=q.event,
        )

    def load_state(self) -> ReplayState:
        if self.request.restart:
            return self._fresh_state()
        try:
            return _state_decoder.decode(self.state_file.read_bytes())
        except FileNotFoundError:
            return self._fresh_state()
        except msgspec.DecodeError as exc:
            raise ReplayError(f"{self.state_file} is damaged ({exc}); use --restart") from exc

    def _save_state(self, state: ReplayState) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_file.with_name(self.state_file.name + ".partial")
        with open(partial, "wb") as out:
            out.write(msgspec.json.encode(state))
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, self.state_file)

    # --- the run ---------------------------------------------------------------------------
    async def run(self, on_progress: ProgressCallback | None = None) -> ReplayState:
        """Send the rest of the replay; returns its state (`done` unless stopped)."""
        state = self.load_state()
        if state.done:
            self.already_done = True
            return state
        query = self.request.query
        files = await asyncio.to_thread(archive_files, self.root, query)
        if state.order is not None:
            files = [f for f in files if f.order >= state.order]
        total = sum(f.size for f in files)
        before = itertools.accumulate((f.size for f in files), initial=0)
        offsets = {f.order: done for f, done in zip(files, before, strict=False)}  # bytes before
        events = _events(files, query, state.order, state.line)
        started = time.monotonic()
        admitted = 0
        try:
            while not self._stopping:
                batch = await asyncio.to_thread(_take, events, self.batch_events)
                if not batch:
                    state.done = True
                    break
                if self.request.rate:  # the batch may start once the rate allows its events
                    wait = started + admitted / self.request.rate - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                admitted += len(batch)
                await self._send(batch, state)
                last = batch[-1]
                state.file, state.order, state.line = last.file.name, last.file.order, last.line
                await asyncio.to_thread(self._save_state, state)
                if on_progress is not None:
                    on_progress(state, offsets.get(last.file.order, 0), total)
        finally:
            with contextlib.suppress(ValueError):  # still running in its thread (aborted)
                events.close()
        self.stopped = not state.done
        if state.done:
            await asyncio.to_thread(self._save_state, state)
            if on_progress is not None:
                on_progress(state, total, total)
        return state

    async def _send(self, batch: Sequence[ArchivedEvent], state: ReplayState) -> None:
        now_ms = int(time.time() * 1000)
        work = plan(self.config, [self._stored(a, now_ms) for a in batch])
        result = await self.sender.deliver(work, retry_in_step=True)
        if result.parked:
            await asyncio.to_thread(self._save_parked, result.parked, result.attempts)
        sources = self.config.sources
        not_connected = sum(1 for a in batch if sources and a.file.source_id not in sources)
        state.read += len(batch)
        state.sent += len(result.delivered)
        state.filtered += sum(work.filtered.values()) + not_connected
        state.parked += len(result.parked)

    def _stored(self, archived: ArchivedEvent, now_ms: int) -> StoredEvent:
        """An archived event as the delivery engine takes it, addressed to this destination only.

        `seq` is 0: the event comes from the archive, not from a position in the log.
        """
        event: dict[str, Any] = archived.event
        event["integrations"] = {"All": False, self.name: True}
        name = event.get("event")
        return StoredEvent(
            seq=0,
            source_id=archived.file.source_id,
            message_id=str(event.get("messageId", "")),
            type=str(event.get("type", "")),
            event=name if isinstance(name, str) else None,
            received_at_ms=now_ms,
            payload=msgspec.json.encode(event),
        )

    def _save_parked(self, parked: list[NewParked], attempts: int) -> None:
        # `cursor=None`: the live consumer's position is not the replay's to move.
        self.store.commit_delivery(
            DeliveryCommit(
                destination=self.config.id,
                cursor=None,
                first_seq=0,
                last_seq=-1,
                finished_at_ms=int(time.time() * 1000),
                attempts=attempts,
                parked=parked,
            )
        )


def _events(
    files: Sequence[ArchiveFile],
    query: ArchiveQuery,
    resume_order: tuple[int, str, int] | None,
    resume_line: int,
) -> Generator[ArchivedEvent, None, None]:
    """The events of the files in order, after the lines of the resumed file already done."""
    for file in files:
        skip = resume_line if file.order == resume_order else 0
        yield from read_file(file, query, skip)


def _take(events: Generator[ArchivedEvent, None, None], n: int) -> list[ArchivedEvent]:
    return list(itertools.islice(events, n))
