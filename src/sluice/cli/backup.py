"""`sluice backup DEST` and `sluice restore SRC`: one machine's data copied while the server runs,
and put back into an empty data dir (sluice/backup/, docs/operations.md)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from sluice.backup.manifest import (
    MANIFEST_NAME,
    BackupError,
    Manifest,
    megabytes,
    pg_dump_command,
    pg_restore_command,
)
from sluice.backup.restore import missing_listed, plan_restore, restore, verify_backup
from sluice.backup.take import (
    ARCHIVE_MODES,
    DEFAULT_ARCHIVE_MODE,
    DEFAULT_WAREHOUSE_WAIT_S,
    take_backup,
)
from sluice.cli.app import app
from sluice.cli.claims import SERVE_LOCK_NAME, DataDirInUse, lock_data_dir
from sluice.cli.options import DatabaseUrlOption, DataDirOption, settings_from
from sluice.config import Settings


@app.command()
def backup(
    dest: Annotated[Path, typer.Argument(help="A new (or empty) directory for the backup.")],
    archive: Annotated[
        str,
        typer.Option(
            help="The archive's finished files: list (in the manifest; they usually have a copy"
            " elsewhere, e.g. aws s3 sync), copy, or skip.",
        ),
    ] = DEFAULT_ARCHIVE_MODE,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for a warehouse load that holds its file.")
    ] = DEFAULT_WAREHOUSE_WAIT_S,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Copy the store, the warehouse and the archive consistently, while the server runs."""
    if archive not in ARCHIVE_MODES:
        raise typer.BadParameter(f"one of {', '.join(ARCHIVE_MODES)}", param_hint="--archive")
    settings = settings_from(data_dir, database_url)
    started = time.monotonic()
    manifest = take_backup(settings, dest, archive=archive, wait_s=wait, say=typer.echo)
    copied = manifest.copied()
    typer.echo(
        f"Backup written to {dest} in {time.monotonic() - started:.1f} s: {len(copied)} files,"
        f" {megabytes(sum(f.bytes for f in copied))}, listed with their SHA-256 in"
        f" {dest / MANIFEST_NAME}"
    )
    if settings.database_url:
        typer.secho(
            "The store is not in this backup: it is PostgreSQL. Dump it now, after this"
            " command (so that the warehouse copy is not ahead of it), or rely on PITR"
            " (docs/operations.md):",
            fg="yellow",
            bold=True,
        )
        typer.echo(f"  {pg_dump_command(settings.database_url, dest)}")
        typer.echo("  (its password from ~/.pgpass or PGPASSWORD)")


@app.command("restore")
def restore_command(
    src: Annotated[Path, typer.Argument(help="A directory `sluice backup` wrote.")],
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Restore a backup into a data dir that holds no store, after checking its checksums."""
    settings = settings_from(data_dir, database_url)
    manifest = verify_backup(src)
    copied = manifest.copied()
    typer.echo(
        f"Backup of {manifest.created_at} (sluice {manifest.sluice_version}, log position"
        f" {manifest.log_position}): {len(copied)} files match their SHA-256"
    )
    with _hold_data_dir(settings.data_dir):
        plan = plan_restore(manifest, settings)
        restore(src, plan)
    kept = len(copied) - len(plan)
    note = f" ({kept} archive files were there already)" if kept else ""
    typer.echo(
        f"Restored {len(plan)} files ({megabytes(sum(e.bytes for e, _ in plan))}) into"
        f" {settings.data_dir}{note}"
    )
    missing = missing_listed(manifest, settings)
    if missing:
        typer.secho(
            f"The backup listed {len(manifest.listed())} archive files without copying them;"
            f" {len(missing)} are not in the archive folder (first: {missing[0].restore_to})."
            " Copy them back from where the archive is kept (e.g. aws s3 sync) to replay"
            " those days; nothing else needs them.",
            fg="yellow",
        )
    _warn_outside(manifest, settings)
    if manifest.store == "postgres":
        typer.secho(
            "This backup holds no store: it was taken on PostgreSQL. Restore the store's dump"
            " into an empty database before starting Sluice:",
            fg="yellow",
            bold=True,
        )
        typer.echo(f"  {pg_restore_command(settings.database_url, src)}")
    elif manifest.sluice_version != _installed_version():
        typer.echo(f"(made by sluice {manifest.sluice_version}; this is {_installed_version()})")
    typer.echo(f"Start it with: sluice serve --data-dir {settings.data_dir}")


def _warn_outside(manifest: Manifest, settings: Settings) -> None:
    """Name what the backup left outside that may be ahead of the restored log: new events are
    numbered from the log's end, positions those may have passed (docs/operations.md)."""
    outside = [
        f"warehouse {w.id} ({w.type})"
        for w in manifest.warehouses
        if w.note.startswith("not copied")
    ]
    if settings.archive_storage == "s3":
        outside.append(f"the archive in s3://{settings.archive_s3_bucket}")
    if outside:
        typer.secho(
            f"Not in this backup: {', '.join(outside)}. If they kept running after it (past log"
            f" position {manifest.log_position}), load those warehouses anew and move the"
            " bucket's archive files past that position aside before starting: new events are"
            " numbered from there (docs/operations.md, 'Known limit').",
            fg="yellow",
        )


def _installed_version() -> str:
    from sluice import __version__

    return __version__


@contextlib.contextmanager
def _hold_data_dir(data_dir: Path) -> Iterator[None]:
    """Refuse a data dir a `sluice serve` holds, and hold it while restoring so that none starts
    meanwhile: the same lock `serve` takes (cli/claims.py)."""
    made = not data_dir.exists()
    try:
        fd = lock_data_dir(data_dir, shared=False)  # its PID is whom a `serve` started names
    except OSError as exc:
        raise BackupError(f"cannot restore into {data_dir}: {exc.strerror or exc}") from None
    except DataDirInUse as exc:
        _remove_if_made(data_dir, made)
        raise BackupError(
            f"{exc}: stop it first (a restore fills an empty data dir, never a live one)"
        ) from None
    done = False
    try:
        yield
        done = True
    finally:
        os.close(fd)
        if not done:  # refused: leave no directory behind
            _remove_if_made(data_dir, made)


def _remove_if_made(data_dir: Path, made: bool) -> None:
    if made:
        (data_dir / SERVE_LOCK_NAME).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            data_dir.rmdir()
