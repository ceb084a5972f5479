"""`sluice replay`: send archived events of a time range to one destination again.

An operator's tool for a destination that missed data (it was down past the retry window, was
added late, or had a wrong mapping): the events come from the raw archive, go to that
destination only, and go through the same delivery code as live traffic. See docs/archive.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from sluice.archive.reader import ArchiveQuery, parse_time
from sluice.archive.replay import DEFAULT_RATE, Replay, ReplayRequest, ReplayState
from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.config import Settings
from sluice.delivery.sender import new_session
from sluice.store.base import Store

_TIME = "ISO-8601 (UTC unless it has an offset) or epoch milliseconds, over receivedAt"


def _counts(state: ReplayState) -> str:
    return f"read {state.read}  sent {state.sent}  filtered {state.filtered}  parked {state.parked}"


async def _run(
    settings: Settings, store: Store, request: ReplayRequest, console: Console
) -> tuple[ReplayState, bool, bool]:
    async with new_session() as session:
        replay = Replay(settings, store, request, session)
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        interrupts = 0

        def interrupted() -> None:
            nonlocal interrupts
            interrupts += 1
            if interrupts == 1:
                console.print("Stopping after the batch in flight (again to abort at once)...")
                replay.stop()
            else:
                task.cancel()

        saved = replay.load_state()
        if saved.done:
            return saved, False, True
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, interrupted)
        progress = Progress(
            TextColumn("replay to [bold]{task.fields[destination]}[/]"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=console,
        )
        with progress:
            bar: TaskID = progress.add_task(
                "replay", total=None, destination=request.destination_id, counts=""
            )

            def show(state: ReplayState, done: int, total: int) -> None:
                progress.update(bar, completed=done, total=total or 1, counts=_counts(state))

            try:
                state = await replay.run(show)
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
        return state, replay.stopped, replay.already_done


@app.command()
def replay(
    start: Annotated[str, typer.Option("--from", help=f"Start (inclusive): {_TIME}.")],
    end: Annotated[str, typer.Option("--to", help=f"End (exclusive): {_TIME}.")],
    destination: Annotated[str, typer.Option(help="The destination id to send to.")],
    source: Annotated[str | None, typer.Option(help="Only this source id.")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Only this call type.")] = None,
    event: Annotated[str | None, typer.Option(help="Only this track event name.")] = None,
    rate: Annotated[float, typer.Option(min=0, help="Events per second (0: no limit).")] = (
        DEFAULT_RATE
    ),
    restart: Annotated[
        bool, typer.Option("--restart", help="Start over, ignoring the saved position.")
    ] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Send archived events to one destination only (integrations become {All: false, it: true}).

    Resumable: run the same command again after an interruption to continue where it stopped.
    """
    settings = settings_from(data_dir, database_url)
    query = ArchiveQuery(parse_time(start), parse_time(end), source, type_, event)
    request = ReplayRequest(destination, query, rate=rate, restart=restart)
    store = open_store_for(settings)
    console = Console(stderr=True, highlight=False)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            state, stopped, already = asyncio.run(_run(settings, store, request, console))
            if already:
                typer.echo(f"Already complete ({_counts(state)}); --restart sends it again.")
                return
            if stopped:
                typer.echo(f"Interrupted: {_counts(state)}. Run the same command to resume.")
                raise typer.Exit(130)
            typer.echo(f"Replay complete: {_counts(state)}.")
            return
        typer.echo("Aborted: the last batch may be sent again when the replay resumes.")
        raise typer.Exit(130)
    finally:
        store.close()
