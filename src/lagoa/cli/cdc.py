"""``lagoa cdc setup|status|run|drop|resync``: zero-ETL replication of Postgres sources."""

from __future__ import annotations

import click

from lagoa.cli.app import Session, handle_errors, json_option, main, project_option
from lagoa.cli.output import HumanOutput, Output
from lagoa.cli.signals import stop_on_signal


@main.group()
def cdc() -> None:
    """Replicate Postgres tables (`kind: postgres`, `mode: cdc`) into bronze and silver.

    \b
    lagoa cdc setup [SOURCE]            publication, slot and initial snapshot
    lagoa cdc status [SOURCE]           lag, retained WAL, last LSN per table
    lagoa cdc run [SOURCE] [--follow]   apply the changes (until SIGTERM with --follow)
    lagoa cdc resync SOURCE TABLE...    copy tables again from a new snapshot
    lagoa cdc drop [SOURCE]             drop the slot and the publication

    \b
    Examples:
      lagoa cdc setup movielens -p examples/movielens_zero_etl
      lagoa cdc run movielens --follow
      lagoa cdc status --json
    """


@cdc.command()
@click.argument("source", required=False)
@project_option
@handle_errors
def setup(source: str | None, session: Session) -> None:
    """Create the publication and the slot, and copy every table from the slot's starting
    snapshot (tables added to the source since are copied on their own).

    \b
    Examples:
      lagoa cdc setup
      lagoa cdc setup movielens -p examples/movielens_zero_etl
    """
    out = HumanOutput()
    with out.copy_progress() as reporter, session.project.replicator(source, reporter) as replicator:
        done = replicator.setup()
        out.lines(replicator.name, done or ["nothing to do: publication, slot and tables are in place"])


@cdc.command()
@click.argument("source", required=False)
@project_option
@json_option
@handle_errors
def status(source: str | None, session: Session, out: Output) -> None:
    """Slot lag (bytes and seconds), retained WAL, and the last LSN applied to each table.

    \b
    Examples:
      lagoa cdc status
      lagoa cdc status movielens --json
    """
    with session.project.replicator(source) as replicator:
        state = replicator.status()
        warning = replicator.retained_warning(state)
    out.cdc_status(replicator.name, state, warning)


@cdc.command("run")
@click.argument("source", required=False)
@click.option("--follow", is_flag=True, help="Keep applying changes until SIGTERM or Ctrl-C.")
@project_option
@handle_errors
def run_cdc(source: str | None, follow: bool, session: Session) -> None:
    """Apply the changes committed in Postgres since the last run (setting up what is missing).

    Flushes every `flush_interval` seconds, or at once when `flush_rows` changes wait. A flush
    commits whole source transactions; the slot advances only after the commits. With --follow,
    serves Prometheus metrics (the slot's lag, retained WAL and position) at `observe.metrics.port`.

    \b
    Examples:
      lagoa cdc run                   # apply what is pending, then exit
      lagoa cdc run movielens --follow
    """
    from lagoa.sources.cdc import FlushResult
    from lagoa.sources.cdc import follow as replicate

    out = HumanOutput()
    with out.copy_progress() as reporter, session.project.replicator(source, reporter) as replicator:
        out.lines(replicator.name, replicator.setup())

        def show(result: FlushResult) -> None:
            out.flushed(replicator.name, result, replicator.retained_warning(replicator.status(peek=False)))

        with stop_on_signal("stopping after this flush (again: abort)") as stop:
            if follow:
                address = session.project.serve_metrics()
                if address is not None:
                    out.lines(replicator.name, [f"metrics at http://{address[0]}:{address[1]}/metrics"])
                out.lines(replicator.name, [f"following slot {replicator.slot} (SIGTERM or Ctrl-C stops)"])
            total = replicate(replicator, stop, on_flush=show, once=not follow)
        out.lines(
            replicator.name,
            [f"applied {total.changes:,} change(s) from {total.transactions:,} transaction(s)"],
        )


@cdc.command()
@click.argument("source")
@click.argument("tables", nargs=-1, required=True)
@project_option
@handle_errors
def resync(source: str, tables: tuple[str, ...], session: Session) -> None:
    """Rebuild the mirrors of TABLES from a new snapshot, e.g. after a column changed type.

    \b
    Examples:
      lagoa cdc resync movielens ratings
      lagoa cdc resync movielens movies links -p examples/movielens_zero_etl
    """
    out = HumanOutput()
    with out.copy_progress() as reporter, session.project.replicator(source, reporter) as replicator:
        replicator.setup()
        out.lines(replicator.name, replicator.resync(list(tables)))


@cdc.command()
@click.argument("source", required=False)
@project_option
@handle_errors
def drop(source: str | None, session: Session) -> None:
    """Drop the slot and the publication, so Postgres stops keeping WAL for them. The lake
    tables stay; a later `lagoa cdc setup` copies the tables again.

    \b
    Examples:
      lagoa cdc drop
      lagoa cdc drop movielens -p examples/movielens_zero_etl
    """
    out = HumanOutput()
    with out.copy_progress() as reporter, session.project.replicator(source, reporter) as replicator:
        out.lines(replicator.name, replicator.drop() or ["nothing to drop"])
