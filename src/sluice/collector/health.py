"""Readiness: whether this node should be sent traffic now (`/readyz`), for load balancers.

`/healthz` says the process answers (liveness: restart it if not). `/readyz` says the node can
do what its role says, check by check, each with a reason an operator can act on:

* `store`: the store answers a cheap query (PostgreSQL: within `STORE_TIMEOUT_S`, as a wait
  for a pooled connection and a statement timeout).
* `migrations`: PostgreSQL's `schema_version` has every migration this code knows. A database
  migrated further by a newer node is fine: migrations only add (docs/deploy.md, upgrading).
  SQLite has no migrations: the store creates every table it lacks when it opens.
* `worker`: on a node of role `all`, this node's worker runs: a live `worker:delivery:` and
  `worker:batch:` lease is held by a process of this host that is still running. "This node's"
  and not "any in the cluster" on purpose: readiness is about one node, so a node whose worker
  died reports it even when other nodes' workers carry the load, and a cluster with no worker at
  all does not take every collector out of the load balancer (ingest works without workers; its
  events wait in the log). Cluster-wide worker health is `sluice status`. The pid check catches
  a killed worker at once instead of when its leases expire (up to `SLUICE_LEASE_S` later). Two
  `all` nodes on one host (same hostname) vouch for each other. A `collector` node runs no
  worker: "not checked".
* `disk`: the data dir's file system has at least `SLUICE_READY_MIN_FREE_MB` free.

Cost: a load balancer may probe every second, and so may several. Each HTTP worker process
computes the checks at most once per `CACHE_S`, in one thread, on the collector's own store
(no connection is opened per probe); probes meanwhile share the result or the computation in
flight. A probe waits at most `ANSWER_TIMEOUT_S`: a store that has not answered by then is
reported as not answering, while the computation finishes in the background (never more than
one at a time, so a hung database cannot pile threads up).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from sluice import __version__
from sluice.bridge.location import REPORT_PREFIX as BRIDGE_REPORT_PREFIX
from sluice.config import Settings
from sluice.pids import running
from sluice.runtime.lease_runner import WORKER_LEASE_PREFIX
from sluice.store.base import EventStore
from sluice.store.base_workers import Lease

CACHE_S = 1.0
STORE_TIMEOUT_S = 0.5
# Under the 1 s that Kubernetes and most load balancers give a probe by default.
ANSWER_TIMEOUT_S = 0.8
MAX_REASON_CHARS = 300
MIB = 1024 * 1024
# runtime/lane_process.py LANES (tests check they agree); not imported: that module pulls the
# lanes' delivery and warehouse code into every collector process.
WORKER_LANES = ("delivery", "batch")
STORE, MIGRATIONS, WORKER, DISK = "store", "migrations", "worker", "disk"
BRIDGE = "bridge"  # present only where the worker runs Segment's destinations


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: dict[str, Check]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks.values())

    def body(self, role: str) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "version": __version__,
            "role": role,
            "checks": {
                name: {"ok": check.ok, "reason": check.reason}
                for name, check in self.checks.items()
            },
        }


@runtime_checkable
class _SchemaReader(Protocol):
    """The PostgreSQL store: applied migrations, read within a timeout."""

    def schema_versions(self, timeout_s: float) -> list[int]: ...


@runtime_checkable
class _LeaseReader(Protocol):
    def leases(self) -> list[Lease]: ...


@runtime_checkable
class _UnitStatsReader(Protocol):
    def unit_stats(self) -> dict[str, dict[str, int]]: ...


class ReadinessProbe:
    """The checks of one collector process, cached for `CACHE_S`."""

    def __init__(self, settings: Settings, store: EventStore) -> None:
        self.settings = settings
        self.store = store
        self.host = socket.gethostname()
        self._cached: Readiness | None = None
        self._cached_at = -CACHE_S
        self._running: asyncio.Future[Readiness] | None = None

    async def readiness(self) -> Readiness:
        if self._cached is not None and time.monotonic() - self._cached_at < CACHE_S:
            return self._cached
        if self._running is None:
            running = asyncio.ensure_future(asyncio.to_thread(self.check))
            running.add_done_callback(self._finished)
            self._running = running
        try:
            return await asyncio.wait_for(asyncio.shield(self._running), ANSWER_TIMEOUT_S)
        except TimeoutError:
            return _timed_out()

    def _finished(self, running: asyncio.Future[Readiness]) -> None:
        self._running = None
        if not running.cancelled() and running.exception() is None:
            self._cached = running.result()
            self._cached_at = time.monotonic()

    # --- the checks (in a worker thread) ---------------------------------------------------
    def check(self) -> Readiness:
        store, versions = self._check_store()
        checks = {STORE: store}
        checks[MIGRATIONS] = self._check_migrations(versions)
        checks[WORKER] = self._check_worker(store)
        checks[DISK] = self._check_disk()
        bridge = self._check_bridge(store)
        if bridge is not None:  # only on a node whose worker runs Segment's destinations
            checks[BRIDGE] = bridge
        return Readiness(checks)

    def _check_store(self) -> tuple[Check, list[int] | None]:
        started = time.perf_counter()
        try:
            if isinstance(self.store, _SchemaReader):
                versions: list[int] | None = self.store.schema_versions(STORE_TIMEOUT_S)
                what = "PostgreSQL"
            else:
                self.store.config_version()
                versions, what = None, "SQLite"
        except Exception as exc:
            return Check(False, _error(exc)), None
        elapsed_ms = (time.perf_counter() - started) * 1000
        return Check(True, f"{what} answered in {elapsed_ms:.1f} ms"), versions

    def _check_migrations(self, versions: list[int] | None) -> Check:
        if not isinstance(self.store, _SchemaReader):
            return Check(
                True, "no migrations: the SQLite store creates every table it lacks when it opens"
            )
        if versions is None:
            return Check(False, "not checked: the store did not answer")
        from sluice.store.postgres_schema import MIGRATIONS as KNOWN

        known = [version for version, _ in KNOWN]
        latest = known[-1]
        missing = sorted(set(known) - set(versions))
        if missing:
            return Check(
                False,
                f"schema_version lacks migration(s) {', '.join(map(str, missing))} of 1-{latest}:"
                " restart the node to apply them",
            )
        newest = max(versions)
        if newest > latest:
            return Check(
                True,
                f"schema at version {newest}, newer than this node's {latest} (a newer node"
                " migrated it; migrations only add, so this node runs on it)",
            )
        return Check(True, f"schema at version {latest}, the latest")

    def _check_worker(self, store: Check) -> Check:
        role = self.settings.role
        if role != "all":
            return Check(True, f"not checked: role {role} runs no worker on this node")
        if not store.ok:
            return Check(False, "not checked: the store did not answer")
        if not isinstance(self.store, _LeaseReader):
            return Check(False, "not checked: this store keeps no leases")
        try:
            leases = self.store.leases()
        except Exception as exc:
            return Check(False, _error(exc))
        return worker_check(leases, self.host, int(time.time() * 1000))

    def _check_bridge(self, store: Check) -> Check | None:
        """The Node sidecars of this host's live delivery processes (docs/bridge.md), as they
        last reported: None when none runs here."""
        if self.settings.role != "all" or not store.ok:
            return None
        if not isinstance(self.store, _UnitStatsReader):
            return None
        try:
            stats = self.store.unit_stats()
        except Exception as exc:
            return Check(False, _error(exc))
        prefix = f"{BRIDGE_REPORT_PREFIX}{self.host}:"
        ours = {
            int(unit[len(prefix) :]): state
            for unit, state in stats.items()
            if unit.startswith(prefix) and unit[len(prefix) :].isdigit()
        }
        live = {pid: state for pid, state in ours.items() if running(pid)}
        if not live:
            return None
        down = [f"pid {pid}" for pid, state in live.items() if not state.get("healthy")]
        if down:
            return Check(
                False,
                f"the bridge's Node sidecar of the delivery process ({', '.join(down)}) is down"
                " and restarting: Segment's destinations wait (the worker's log says why)",
            )
        sidecars = ", ".join(
            f"node pid {s.get('pid')} ({s.get('rss_kib', 0) // 1024} MiB,"
            f" {s.get('restarts', 0)} restarts)"
            for s in live.values()
        )
        return Check(True, f"the bridge's sidecars run: {sidecars}")

    def _check_disk(self) -> Check:
        minimum = self.settings.ready_min_free_mb
        path = _existing(self.settings.data_dir)
        try:
            free_mb = shutil.disk_usage(path).free // MIB
        except OSError as exc:
            return Check(False, f"cannot read the free space at {path}: {_error(exc)}")
        text = f"{free_mb} MB free at {path}"
        if not minimum:
            return Check(True, f"{text} (not checked: SLUICE_READY_MIN_FREE_MB=0)")
        return Check(free_mb >= minimum, f"{text}, minimum {minimum} MB (SLUICE_READY_MIN_FREE_MB)")


def worker_check(leases: list[Lease], host: str, now_ms: int) -> Check:
    """Does a running process of `host` hold a live lease of each worker lane?"""
    ours: dict[str, list[int]] = {lane: [] for lane in WORKER_LANES}
    dead: dict[str, list[int]] = {lane: [] for lane in WORKER_LANES}
    live: dict[str, int] = {lane: 0 for lane in WORKER_LANES}
    for lease in leases:
        if not lease.name.startswith(WORKER_LEASE_PREFIX) or lease.expires_at_ms <= now_ms:
            continue
        lane = lease.name[len(WORKER_LEASE_PREFIX) :].split(":", 1)[0]
        if lane not in live:
            continue
        live[lane] += 1
        parts = lease.holder.rsplit(":", 2)  # host:pid:token
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        (ours if running(pid) else dead)[lane].append(pid)
    everywhere = ", ".join(f"{n} {lane}" for lane, n in live.items())
    missing = [lane for lane in WORKER_LANES if not ours[lane]]
    if not missing:
        held = ", ".join(f"{lane} (pid {', '.join(map(str, ours[lane]))})" for lane in ours)
        return Check(
            True, f"this host's lanes hold their leases: {held}; live in the store: {everywhere}"
        )
    problems = []
    for lane in missing:
        if dead[lane]:
            pids = ", ".join(map(str, dead[lane]))
            problems.append(f"the {lane} lane's process (pid {pids}) is not running")
        else:
            problems.append(f"no live {WORKER_LEASE_PREFIX}{lane}: lease of this host ({host})")
    return Check(
        False,
        "; ".join(problems) + " (starting, or died: `sluice serve` starts its worker again);"
        f" live lanes in the store: {everywhere}",
    )


def _existing(path: Path) -> Path:
    """The path, or its nearest existing parent (a collector on PostgreSQL may have no data dir)."""
    path = path.absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _error(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no message"
    return f"{type(exc).__name__}: {text}"[:MAX_REASON_CHARS]


def _timed_out() -> Readiness:
    waiting = Check(False, "not checked: waiting for the store")
    return Readiness(
        {
            STORE: Check(
                False,
                f"no answer within {ANSWER_TIMEOUT_S} s (the check goes on; the next probe"
                " reports it)",
            ),
            MIGRATIONS: waiting,
            WORKER: waiting,
            DISK: waiting,
        }
    )
