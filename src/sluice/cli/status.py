"""`sluice status`: what came in and what happened to it, per source."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.inspection import status_report

MAIN_COUNTERS = ("received", "stored", "duplicates", "throttled", "unauthorized")
# Shown only when a source has some (privacy regulations).
SUPPRESSED = "suppressed"


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Counters as one JSON object.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Per source: received, stored, duplicates, rejected; per destination: delivery."""
    settings = settings_from(data_dir, database_url)
    store = open_store_for(settings)
    try:
        document = status_report(settings, store)
    finally:
        store.close()
    if as_json:
        typer.echo(msgspec.json.encode(document).decode())
        return
    by_source: dict[str, dict[str, int]] = document["sources"]
    last_seq: int = document["log_end"]
    destinations: dict[str, dict[str, Any]] = document["destinations"]
    warehouses: dict[str, dict[str, Any]] = document["warehouses"]
    console = Console(highlight=False)
    table = Table(title=f"Sluice status  (log position {last_seq})")
    table.add_column("source")
    for name in MAIN_COUNTERS:
        table.add_column(name, justify="right")
    table.add_column("rejected (by reason)")
    for source, values in sorted(by_source.items()):
        rejected = {
            name.partition(":")[2]: value
            for name, value in values.items()
            if name.startswith("rejected:")
        }
        table.add_row(
            source,
            *(str(values.get(name, 0)) for name in MAIN_COUNTERS),
            ", ".join(f"{reason}={n}" for reason, n in sorted(rejected.items())) or "-",
        )
    console.print(table)
    for source, values in sorted(by_source.items()):
        if values.get(SUPPRESSED):
            console.print(
                f"source {source}: {values[SUPPRESSED]} events of suppressed users dropped"
                " — `sluice suppressions list`"
            )
    for source, values in sorted(by_source.items()):  # tracking plans (docs/protocols.md)
        found = sum(n for name, n in values.items() if name.startswith("protocols_violation:"))
        if found:
            console.print(
                f"source {source}: {found} tracking plan violations — `sluice violations`"
            )
    for source, values in sorted(by_source.items()):  # transform/stages.py counters
        done = [
            f"{values[name]} {label}"
            for name, label in (("pii_blocked", "PII fields blocked"),
                                ("pii_hashed", "PII fields hashed"),
                                ("transform_skipped", "transformation steps skipped"))
            if values.get(name)
        ]  # fmt: skip
        if done:
            console.print(f"source {source} at ingest: {', '.join(done)}")
    if destinations:
        console.print(_destination_table(destinations))
        for dest, stats in sorted(destinations.items()):
            for problem in stats.get("filter_errors", []):
                console.print(f"[red]destination {dest} drops every event:[/] {problem}")
            state = stats["state"]
            if state["state"] == "paused":
                console.print(f"[yellow]destination {dest} paused:[/] {state['detail']}")
            if stats["retrying"] or stats["waiting"]:
                console.print(
                    f"destination {dest}: {stats['retrying']} retrying"
                    + (
                        f", {stats['waiting']} waiting behind their user"
                        if stats["waiting"]
                        else ""
                    )
                    + f" — `sluice retrying list --destination {dest}`"
                )
    if document["workers"]:
        console.print(_worker_table(document["workers"]))
    for worker, sidecar in document["bridge"].items():
        state = "running" if sidecar["healthy"] else "[red]down, restarting[/]"
        console.print(
            f"bridge sidecar of worker {worker}: {state}, node pid {sidecar['node_pid'] or '-'},"
            f" {sidecar['rss_mib']} MiB, {sidecar['restarts']} restarts"
            f" (reported {sidecar['reported_at']})"
        )
    archive = document["archive"]
    if archive["storage"] == "s3":
        line = (
            f"archive to {archive['where']}: {archive['uploads']} files uploaded,"
            f" {archive['pending_files']} waiting, {archive['upload_failures']} failed attempts"
        )
        if archive["failing"]:
            line += f" — [red]failing ({archive['failing']}) since {archive['failing_since']}[/]"
        console.print(line)
    for space, graph in document["identity"].items():
        line = (
            f"identity graph of {space}: log position {graph['position']} (lag {graph['lag']}),"
            f" {graph['merges']} merges, {graph['merges_refused']} refused by the size guard"
        )
        if graph["wal_checkpoint_failing"]:
            line += " — [red]identity.db checkpoints failing[/] (see the worker's log)"
        elif graph["wal_restarts_refused"]:
            line += f" — identity.db WAL held by a reader {graph['wal_restarts_refused']} times"
        console.print(line + f" (reported {graph['reported_at']})")
    reads: dict[str, int] = document["log_reads"]
    if reads["texts_replaced"] or reads["compiled_reader_failures"]:  # docs/metrics.md
        console.print(
            f"[yellow]event log reads:[/] {reads['texts_replaced']} texts not UTF-8 read with"
            f" U+FFFD, {reads['compiled_reader_failures']} compiled readers failed (reading"
            " through Python's sqlite3) — see the workers' logs"
        )
    regulations: dict[str, int] = document["regulations"]
    running = sum(regulations.get(s, 0) for s in ("INITIALIZED", "RUNNING"))
    failed = sum(regulations.get(s, 0) for s in ("FAILED", "PARTIAL_SUCCESS"))
    if running or failed:  # docs/privacy.md
        console.print(
            f"privacy regulations: {running} running, "
            + (f"[red]{failed} failed[/]" if failed else "0 failed")
            + " — `sluice regulations list`"
        )
    for warehouse_id, stats in sorted(warehouses.items()):
        if "error" in stats:
            console.print(f"warehouse {warehouse_id}: unavailable ({stats['error']})")
        else:
            console.print(
                f"warehouse {warehouse_id} ({stats['type']}): loaded to log position "
                f"{stats['position']} (lag {stats['lag']}), {stats['discards']} discarded values"
                + (" — `sluice warehouse discards`" if stats["discards"] else "")
            )
            if stats.get("capped_names"):
                console.print(
                    f"warehouse {warehouse_id}: {stats['capped_names']} event names have no table"
                    f" of their own (max_event_tables): their {stats['capped_events']} events are"
                    " in tracks only — `sluice warehouse capped`"
                )


