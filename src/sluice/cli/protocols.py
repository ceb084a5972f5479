"""`sluice protocols import`: a Segment tracking plan export as a workspace file's entry."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
import yaml

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.protocols.errors import PlanError
from sluice.protocols.segment_import import import_plan


class Lang(StrEnum):
    python = "python"
    typescript = "typescript"


class Sdk(StrEnum):
    next = "analytics-next"
    node = "analytics-node"


protocols_app = typer.Typer(help="Tracking plans (docs/protocols.md).", no_args_is_help=True)
app.add_typer(protocols_app, name="protocols")


@protocols_app.command("import")
def import_command(
    file: Annotated[
        Path | None, typer.Argument(help="Segment's tracking plan JSON (Public or Config API).")
    ] = None,
    csv_file: Annotated[
        Path | None,
        typer.Option("--csv", help="Segment's tracking plan spreadsheet (CSV) instead."),
    ] = None,
    plan_id: Annotated[
        str | None, typer.Option("--id", help="The plan's id in the workspace.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="The plan's name (CSV: the file's).")] = None,
    source: Annotated[
        list[str] | None, typer.Option(help="A source the plan applies to (repeat).")
    ] = None,
) -> None:
    """Print the `tracking_plans:` entry to paste into a workspace file (then `sluice apply`)."""
    if (file is None) == (csv_file is None):
        typer.echo("sluice: give a JSON export or --csv FILE (one of them)", err=True)
        raise typer.Exit(2)
    path = file or csv_file
    assert path is not None
    try:
        if csv_file is not None:
            entry = _import_csv(csv_file, plan_id, name)
        else:
            entry = import_plan(msgspec.json.decode(path.read_bytes()), plan_id)
            if name:
                entry["name"] = name
    except (OSError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        typer.echo(f"sluice: {path}: {exc}", err=True)
        raise typer.Exit(2) from None
    except PlanError as exc:
        message = str(exc)  # the CSV reader's messages name the file already
        typer.echo(f"sluice: {message if csv_file else f'{path}: {message}'}", err=True)
        raise typer.Exit(2) from None
    if source:
        entry = {
            "id": entry["id"],
            "name": entry["name"],
            "sources": source,
            "rules": entry["rules"],
        }
    typer.echo(
        yaml.safe_dump({"tracking_plans": [entry]}, sort_keys=False, allow_unicode=True), nl=False
    )


def _import_csv(path: Path, plan_id: str | None, name: str | None) -> dict[str, Any]:
    import re

    from sluice.protocols.csv_import import import_csv
    from sluice.protocols.plan import compile_plan

    rules = import_csv(path.read_text(encoding="utf-8"), str(path))
    # Segment names downloads `workspaceSlug-trackingPlanName--yyyy-mm-dd--hh-mm-utc`
    title = name or path.stem.split("--")[0]
    entry_id = plan_id or re.sub(r"[^a-z0-9_-]+", "-", title.lower()).strip("-_")[:64] or "imported"
    try:
        compile_plan(entry_id, title, rules)  # refuses what Sluice could not enforce
    except PlanError as exc:
        raise PlanError(f"{path}: {exc}") from None
    return {"id": entry_id, "name": title, "rules": rules}


WorkspaceFileOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        help="Read the plan from this workspace file instead of the store (no server needed).",
    ),
]


def _load_plan(
    plan_id: str, workspace: Path | None, data_dir: Path | None, database_url: str | None
) -> tuple[str, dict[str, Any]]:
    """The plan's name and rules, from a workspace file or the store; exits naming the problem."""
    if workspace is not None:
        from sluice.workspace.errors import WorkspaceError
        from sluice.workspace.files import load_workspace_file

        try:
            ws = load_workspace_file(workspace)
        except (OSError, WorkspaceError) as exc:
            typer.echo(f"sluice: {workspace}: {exc}", err=True)
            raise typer.Exit(2) from None
        plans = {p.id: (p.name or p.id, p.rules) for p in ws.tracking_plans}
        where = str(workspace)
    else:
        store = open_store_for(settings_from(data_dir, database_url))
        try:
            objects = store.list_config("tracking_plan")
        finally:
            store.close()
        plans = {}
        for obj in objects:
            body = msgspec.json.decode(obj.body)
            plans[obj.id] = (body.get("name") or obj.id, body.get("rules") or {})
        where = "the workspace"
    if plan_id not in plans:
        known = ", ".join(sorted(plans)) or "none"
        typer.echo(f"sluice: {where}: no tracking plan {plan_id!r} (plans: {known})", err=True)
        raise typer.Exit(2)
    return plans[plan_id]


