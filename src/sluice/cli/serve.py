"""`sluice serve`: prepare the store, show where to send events, then run the HTTP server.

The server (granian) starts its worker processes from `sluice.collector.app:app_factory`, and
those read their settings from `SLUICE_*` variables, so flags are handed on through the
environment of the workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.process
import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from sluice.cli.app import app
from sluice.cli.claims import claim_start
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.config import ROLES, ConfigError, Settings
from sluice.logs import ACCESS_FORMAT, granian_log_config
from sluice.logs import configure as configure_logging
from sluice.metrics.process import prepare_multiprocess_dir, remove_multiprocess_dir

if TYPE_CHECKING:
    from sluice.store.base_event_store import SourceRow

console = Console(stderr=True)
log = logging.getLogger(__name__)
WORKER_RESTART_MIN_S = 1.0
WORKER_RESTART_MAX_S = 60.0
WORKER_HEALTHY_AFTER_S = 60.0
MAX_LISTED_SOURCES = 20  # at start; `sluice export` lists them all


def _export(settings: Settings) -> None:
    os.environ["SLUICE_DATA_DIR"] = str(settings.data_dir.resolve())
    if settings.database_url:
        os.environ["SLUICE_DATABASE_URL"] = settings.database_url
    os.environ["SLUICE_HOST"] = settings.host
    os.environ["SLUICE_PORT"] = str(settings.port)
    os.environ["SLUICE_WORKERS"] = str(settings.workers)
    os.environ["SLUICE_ROLE"] = settings.role  # /readyz checks the worker of role `all` only


def _announce(settings: Settings) -> None:
    from sluice.ui.accounts import has_admin
    from sluice.workspace.sync import ensure_default_source

    store = open_store_for(settings, create=True)
    try:
        created = ensure_default_source(store)
        sources = list(store.sources())
        admin_exists = has_admin(store)
    finally:
        store.close()
    json_logs = settings.log_format == "json"
    base = f"http://{settings.host}:{settings.port}"
    lines = [f"[bold]Sluice[/] listening on {base}  (data in {settings.data_dir})"]
    if admin_exists:
        lines.append(f"Web UI: [cyan]{base}/[/] (sign in)")
    else:
        lines.append(
            f"Web UI: open [cyan]{base}/[/] in a browser on this machine to create the first"
            " admin (or run [cyan]sluice admin create EMAIL[/])"
        )
    if created is not None and not json_logs:
        # The one time a key is printed: it was just made and nobody has it yet. Server logs
        # are collected, shipped and kept for long; later starts name the sources only, and
        # JSON logs (made to be shipped) never hold it.
        source_id, key = created
        lines.append(f"Created source [bold]{source_id}[/] for you.")
        lines.append(f"  source [bold]{source_id}[/]: write key [green]{key}[/]")
    else:
        lines.append(
            ("Created source " + created[0] + ". " if created is not None else "")
            + f"Sources: {_source_list(sources)}. Write keys: the web UI's Sources page or"
            " [cyan]sluice export[/]."
        )
    lines.append(
        "Point a Segment library at it, e.g. "
        f"[cyan]Analytics(write_key, host='{base}')[/] or "
        f'[cyan]curl -u WRITE_KEY: {base}/v1/track -d \'{{"userId":"u1","event":"Hi"}}\'[/]'
    )
    _say(settings, *lines)


def _say(settings: Settings, *lines: str) -> None:
    """Startup lines: for a person on a terminal, or one JSON log line each (SLUICE_LOG_FORMAT
    json: every line of stderr is then an object a log shipper parses)."""
    for line in lines:
        if settings.log_format == "json":
            log.info("%s", Text.from_markup(line).plain)
        else:
            console.print(line)


def _source_list(sources: Sequence[SourceRow]) -> str:
    if not sources:
        return "none"
    names = [s.id + ("" if s.enabled else " (disabled)") for s in sources[:MAX_LISTED_SOURCES]]
    more = len(sources) - len(names)
    return ", ".join(names) + (f" and {more} more" if more else "")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    workers: Annotated[
        int | None,
        typer.Option(help="HTTP worker processes (default: CPUs, at most 4).", min=1),
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(
            help="What this node runs: all (default), collector (the HTTP API only) or worker"
            " (delivery, archive, warehouses only). Nodes share the store's PostgreSQL."
        ),
    ] = None,
) -> None:
    """Run Sluice: the Tracking API on /v1, data in ./sluice-data."""
    settings = settings_from(data_dir, database_url).replace(
        host=host, port=port, workers=workers, role=role
    )
    if settings.role not in ROLES:
        raise ConfigError(f"--role must be one of {', '.join(ROLES)}, not {settings.role!r}")
    configure_logging(settings.log_level, settings.log_format, "serve")
    # Refused before anything is announced: a second server must not look like it started.
    with claim_start(settings):
        _run(settings)


def _run(settings: Settings) -> None:
    if settings.role == "worker":
        _say(settings, f"[bold]Sluice[/] worker running (data in {settings.data_dir})")
        from sluice.runtime.supervisor import run_worker

        run_worker(settings)
        return
    from granian import Granian
    from granian.constants import Interfaces

    _announce(settings)
    _export(settings)
    # Before the HTTP workers start: they find it in their environment (metrics/process.py).
    metrics_dir = prepare_multiprocess_dir(settings.data_dir)
    worker = WorkerKeeper(settings) if settings.role == "all" else None
    server = Granian(
        "sluice.collector.app:app_factory",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        backlog=2048,
        log_level=settings.log_level,  # type: ignore[arg-type]
        log_dictconfig=granian_log_config(settings.log_format),
        log_access=settings.access_log,
        log_access_format=ACCESS_FORMAT,
    )
    try:
        server.serve()
    finally:
        if worker is not None:
            worker.stop()
        remove_multiprocess_dir(metrics_dir)


class WorkerKeeper:
    """Runs the worker (its supervisor and lane processes: runtime/) next to the HTTP workers,
    and starts it again if it dies (its lanes die with it), a second later, doubling to a minute.

    Not a daemon process: those may not start processes of their own. It dies with this one.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stopping = threading.Event()
        self._process = self._start()
        threading.Thread(target=self._watch, name="worker-keeper", daemon=True).start()

    def _start(self) -> multiprocessing.process.BaseProcess:
        from sluice.runtime.supervisor import run_worker

        process = multiprocessing.get_context("fork").Process(
            target=run_worker, args=(self.settings,), name="sluice-worker"
        )
        process.start()
        return process

    def _watch(self) -> None:
        backoff = WORKER_RESTART_MIN_S
        started = time.monotonic()
        while not self._stopping.wait(1.0):
            if self._process.is_alive():
                if time.monotonic() - started >= WORKER_HEALTHY_AFTER_S:
                    backoff = WORKER_RESTART_MIN_S
                continue
            code = self._process.exitcode
            log.error("the worker process exited (%s); starting it again in %.0f s", code, backoff)
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, WORKER_RESTART_MAX_S)
            self._process = self._start()
            started = time.monotonic()

    def stop(self) -> None:
        """SIGTERM: the worker stops its lanes, which give their leases up."""
        self._stopping.set()
        self._process.terminate()
        self._process.join(timeout=30)