def _worker_table(workers: dict[str, dict[str, Any]]) -> Table:
    """Each worker process: its lane, where it runs, what it costs, its units and their lag."""
    table = Table(title="Worker processes")
    for column in ("lane", "process"):
        table.add_column(column)
    for column in ("CPU s", "memory MiB", "restarts"):
        table.add_column(column, justify="right")
    table.add_column("units (lag)")
    for holder, w in workers.items():
        units = ", ".join(
            name + ("" if u["lag"] is None else f" ({u['lag']})") for name, u in w["units"].items()
        )
        where = f"{w['host']} pid {w['pid']}" if "pid" in w else holder
        table.add_row(
            str(w["lane"] or "?"), where, str(w.get("cpu_s", "")), str(w.get("rss_mib", "")),
            str(w.get("restarts", "")), units or "(idle)",
        )  # fmt: skip
    return table


def _destination_table(destinations: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="Delivery")
    for column in ("destination", "state", "delivered", "filtered", "retrying", "parked", "lag"):
        table.add_column(
            column, justify="right" if column not in ("destination", "state") else "left"
        )
    table.add_column("latency p50/p95/p99 (ms, ≤)")
    for dest, stats in sorted(destinations.items()):
        latency = stats["latency_ms"]
        table.add_row(
            dest,
            stats["state"]["state"],
            str(stats["delivered"]),
            str(stats["filtered"]),
            str(stats["retrying"] + stats["waiting"]),
            str(stats["parked"]),
            "-" if stats["lag"] is None else str(stats["lag"]),
            "/".join("-" if latency[k] is None else str(latency[k]) for k in ("p50", "p95", "p99")),
        )
    return table
