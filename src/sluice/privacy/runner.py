"""The regulation runner: a batch-lane unit that carries each deletion through its targets.

One process runs it at a time (the unit's lease, `runtime/batch_lane.py`). For each regulation
not over yet, once its suppression had time to reach every collector (`not_before`), it calls
each target in order and records the leg's outcome as soon as it is known: a kill -9 loses at
most the leg in flight, which runs again (targets are idempotent). `log` goes first and is a
barrier: the archive and profiles legs run only after the log holds none of the subject's events,
so no consumer can copy one again. A leg that answers RETRYING is tried again on a later pass,
with a backoff; FINISHED, FAILED and NOT_SUPPORTED legs are final. A leg that raises is tried
again too, and FAILED after MAX_LEG_ERRORS errors in a row.

The overall status (Segment's): RUNNING while a leg is not final; FINISHED when every leg
finished (or does not apply); FAILED when a leg of Sluice's own stores failed; PARTIAL_SUCCESS
when those all finished but a destination's deletion request failed. When it is over, the
regulation forgets its subject ids (a count stays). Each change of state is logged once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from sluice.config import Settings
from sluice.privacy.regulation import EFFECTS
from sluice.privacy.targets.archive import ArchiveTarget
from sluice.privacy.targets.base import (
    OutcomeStatus,
    Subject,
    SubjectType,
    Target,
    TargetOutcome,
)
from sluice.privacy.targets.external import external_targets
from sluice.privacy.targets.log import LogTarget, progress_unit
from sluice.privacy.targets.profiles import ProfilesTarget
from sluice.store.base import Store
from sluice.store.base_privacy import LegRow, RegulationRow
from sluice.store.factory import open_store
from sluice.workspace import export_workspace

log = logging.getLogger(__name__)

POLL_S = 2.0
MIN_BACKOFF_S = 2.0
MAX_BACKOFF_S = 60.0
FINAL_LEGS = ("FINISHED", "FAILED", "NOT_SUPPORTED")
DESTINATION_PREFIX = "destination:"
ERASE_ATTEMPTS = 20
MAX_LEG_ERRORS = 5  # a leg that raises this many times in a row is FAILED


def external_targets_for(store: Store, settings: Settings) -> list[Target]:
    """Warehouses, the lake and destinations of the workspace (`privacy/targets/external.py`)."""
    return list(external_targets(export_workspace(store), settings, store=store))


class RegulationRunner:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._next_try: dict[str, tuple[float, float]] = {}  # id -> (monotonic due, backoff)
        self._logged: dict[tuple[str, str], str] = {}  # (regulation, leg) -> status logged
        self._errors: dict[tuple[str, str], int] = {}  # (regulation, leg) -> errors in a row

    async def run(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(POLL_S)

    async def run_once(self) -> int:
        """One pass over the regulations not over yet; returns how many it worked on."""
        pending = await asyncio.to_thread(self.store.pending_regulations)
        now_ms = int(time.time() * 1000)
        worked = 0
        for reg in pending:
            due, _ = self._next_try.get(reg.id, (0.0, 0.0))
            if reg.not_before_ms > now_ms or time.monotonic() < due:
                continue
            worked += 1
            await self.advance(reg)
        return worked

    def targets(self, reg: RegulationRow) -> list[Target]:
        """The legs of this regulation, in the order they run."""
        effects = EFFECTS[reg.type]
        if effects.archive_only:
            return [ArchiveTarget(self.settings, self.store, reg.source_id)]
        found: list[Target] = []
        if effects.internal:
            found += [
                LogTarget(self.store, reg.source_id),
                ArchiveTarget(self.settings, self.store, reg.source_id),
            ]
            if reg.source_id is not None:  # a source's data: its rows and files only
                return found
            found.append(ProfilesTarget(self.settings))
        for target in self.external_targets():
            if target.name.startswith(DESTINATION_PREFIX):
                if effects.destinations:
                    found.append(target)
            elif effects.internal:
                found.append(target)
        return found

    def external_targets(self) -> list[Target]:
        """The warehouse, lake and destination targets of the workspace as it is now."""
        return external_targets_for(self.store, self.settings)

    async def advance(self, reg: RegulationRow) -> str:
        """Run the legs that are not final yet; returns the regulation's status after."""
        store = self.store
        if reg.status == "INITIALIZED":
            await asyncio.to_thread(
                store.set_regulation_status, reg.id, "RUNNING", "", int(time.time() * 1000)
            )
            log.info("regulation %s (%s, %d id(s)): RUNNING", reg.id, reg.type, reg.subject_count)
        legs = {leg.target: leg for leg in await asyncio.to_thread(store.regulation_legs, reg.id)}
        subject = Subject(_subject_type(reg.subject_type), reg.subject_ids)
        try:
            targets = self.targets(reg)
        except Exception as exc:  # the workspace cannot be read into targets: try again later
            log.exception("regulation %s: its targets could not be built", reg.id)
            self._back_off(reg.id)
            await self._note(reg, "RUNNING", f"targets could not be built: {exc}"[:500])
            return "RUNNING"
        retrying = False
        for target in targets:
            leg = legs.get(target.name)
            if leg is not None and leg.status in FINAL_LEGS:
                continue
            outcome = await self._run_leg(reg, target, subject)
            legs[target.name] = LegRow(reg.id, target.name, outcome.status, outcome.detail, 0, 0)
            if outcome.status == "RETRYING":
                retrying = True
                if target.name == "log":
                    break  # the others wait until the log holds none of the subject's events
        if retrying or any(leg.status not in FINAL_LEGS for leg in legs.values()):
            self._back_off(reg.id)
            return "RUNNING"
        status, detail = overall(list(legs.values()))
        now_ms = int(time.time() * 1000)
        await asyncio.to_thread(
            store.set_regulation_status, reg.id, status, detail, now_ms, over=True
        )
        await asyncio.to_thread(store.forget_unit_stats, progress_unit(reg.id))
        await self._erase_freed(reg.id)
        self._next_try.pop(reg.id, None)
        for key in [k for k in self._logged if k[0] == reg.id]:
            del self._logged[key]
        for key in [k for k in self._errors if k[0] == reg.id]:
            del self._errors[key]
        log_at = log.info if status == "FINISHED" else log.warning
        log_at("regulation %s (%s): %s %s", reg.id, reg.type, status, detail)
        return status

    async def _run_leg(self, reg: RegulationRow, target: Target, subject: Subject) -> TargetOutcome:
        key = (reg.id, target.name)
        try:
            outcome = await target.delete(reg.id, subject)
            self._errors.pop(key, None)
        except Exception as exc:
            # An error may be passing (a lost connection, a full disk being cleaned): tried
            # again with the backoff, FAILED only when it keeps happening.
            errors = self._errors[key] = self._errors.get(key, 0) + 1
            log.exception("regulation %s: the %s leg raised (%d/%d)", reg.id, target.name,
                          errors, MAX_LEG_ERRORS)  # fmt: skip
            status: OutcomeStatus = "FAILED" if errors >= MAX_LEG_ERRORS else "RETRYING"
            outcome = TargetOutcome(target.name, status, f"{type(exc).__name__}: {exc}"[:500])
        leg = LegRow(
            reg.id, target.name, outcome.status, outcome.detail, outcome.removed,
            int(time.time() * 1000),
        )  # fmt: skip
        await asyncio.to_thread(self.store.record_leg, leg)
        if self._logged.get(key) != outcome.status:
            self._logged[key] = outcome.status
            log_at = log.warning if outcome.status == "FAILED" else log.info
            log_at("regulation %s: leg %s %s: %s", reg.id, target.name, outcome.status,
                   outcome.detail)  # fmt: skip
        return outcome

    async def _erase_freed(self, regulation_id: str) -> None:
        """The ids just forgotten leave no copy in the store's files (SQLite's WAL)."""
        for _ in range(ERASE_ATTEMPTS):
            if await asyncio.to_thread(self.store.erase_freed):
                return
            await asyncio.sleep(0.5)
        log.warning(
            "regulation %s: the store's WAL could not be truncated (busy readers); the next"
            " checkpoint overwrites it",
            regulation_id,
        )

    async def _note(self, reg: RegulationRow, status: str, detail: str) -> None:
        now_ms = int(time.time() * 1000)
        await asyncio.to_thread(self.store.set_regulation_status, reg.id, status, detail, now_ms)

    def _back_off(self, regulation_id: str) -> None:
        _, backoff = self._next_try.get(regulation_id, (0.0, 0.0))
        backoff = min(MAX_BACKOFF_S, max(MIN_BACKOFF_S, backoff * 2))
        self._next_try[regulation_id] = (time.monotonic() + backoff, backoff)


def overall(legs: Sequence[LegRow]) -> tuple[str, str]:
    """The regulation's final status from its final legs, and a sentence saying why."""
    failed = [leg.target for leg in legs if leg.status == "FAILED"]
    own = [t for t in failed if not t.startswith(DESTINATION_PREFIX)]
    if own:
        return "FAILED", "failed: " + ", ".join(own)
    if failed:
        return "PARTIAL_SUCCESS", "Sluice's stores finished; failed: " + ", ".join(failed)
    return "FINISHED", f"{len(legs)} leg(s) finished"


def _subject_type(value: str) -> SubjectType:
    if value == "ANONYMOUS_ID":
        return "ANONYMOUS_ID"
    if value == "OBJECT_ID":
        return "OBJECT_ID"
    return "USER_ID"


async def run_privacy(settings: Settings) -> None:
    """The batch lane's `privacy` unit: its own store connection (its scans are long reads)."""
    store = open_store(settings)
    try:
        await RegulationRunner(settings, store).run()
    finally:
        store.close()
