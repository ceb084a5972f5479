"""`sluice ready`: ask a running server's `/readyz`, for a container's HEALTHCHECK.

Slim images have no curl; the `sluice` command is there in any case. Exit status 0 when the
server answers 200, 1 otherwise, with the failing checks (or why it could not be asked).

A `--role worker` node has no HTTP listener: there (SLUICE_ROLE=worker) it is ready when both
lanes of a worker on this host reported themselves to the store within a lease period.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from typing import Annotated

import typer

from sluice.cli.app import app
from sluice.config import Settings, load_settings
from sluice.errors import SluiceError


@app.command()
def ready(
    url: Annotated[
        str | None,
        typer.Option(help="Base URL of the server (default: http://127.0.0.1:$SLUICE_PORT)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.", min=0.1)] = 3,
    path: Annotated[str, typer.Option(help="/readyz, or /healthz for liveness only.")] = "/readyz",
) -> None:
    """Exit 0 if the server is ready (its /readyz answers 200), 1 if not."""
    settings = load_settings()
    if settings.role == "worker" and url is None:
        _worker_ready(settings)
        return
    base = url or f"http://127.0.0.1:{settings.port}"
    target = base.rstrip("/") + path
    try:
        with urllib.request.urlopen(target, timeout=timeout) as answer:
            body = answer.read()
            status = answer.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    except (urllib.error.URLError, OSError) as exc:
        typer.echo(f"not ready: cannot reach {target}: {getattr(exc, 'reason', exc)}", err=True)
        raise typer.Exit(1) from None
    if status == 200:
        typer.echo(f"ready: {target}")
        return
    typer.echo(f"not ready: {target} answered {status}: {_failing(body)}", err=True)
    raise typer.Exit(1)


def _failing(body: bytes) -> str:
    """The checks that failed, from /readyz's JSON; the body's start for anything else."""
    try:
        document = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    checks = document.get("checks") if isinstance(document, dict) else None
    if isinstance(checks, dict):
        failing = [f"{name}: {c.get('reason', c)}" for name, c in checks.items()
                   if isinstance(c, dict) and not c.get("ok", True)]  # fmt: skip
        if failing:
            return "; ".join(failing)
    return json.dumps(document)[:200]


def _worker_ready(settings: Settings) -> None:
    """Both lanes of a worker on this host reported within a lease period (they report when
    they renew their leases, every third of it)."""
    from sluice.cli.options import open_store_for

    host = socket.gethostname()
    now_ms = int(time.time() * 1000)
    try:
        store = open_store_for(settings)  # refuses a data dir with no store, creating nothing
    except SluiceError as exc:
        typer.echo(f"not ready: the store: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        fresh = {
            p.lane
            for p in store.processes()
            if p.host == host and now_ms - p.updated_at_ms <= settings.lease_s * 1000
        }
    finally:
        store.close()
    missing = sorted({"delivery", "batch"} - fresh)
    if missing:
        typer.echo(f"not ready: no {' or '.join(missing)} process of a worker on {host}"
                   " reported in the last lease period", err=True)  # fmt: skip
        raise typer.Exit(1)
    typer.echo(f"ready: the worker on {host} runs its delivery and batch processes")
