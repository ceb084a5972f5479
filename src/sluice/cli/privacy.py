"""`sluice regulations create|list|show` and `sluice suppressions list`: Segment's regulations.

`create` records the regulation as the admin API does (`POST /api/v1/regulations`); the
worker's batch lane runs its deletion. Ids come as arguments or from a file (one per line).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import msgspec
import typer
from rich.console import Console

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.privacy.errors import PrivacyError, RegulationInvalid
from sluice.privacy.records import read_regulation, regulation_record, suppression_record
from sluice.privacy.regulation import (
    REGULATION_TYPES,
    STATUSES,
    RegulationRequest,
    create_regulation,
)
from sluice.privacy.suppression import is_suppressed

regulations_app = typer.Typer(help="Privacy regulations: suppress and delete users' data.")
app.add_typer(regulations_app, name="regulations")
suppressions_app = typer.Typer(help="User ids whose events are dropped at ingest.")
app.add_typer(suppressions_app, name="suppressions")

JsonOption = Annotated[bool, typer.Option("--json", help="JSON output.")]


def _fail(message: str) -> NoReturn:
    typer.echo(f"sluice: {message}", err=True)
    raise typer.Exit(1)


def _emit(record: Any) -> None:
    sys.stdout.buffer.write(msgspec.json.encode(record) + b"\n")
    sys.stdout.flush()


@regulations_app.command("create")
def create(
    regulation_type: Annotated[
        str, typer.Option("--type", help=f"One of {', '.join(REGULATION_TYPES)}.")
    ],
    ids: Annotated[list[str] | None, typer.Argument(help="Subject ids.")] = None,
    ids_file: Annotated[
        Path | None, typer.Option("--ids-file", help="A file of subject ids, one per line.")
    ] = None,
    subject_type: Annotated[str, typer.Option("--subject-type")] = "USER_ID",
    source: Annotated[
        str | None, typer.Option(help="Scope it to one source (Segment's source regulation).")
    ] = None,
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Record a regulation; suppression applies within seconds, deletions run in the worker."""
    subject_ids = list(ids or ())
    if ids_file is not None:
        try:
            text = ids_file.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"{ids_file}: cannot read the ids: {exc}")
        subject_ids += [line.strip() for line in text.splitlines() if line.strip()]
    request = RegulationRequest(
        regulation_type=regulation_type, subject_type=subject_type, subject_ids=subject_ids
    )
    store = open_store_for(settings_from(data_dir, database_url))
    try:
        if source is not None and source not in {s.id for s in store.sources()}:
            _fail(f"--source: no source has id {source!r}")
        try:
            row = create_regulation(store, request, source)
        except RegulationInvalid as exc:
            _fail(f"{exc.field}: {exc.message}")
    finally:
        store.close()
    if as_json:
        _emit({"data": {"regulateId": row.id}})
    else:
        typer.echo(f"{row.id} {row.status} ({row.type}, {row.subject_count} id(s))")


@regulations_app.command("list")
def list_regulations(
    status: Annotated[str | None, typer.Option(help=f"One of {', '.join(STATUSES)}.")] = None,
    source: Annotated[str | None, typer.Option(help="Only this source's.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Regulations, newest first, with their overall status."""
    if status is not None and status not in STATUSES:
        _fail(f"--status: expected one of {', '.join(STATUSES)}, got {status!r}")
    store = open_store_for(settings_from(data_dir, database_url))
    try:
        found = store.regulations(status=status, source_id=source, limit=limit)
    finally:
        store.close()
    console = Console(highlight=False, soft_wrap=True)
    for reg in found:
        record = regulation_record(reg)
        if as_json:
            _emit(record)
            continue
        scope = f" source={reg.source_id}" if reg.source_id else ""
        console.print(
            f"{reg.id} [bold]{reg.status}[/] {reg.type} {reg.subject_count} id(s){scope}"
            f" [dim]{record['createdAt']}[/] {reg.detail}"
        )
    if not found and not as_json:
        console.print("No regulations.")


@regulations_app.command("show")
def show(
    regulate_id: Annotated[str, typer.Argument(help="The regulation's id.")],
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """A regulation and the status of each place its deletion reaches."""
    store = open_store_for(settings_from(data_dir, database_url))
    try:
        try:
            record = read_regulation(store, regulate_id)
        except PrivacyError as exc:
            _fail(str(exc))
    finally:
        store.close()
    if as_json:
        _emit(record)
        return
    console = Console(highlight=False, soft_wrap=True)
    console.print(
        f"{record['id']} [bold]{record['overallStatus']}[/] {record['regulationType']}"
        f" {record['subjectCount']} id(s) created {record['createdAt']}"
        + (f" finished {record['finishedAt']}" if record["finishedAt"] else "")
    )
    for target in record["targets"]:
        console.print(
            f"  {target['name']:<24} {target['status']:<14} removed={target['removed']}"
            f" {target['detail']}",
            markup=False,
        )


@suppressions_app.command("list")
def list_suppressions(
    limit: Annotated[int, typer.Option(min=1)] = 1000,
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Suppressions, newest first: the SHA-256 of each user id (never kept in clear) and the
    regulation that suppressed it."""
    store = open_store_for(settings_from(data_dir, database_url))
    try:
        found = store.suppressions(limit)
    finally:
        store.close()
    for key, regulation_id, created in found:
        record = suppression_record(key, regulation_id, created)
        if as_json:
            _emit(record)
        else:
            typer.echo(f"{key}\t{regulation_id}\t{record['createdAt']}")
    if not found and not as_json:
        typer.echo("No suppressed users.")


@suppressions_app.command("check")
def check_suppressed(
    user_id: Annotated[str, typer.Argument(help="A user id.")],
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Whether a user id is suppressed (exit status 0) or not (1)."""
    store = open_store_for(settings_from(data_dir, database_url))
    try:
        suppressed = is_suppressed(user_id, store.suppressed_keys())
    finally:
        store.close()
    typer.echo("suppressed" if suppressed else "not suppressed")
    raise typer.Exit(0 if suppressed else 1)
