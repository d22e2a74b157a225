"""``lagoa cdc setup|status|run|drop|resync``: zero-ETL replication of Postgres sources."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from lagoa.cli.app import handle_errors, main
from lagoa.cli.app import json_flag as json_option
from lagoa.cli.app import load_project as _project
from lagoa.cli.app import project_path_option as project_option
from lagoa.cli.output import HumanOutput as Output
from lagoa.cli.signals import stop_on_signal

if TYPE_CHECKING:
    from lagoa.core.config import PostgresSource
    from lagoa.orchestrate.project import Project
    from lagoa.sources.cdc import FlushResult, Replicator


@main.group()
def cdc() -> None:
    """Replicate Postgres tables (`kind: postgres`, `mode: cdc`) into bronze and silver.

    \b
    lagoa cdc setup [SOURCE]            publication, slot and initial snapshot
    lagoa cdc status [SOURCE]           lag, retained WAL, last LSN per table
    lagoa cdc run [SOURCE] [--follow]   apply the changes (until SIGTERM with --follow)
    lagoa cdc resync SOURCE TABLE...    copy tables again from a new snapshot
    lagoa cdc drop [SOURCE]             drop the slot and the publication
    """


def _source(project: Project, name: str | None) -> tuple[str, PostgresSource]:
    from lagoa.core.config import PostgresSource
    from lagoa.core.errors import ConfigError

    sources = {
        n: s for n, s in project.config.sources.items() if isinstance(s, PostgresSource) and s.mode == "cdc"
    }
    if name is None:
        if len(sources) != 1:
            found = ", ".join(sorted(sources)) or "none"
            raise ConfigError(
                f"name the source to replicate (CDC sources: {found})",
                hint="a source with `kind: postgres` and `mode: cdc`",
            )
        name = next(iter(sources))
    if name not in sources:
        raise ConfigError(
            f"`{name}` is not a CDC source", hint=f"CDC sources: {', '.join(sorted(sources)) or 'none'}"
        )
    return name, sources[name]


@contextmanager
def _replicator(project_path: str, source: str | None) -> Iterator[Replicator]:
    """The source's replicator, with a progress bar per table while tables are copied."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lagoa.sources.cdc import Replicator

    project = _project(project_path)
    name, config = _source(project, source)
    run_id = f"cdc-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    bars = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        transient=True,
    )  # fmt: skip

    class Bars:
        """Report lines printed above a progress bar per table being copied."""

        def __init__(self) -> None:
            self.tasks: dict[str, Any] = {}

        def stage(self, item: str, message: str) -> None:
            bars.console.print(f"{item}: {message}", highlight=False, markup=False)

        def rows(self, item: str, done: int, total: int | None) -> None:
            if item not in self.tasks:
                bars.start()
                self.tasks[item] = bars.add_task(f"copying {item}", total=total)
            bars.update(self.tasks[item], completed=done)

    try:
        with Replicator(project.workspace, name, config, run_id=run_id, reporter=Bars()) as replicator:
            yield replicator
    finally:
        bars.stop()


@cdc.command()
@click.argument("source", required=False)
@project_option
@handle_errors
def setup(source: str | None, project_path: str) -> None:
    """Create the publication and the slot, and copy every table from the slot's starting
    snapshot (tables added to the source since are copied on their own)."""
    with _replicator(project_path, source) as replicator:
        done = replicator.setup()
        for line in done or ["nothing to do: publication, slot and tables are in place"]:
            click.echo(f"{replicator.name}: {line}")


@cdc.command()
@click.argument("source", required=False)
@project_option
@json_option
@handle_errors
def status(source: str | None, project_path: str, as_json: bool) -> None:
    """Slot lag (bytes and seconds), retained WAL, and the last LSN applied to each table."""
    from lagoa.sources.cdc import format_lsn

    with _replicator(project_path, source) as replicator:
        state = replicator.status()
        warning = replicator.retained_warning(state)
    if as_json:
        click.echo(json.dumps({**asdict(state), "warning": warning}, indent=2, default=str))
        return
    out = Output()

    def lsn(value: int | None) -> str:
        return format_lsn(value) if value is not None else "-"

    slot = [
        ("slot", state.slot if state.exists else f"{state.slot} (missing: run `lagoa cdc setup`)"),
        ("publication", state.publication),
        ("in use by pid", state.active_pid or "-"),
        ("confirmed LSN", lsn(state.confirmed_lsn)),
        ("server LSN", lsn(state.current_lsn)),
        ("lag", f"{state.lag_bytes:,} bytes, {state.lag_seconds:.1f} s"),
        ("retained WAL", f"{state.retained_wal_bytes / 2**20:,.1f} MB ({state.wal_status or '-'})"),
    ]
    out.table(f"cdc {replicator.name}", ["", ""], slot)
    out.table(
        "last applied LSN per table",
        ["table", "bronze change log", "silver mirror"],
        [(t.table, lsn(t.bronze_lsn), lsn(t.silver_lsn)) for t in state.tables],
    )
    if warning:
        click.secho(f"warning: {warning}", fg="yellow", err=True)


@cdc.command("run")
@click.argument("source", required=False)
@click.option("--follow", is_flag=True, help="Keep applying changes until SIGTERM or Ctrl-C.")
@project_option
@handle_errors
def run_cdc(source: str | None, follow: bool, project_path: str) -> None:
    """Apply the changes committed in Postgres since the last run (setting up what is missing).

    Flushes every `flush_interval` seconds, or at once when `flush_rows` changes wait. A flush
    commits whole source transactions; the slot advances only after the commits."""
    from lagoa.sources.cdc import follow as replicate
    from lagoa.sources.cdc import format_lsn

    with _replicator(project_path, source) as replicator:
        for line in replicator.setup():
            click.echo(f"{replicator.name}: {line}")

        def show(result: FlushResult) -> None:
            tables = ", ".join(f"{t} {n:,}" for t, n in sorted(result.tables.items())) or "no table changes"
            at = f" up to {format_lsn(result.lsn)}" if result.lsn else ""
            click.echo(f"{replicator.name}: {result.transactions:,} transaction(s): {tables}{at}")
            if warning := replicator.retained_warning(replicator.status(peek=False)):
                click.secho(f"warning: {warning}", fg="yellow", err=True)

        with stop_on_signal("stopping after this flush (again: abort)") as stop:
            if follow:
                click.echo(f"{replicator.name}: following slot {replicator.slot} (SIGTERM or Ctrl-C stops)")
            total = replicate(replicator, stop, on_flush=show, once=not follow)
        click.echo(
            f"{replicator.name}: applied {total.changes:,} change(s) from {total.transactions:,} transaction(s)"
        )


@cdc.command()
@click.argument("source")
@click.argument("tables", nargs=-1, required=True)
@project_option
@handle_errors
def resync(source: str, tables: tuple[str, ...], project_path: str) -> None:
    """Rebuild the mirrors of TABLES from a new snapshot, e.g. after a column changed type."""
    with _replicator(project_path, source) as replicator:
        replicator.setup()
        for line in replicator.resync(list(tables)):
            click.echo(f"{replicator.name}: {line}")


@cdc.command()
@click.argument("source", required=False)
@project_option
@handle_errors
def drop(source: str | None, project_path: str) -> None:
    """Drop the slot and the publication, so Postgres stops keeping WAL for them. The lake
    tables stay; a later `lagoa cdc setup` copies the tables again."""
    with _replicator(project_path, source) as replicator:
        for line in replicator.drop() or ["nothing to drop"]:
            click.echo(f"{replicator.name}: {line}")
