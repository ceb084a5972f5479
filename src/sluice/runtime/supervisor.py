"""The worker supervisor: one process per lane, restarted when it dies, stopped cleanly.

It holds no store connection while it forks (a forked SQLite or psycopg connection is unsafe);
it opens the store only for a moment after a lane died, to free that process's leases, so the
restarted process takes its units over at once instead of after the lease period.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.process
import os
import secrets
import signal
import socket
import threading
import time
from dataclasses import dataclass

from sluice.config import Settings
from sluice.logs import configure as configure_logging
from sluice.runtime.lane_process import LANES, PR_SET_NAME, PR_SET_PDEATHSIG, prctl, run_lane
from sluice.runtime.self_report import rss_kib
from sluice.store.factory import open_store

log = logging.getLogger(__name__)
POLL_S = 0.5
RESTART_MIN_S = 1.0
RESTART_MAX_S = 60.0
HEALTHY_AFTER_S = 60.0  # a lane that ran this long restarts after RESTART_MIN_S again
STOP_TIMEOUT_S = 15.0


@dataclass(slots=True)
class LaneChild:
    lane: str
    process: multiprocessing.process.BaseProcess | None = None
    holder: str = ""
    restarts: int = 0
    backoff_s: float = RESTART_MIN_S
    started_at: float = 0.0
    restart_at: float = 0.0  # when a dead lane is started again
    stopped_for: str | None = None  # why the supervisor stopped it, if it did


def exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


class Supervisor:
    def __init__(self, settings: Settings, lanes: tuple[str, ...] = LANES) -> None:
        self.settings = settings
        self.children = {lane: LaneChild(lane) for lane in lanes}
        self.stopping = threading.Event()
        self._context = multiprocessing.get_context("fork")

    def run(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        try:
            for child in self.children.values():
                self._start(child)
            while not self.stopping.wait(POLL_S):
                self.check()
        finally:
            self.stop()

    def check(self) -> None:
        """One round: restart dead lanes when their backoff is over, enforce the memory limit."""
        now = time.monotonic()
        limit_kib = self.settings.worker_memory_limit_mb * 1024
        for child in self.children.values():
            process = child.process
            if process is not None and not process.is_alive():
                self._died(child, now)
            elif process is None and now >= child.restart_at:
                child.restarts += 1
                self._start(child)
            elif process is not None and limit_kib and child.stopped_for is None:
                used = rss_kib(process.pid)
                if used > limit_kib:
                    log.error(
                        "the %s process uses %d MiB, over SLUICE_WORKER_MEMORY_LIMIT_MB=%d;"
                        " restarting it", child.lane, used // 1024, limit_kib // 1024,
                    )  # fmt: skip
                    child.stopped_for = "was stopped over its memory limit"
                    process.terminate()

    def _start(self, child: LaneChild) -> None:
        token = secrets.token_hex(3)
        process = self._context.Process(
            target=_lane_main, args=(self.settings, child.lane, token, child.restarts),
            name=f"sluice-{child.lane}",
        )  # fmt: skip
        process.start()
        child.process = process
        child.holder = lane_holder(process.pid or 0, token)
        child.started_at = time.monotonic()

    def _died(self, child: LaneChild, now: float) -> None:
        assert child.process is not None
        reason = child.stopped_for or exit_reason(child.process.exitcode)
        child.process.join(0)
        child.process = None
        child.stopped_for = None
        if now - child.started_at >= HEALTHY_AFTER_S:
            child.backoff_s = RESTART_MIN_S
        child.restart_at = now + child.backoff_s
        log.error("the %s process %s; restarting it in %.0f s", child.lane, reason, child.backoff_s)
        child.backoff_s = min(child.backoff_s * 2, RESTART_MAX_S)
        self._forget(child.holder)

    def _forget(self, holder: str) -> None:
        """Free a dead process's leases now (it can no longer renew them)."""
        try:
            store = open_store(self.settings)
            try:
                store.forget_process(holder)
            finally:
                store.close()
        except Exception as exc:  # the store is down: the leases expire by themselves
            log.warning("could not free the leases of %s (%s); they expire in %.0f s",
                        holder, exc, self.settings.lease_s)  # fmt: skip

    def stop(self) -> None:
        """SIGTERM every lane, wait for them to give their leases up, SIGKILL the stragglers."""
        alive = [c for c in self.children.values() if c.process is not None]
        for child in alive:
            assert child.process is not None
            child.process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in alive:
            assert child.process is not None
            child.process.join(max(0.0, deadline - time.monotonic()))
            if child.process.is_alive():
                log.error("the %s process did not stop in %.0f s; killing it",
                          child.lane, STOP_TIMEOUT_S)  # fmt: skip
                child.process.kill()
                child.process.join()
                self._forget(child.holder)
            child.process = None


def lane_holder(pid: int, token: str) -> str:
    """The lease holder id of a lane process: `host:pid:token` (runtime/lease_runner.py)."""
    return f"{socket.gethostname()}:{pid}:{token}"


def _lane_main(settings: Settings, lane: str, token: str, restarts: int) -> None:
    run_lane(settings, lane, lane_holder(os.getpid(), token), restarts)


def run_worker(settings: Settings) -> None:
    """Process entry point of the worker (`sluice serve` starts it next to the HTTP workers;
    `--role worker` runs it in the foreground)."""
    configure_logging(settings.log_level, settings.log_format, "worker")
    prctl(PR_SET_NAME, b"sluice-worker")
    if multiprocessing.parent_process() is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # dies with `sluice serve`, and stops its lanes
    Supervisor(settings).run()
