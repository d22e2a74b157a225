"""``lagoa init``, ``ingest``, ``tables``, ``query``, ``doctor``, ``optimize``, ``expire``: the
project and its lake."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from lagoa.cli.app import Session, handle_errors, main, project_command
from lagoa.cli.output import CsvOutput, HumanOutput, Output
from lagoa.cli.signals import EXIT_CANCELLED, stop_on_signal
from lagoa.core.config.orchestration import INGEST_RUNS


@main.command()
@click.argument("directory", type=click.Path(file_okay=False), default=".")
@click.option("--name", help="Project name (default: the folder's name).")
@click.option(
    "--dbt",
    "dbt_project",
    type=click.Path(file_okay=False, path_type=Path),
    help="Attach this existing dbt project (left as it is) instead of writing a starter.",
)
@handle_errors
def init(directory: str, name: str | None, dbt_project: Path | None) -> None:
    """Create a working starter project in DIRECTORY: a sample source and its expectation suite,
    a dbt project with a staging model and a published, partitioned mart, a domain and a daily
    pipeline, so that `lagoa run daily` goes from the CSV file to gold. With --dbt, a project
    around an existing dbt project instead: one domain builds all of it (`select: "fqn:*"`).

    \b
    Examples:
      lagoa init my_lake
      lagoa init my_lake --name retail
      lagoa init . --dbt ../jaffle_shop
    """
    from lagoa.cli.scaffold import attach, scaffold

    if dbt_project is not None:
        HumanOutput().attached(directory, attach(Path(directory), dbt_project, name))
        return
    HumanOutput().scaffolded(directory, scaffold(Path(directory), name))


@project_command()
@click.argument("sources", nargs=-1)
def ingest(sources: tuple[str, ...], session: Session, out: Output) -> None:
    """Land, type and merge SOURCES (names or domains; all by default) into bronze and silver.

    \b
    Examples:
      lagoa ingest
      lagoa ingest erp_orders products
      lagoa ingest orders --json      # a domain: all its sources
    """
    project = session.project
    with (
        stop_on_signal("stopping after this step (again: abort)") as cancel,
        out.ingest_progress() as progress,
    ):
        summary = project.ingest(list(sources) or None, progress, cancel=cancel)
    project.push_metrics(INGEST_RUNS)
    out.ingest_summary(summary)
    if summary.cancelled:
        sys.exit(EXIT_CANCELLED)


@project_command()
def tables(session: Session, out: Output) -> None:
    """List the lake's tables with row, file and snapshot counts.

    \b
    Examples:
      lagoa tables
      lagoa tables -p examples/retail_lakehouse --json
    """
    out.tables(session.project.tables())


@project_command()
@click.argument("sql")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
@click.option("--write", is_flag=True, help="Open the warehouse for writing (CREATE, DROP, INSERT…).")
@click.option(
    "--limit",
    default=40,
    show_default=True,
    type=click.IntRange(0),
    help="Rows shown in the table (0: all); --csv and --json print every row.",
)
def query(sql: str, session: Session, out: Output, as_csv: bool, write: bool, limit: int) -> None:
    """Run SQL against the warehouse (schemas bronze, silver, gold), read-only unless --write.

    \b
    Examples:
      lagoa query "select * from silver.orders limit 5"
      lagoa query "select status, count(*) from silver.orders group by 1" --csv > by_status.csv
    """
    _require_statement(sql)
    project = session.project
    if as_csv or write or limit == 0 or not isinstance(out, HumanOutput):
        columns, rows = project.query(sql, write=write, warn=warn)
        (CsvOutput() if as_csv else out).query_rows(columns, rows)
        return
    columns, head, total = project.query_head(sql, limit, warn=warn)
    out.query_rows(columns, head, more=total - len(head))


def warn(text: str) -> None:
    """A warning on stderr, whatever the output's form; wrapped to a terminal's width."""
    from lagoa.cli.output import on_terminal

    click.secho(on_terminal(f"warning: {text}", "  "), fg="yellow", err=True)


@project_command()
def doctor(session: Session, out: Output) -> None:
    """Check the project file, sources, catalog, DuckDB extensions, warehouse, suites, dbt project and secrets.

    \b
    Examples:
      lagoa doctor
      lagoa doctor -p examples/retail_lakehouse --json
    """
    checks = session.project.doctor()
    out.doctor(checks)
    if not all(ok for _, ok, _ in checks):
        sys.exit(1)


@project_command()
@click.argument("table")
def optimize(table: str, session: Session, out: Output) -> None:
    """Compact TABLE's files and re-apply its sort or Z-order, in one commit.

    \b
    Examples:
      lagoa optimize silver.erp_orders
      lagoa optimize gold.fct_daily_store_metrics --json
    """
    out.optimized(session.project.optimize(table))


@project_command()
@click.argument("table")
@click.option(
    "--older-than",
    default="7d",
    show_default=True,
    help="Age of the snapshots to expire: 30m, 12h, 7d, or an ISO timestamp.",
)
def expire(table: str, older_than: str, session: Session, out: Output) -> None:
    """Expire TABLE's old snapshots and delete the files nothing references any more.

    The current snapshot is always kept, and Lagoa's ledger of ingested batches is carried forward.

    \b
    Examples:
      lagoa expire silver.erp_orders
      lagoa expire silver.erp_orders --older-than 12h
      lagoa expire gold.fct_daily_store_metrics --older-than 2026-11-01T00:00:00
    """
    out.expired(session.project.expire(table, _cutoff(older_than)))


def _require_statement(sql: str) -> None:
    """Refuse SQL holding no statement (empty, a bare `;`, only comments): nothing would run."""
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error:
        return  # a syntax error: the warehouse reports it with DuckDB's words
    if not statements:
        raise click.BadParameter(
            "holds no SQL statement; e.g. 'select * from silver.orders'", param_hint="SQL"
        )


def _cutoff(text: str) -> datetime:
    from lagoa.core.errors import ConfigError
    from lagoa.core.time import cutoff

    try:
        return cutoff(text)
    except ConfigError:
        raise click.BadParameter(f"{text!r}: write 30m, 12h, 7d or an ISO timestamp") from None
