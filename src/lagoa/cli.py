"""The ``lagoa`` command: parse, call the library, print. Errors become one clean message."""

from __future__ import annotations

import csv
import functools
import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from lagoa.project import IngestSummary, Project

F = TypeVar("F", bound=Callable[..., Any])


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


class Output:
    """Human (rich tables) or machine (``--json``) output through one interface."""

    def __init__(self, as_json: bool = False) -> None:
        self.as_json = as_json

    def table(self, title: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        if self.as_json:
            records = [{c: _jsonable(v) for c, v in zip(columns, row, strict=True)} for row in rows]
            click.echo(json.dumps(records, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title or None, title_justify="left")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*["" if v is None else str(v) for v in row])
        Console().print(table)

    def message(self, text: str) -> None:
        if not self.as_json:
            click.echo(text)


def handle_errors(command: F) -> F:
    """Turn a LagoaError into a message on stderr and exit code 1 (2 for configuration errors)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from lagoa.errors import ConfigError, LagoaError

        try:
            return command(*args, **kwargs)
        except LagoaError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2 if isinstance(exc, ConfigError) else 1)

    return wrapper  # type: ignore[return-value]


def _project(path: str) -> Project:
    from lagoa.project import Project

    return Project.load(Path(path))


project_option = click.option(
    "--project",
    "-p",
    "project_path",
    default=".",
    show_default=True,
    type=click.Path(file_okay=True, dir_okay=True),
    help="Project folder (holding lagoa.yml) or the lagoa.yml file.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")


def project_command(*, with_json: bool = True) -> Callable[[F], F]:
    """A subcommand of ``lagoa`` that works on a project: --project, optionally --json, clean errors."""

    def decorate(function: F) -> F:
        wrapped = handle_errors(function)
        if with_json:
            wrapped = json_option(wrapped)
        return main.command()(project_option(wrapped))  # type: ignore[return-value]

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lagoa")
def main() -> None:
    """Lagoa: a local-first lakehouse.

    Files land raw, are typed into Iceberg bronze tables and de-duplicated into silver, and are
    queryable with SQL through a DuckDB warehouse, all on one machine.
    """


@main.command()
@click.argument("directory", type=click.Path(file_okay=False), default=".")
@click.option("--name", help="Project name (default: the folder's name).")
@handle_errors
def init(directory: str, name: str | None) -> None:
    """Create a working starter project in DIRECTORY."""
    from lagoa.scaffold import scaffold

    written = scaffold(Path(directory), name)
    for path in written:
        click.echo(f"  wrote {path}")
    click.echo(f"\nNext: cd {directory} && lagoa ingest && lagoa query 'select * from silver.orders'")


@project_command()
@click.argument("sources", nargs=-1)
def ingest(sources: tuple[str, ...], project_path: str, as_json: bool) -> None:
    """Land, type and merge SOURCES (names or domains; all by default) into bronze and silver."""
    project = _project(project_path)
    if as_json or not sys.stderr.isatty():
        summary = project.ingest(list(sources) or None)
    else:
        summary = _ingest_with_progress(project, list(sources))
    _print_summary(summary, Output(as_json))


def _ingest_with_progress(project: Project, sources: list[str]) -> IngestSummary:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True
    ) as progress:
        tasks: dict[str, Any] = {}

        def report(source: str, stage: str) -> None:
            if source not in tasks:
                tasks[source] = progress.add_task(source, total=None)
            progress.update(tasks[source], description=f"{source}: {stage}")

        return project.ingest(sources or None, progress=report)


def _print_summary(summary: IngestSummary, out: Output) -> None:
    rows = [
        (
            s.source,
            s.files,
            len(s.skipped_files),
            s.bronze_rows,
            s.silver_rows,
            s.quarantined,
            s.silver_total,
        )
        for s in summary.sources
    ]
    if out.as_json:
        click.echo(
            json.dumps(
                {
                    "run_id": summary.run_id,
                    "sources": [vars(s) for s in summary.sources],
                    "warnings": summary.warnings,
                },
                indent=2,
            )
        )
        return
    out.table(
        f"ingest {summary.run_id}",
        ["source", "files", "skipped", "bronze rows", "merged", "quarantined", "silver total"],
        rows,
    )
    for warning in summary.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)


@project_command()
def tables(project_path: str, as_json: bool) -> None:
    """List the lake's tables with row, file and snapshot counts."""
    infos = _project(project_path).tables()
    Output(as_json).table(
        "tables",
        ["table", "rows", "files", "snapshots"],
        [(t.identifier, t.rows, t.files, t.snapshots) for t in infos],
    )


@project_command()
@click.argument("sql")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
def query(sql: str, project_path: str, as_json: bool, as_csv: bool) -> None:
    """Run SQL against the warehouse (schemas bronze, silver, gold)."""
    columns, rows = _project(project_path).query(sql)
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
        return
    Output(as_json).table("", columns, rows)


@project_command(with_json=False)
def shell(project_path: str) -> None:
    """Interactive SQL on the warehouse. End statements with `;`, leave with `.quit` or Ctrl-D."""
    from lagoa.shell import run_shell

    run_shell(_project(project_path))


@project_command()
def doctor(project_path: str, as_json: bool) -> None:
    """Check the project file, source paths, catalog, DuckDB extensions and warehouse."""
    checks = _project(project_path).doctor()
    Output(as_json).table(
        "doctor", ["check", "ok", "detail"], [(n, "yes" if ok else "NO", d) for n, ok, d in checks]
    )
    if not all(ok for _, ok, _ in checks):
        sys.exit(1)


if __name__ == "__main__":
    main()