@protocols_app.command("codegen")
def codegen_command(
    plan_id: Annotated[str, typer.Option("--plan", help="The tracking plan's id.")],
    lang: Annotated[Lang, typer.Option(help="The language of the generated client.")],
    out: Annotated[Path, typer.Option(help="The directory to write (created if missing).")],
    sdk: Annotated[
        Sdk, typer.Option(help="TypeScript only: the Segment library the functions call.")
    ] = Sdk.next,
    workspace: WorkspaceFileOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Write typed tracking functions for a plan (Typewriter's idea): Python (a package,
    `__init__.py`, for analytics-python) or TypeScript (`index.ts`, for analytics-next or
    analytics-node)."""
    from sluice.protocols.codegen.model import client_plan
    from sluice.protocols.codegen.python import write_python
    from sluice.protocols.codegen.typescript import write_typescript

    name, rules = _load_plan(plan_id, workspace, data_dir, database_url)
    try:
        plan = client_plan(plan_id, name, rules)
    except PlanError as exc:
        typer.echo(f"sluice: tracking plan {plan_id!r}: {exc}", err=True)
        raise typer.Exit(2) from None
    if lang is Lang.python:
        target, text = out / "__init__.py", write_python(plan)
    else:
        target, text = out / "index.ts", write_typescript(plan, sdk.value)
    try:
        out.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    except OSError as exc:
        typer.echo(f"sluice: {out}: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"Wrote {target}: {len(plan.calls)} calls of tracking plan {plan_id!r}")


@protocols_app.command("check")
def check_command(
    file: Annotated[Path, typer.Argument(help="Events, one JSON object per line ('-': stdin).")],
    plan_id: Annotated[str, typer.Option("--plan", help="The tracking plan's id.")],
    allow_unplanned_events: Annotated[
        bool, typer.Option(help="Do not report track events the plan does not have.")
    ] = False,
    allow_unplanned_properties: Annotated[
        bool, typer.Option(help="Do not report properties or traits the plan does not have.")
    ] = False,
    workspace: WorkspaceFileOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Check a file of events against a plan, for CI: lists every problem as
    FILE:LINE and exits 1 when there is one."""
    import sys

    from sluice.protocols.check import check_lines
    from sluice.protocols.plan import compile_plan

    name, rules = _load_plan(plan_id, workspace, data_dir, database_url)
    try:
        plan = compile_plan(plan_id, name, rules)
        data = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except PlanError as exc:
        typer.echo(f"sluice: tracking plan {plan_id!r}: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"sluice: {file}: {exc}", err=True)
        raise typer.Exit(2) from None
    findings = list(
        check_lines(
            plan,
            data.splitlines(),
            allow_unplanned_events=allow_unplanned_events,
            allow_unplanned_properties=allow_unplanned_properties,
        )
    )
    for f in findings:
        head = " ".join(part for part in (repr(f.event) if f.event else "", f.field) if part)
        typer.echo(f"{file}:{f.line}: {head + ': ' if head else ''}{f.kind}: {f.description}")
    if findings:
        events = len({f.line for f in findings})
        typer.echo(f"{_plural(len(findings), 'problem')} in {_plural(events, 'event')}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{file}: every event follows tracking plan {plan_id!r}", err=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
