"""The ``lagoa`` command: parse, call the library, print. Errors become one clean message."""

from __future__ import annotations

import csv
import dataclasses
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
        from lagoa.core.errors import ConfigError, LagoaError

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
            s.failed_checks,
            s.silver_total,
        )
        for s in summary.sources
    ]
    if out.as_json:
        click.echo(
            json.dumps(
                {
                    "run_id": summary.run_id,
                    "sources": [dataclasses.asdict(s) for s in summary.sources],
                    "warnings": summary.warnings,
                },
                indent=2,
            )
        )
        return
    out.table(
        f"ingest {summary.run_id}",
        [
            "source",
            "files",
            "skipped",
            "bronze rows",
            "merged",
            "quarantined",
            "failed checks",
            "silver total",
        ],
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


@project_command()
@click.argument("targets", nargs=-1)
@click.option(
    "--suite",
    "suite_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Validate with this suite file instead of the table's own suites.",
)
@click.option("--strict", is_flag=True, help="Exit 1 when any expectation fails, not only on_fail=fail ones.")
def validate(
    targets: tuple[str, ...], suite_file: Path | None, strict: bool, project_path: str, as_json: bool
) -> None:
    """Validate tables now against their expectation suites.

    TARGETS are tables (silver.orders), entities, sources or domains; by default every silver
    table that has a suite. Results are stored like an ingest's (see `lagoa quality report`).
    Exits 1 when an expectation whose on_fail is `fail` does not hold (any, with --strict).
    """
    from datetime import UTC, datetime

    from lagoa.project import new_run_id
    from lagoa.quality.ondemand import validate_tables

    project = _project(project_path)
    run_id = new_run_id(datetime.now(UTC))
    results = validate_tables(project, list(targets), suite_file=suite_file, run_id=run_id)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in results], indent=2, default=str))
    else:
        for result in results:
            _print_result(result.to_json())
        if not results:
            click.echo("no table with a suite to validate")
    failed = [x for r in results for x in r.failed() if strict or x.expectation.action == "fail"]
    if failed:
        sys.exit(1)


def _print_result(data: dict[str, Any]) -> None:
    from lagoa.quality.results import summary_line
    from lagoa.quality.suite import label

    lagoa = data["meta"].get("lagoa", {})
    stats = data["statistics"]
    rows = [
        (
            item["meta"]["lagoa"]["index"],
            "passed" if item["success"] else "FAILED",
            item["meta"]["lagoa"]["on_fail"],
            label(item["expectation_config"]["type"], item["expectation_config"]["kwargs"]),
            summary_line(item),
        )
        for item in data["results"]
    ]
    title = (
        f"{data['suite_name']} on {lagoa.get('table')} ({lagoa.get('rows')} rows): "
        f"{stats['successful_expectations']}/{stats['evaluated_expectations']} passed"
    )
    Output().table(title, ["#", "result", "on fail", "expectation", "observed"], rows)


@main.command(
    context_settings={
        "ignore_unknown_options": True,
        "allow_interspersed_args": False,
        "help_option_names": [],
    }
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@project_option
@handle_errors
def dbt(args: tuple[str, ...], project_path: str) -> None:
    """Run dbt on the project's dbt project, with Lagoa's generated profile.

    `lagoa dbt sources` writes the lake's bronze and silver tables as dbt sources; anything else
    passes through to dbt (`lagoa dbt build --select tag:orders`, `lagoa dbt docs generate`).
    `lagoa dbt --help` shows this text; `lagoa dbt <command> --help` shows dbt's own help.
    """
    if not args or args[0] in ("-h", "--help"):
        click.echo(click.get_current_context().get_help())
        return
    project = _project(project_path)
    if list(args[:1]) == ["sources"]:
        from lagoa.transform.profiles import dbt_project_dir
        from lagoa.transform.sources import write_sources

        path = write_sources(project, dbt_project_dir(project))
        click.echo(f"wrote {path}")
        return
    from lagoa.transform.runner import invoke

    run = invoke(project, list(args))
    if not run.success:
        sys.exit(1)


@project_command()
@click.argument("domains", nargs=-1)
def transform(domains: tuple[str, ...], project_path: str, as_json: bool) -> None:
    """Build the dbt models (and run their tests) of DOMAINS, or of every domain.

    A domain's models are its `select:` in lagoa.yml, by default `tag:<domain>`.
    """
    project = _project(project_path)
    run = project.transform(list(domains) or None)
    Output(as_json).table(
        "dbt build",
        ["node", "kind", "status", "seconds"],
        [(n.name, n.kind, n.status, round(n.seconds, 2)) for n in run.nodes],
    )


@project_command()
@click.argument("models", nargs=-1)
def publish(models: tuple[str, ...], project_path: str, as_json: bool) -> None:
    """Publish dbt models to gold Iceberg tables (all models marked for publishing by default).

    `lagoa transform` publishes the models it built; this publishes again from the warehouse.
    """
    from lagoa.publish.gold import PublishResult

    results = _project(project_path).publish(list(models) or None)
    Output(as_json).table(
        "publish",
        ["target", "rows written", "partitions rewritten", "files removed", "files added", "skipped"],
        [
            (r.table, r.rows, r.partitions, r.removed_files, r.added_files, r.skipped)
            if isinstance(r, PublishResult)
            else (r.location, r.rows, "all", "previous version", r.files, r.skipped)
            for r in results
        ],
    )


@project_command()
@click.argument("table")
def optimize(table: str, project_path: str, as_json: bool) -> None:
    """Compact TABLE's files and re-apply its sort or Z-order, in one commit."""
    from lagoa.lake.maintenance import optimize as run

    result = run(_project(project_path).lake, table)
    Output(as_json).table(
        "optimize",
        ["table", "files before", "files after", "rows"],
        [(result.table, result.files_before, result.files_after, result.rows)],
    )


@project_command()
@click.argument("table")
@click.option(
    "--older-than",
    default="7d",
    show_default=True,
    help="Age of the snapshots to expire: 30m, 12h, 7d, or an ISO timestamp.",
)
def expire(table: str, older_than: str, project_path: str, as_json: bool) -> None:
    """Expire TABLE's old snapshots and delete the files nothing references any more.

    The current snapshot is always kept, and Lagoa's ledger of ingested batches is carried forward.
    """
    from lagoa.lake.maintenance import expire as run

    result = run(_project(project_path).lake, table, _cutoff(older_than))
    Output(as_json).table(
        "expire",
        ["table", "snapshots expired", "snapshots kept", "files deleted"],
        [(result.table, result.expired_snapshots, result.kept_snapshots, result.deleted_files)],
    )


def _cutoff(text: str) -> datetime:
    import re
    from datetime import UTC, timedelta

    match = re.fullmatch(r"(\d+)\s*([smhdw])", text.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[match.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: write 30m, 12h, 7d or an ISO timestamp") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@main.group(invoke_without_command=True)
@project_option
@click.pass_context
@handle_errors
def docs(ctx: click.Context, project_path: str) -> None:
    """Generate the dbt docs site and publish it with the lake (gold/_docs/).

    `lagoa docs serve` serves the published site locally.
    """
    if ctx.invoked_subcommand is not None:
        return
    from lagoa.publish.docs import generate_docs

    folder = generate_docs(_project(project_path))
    click.echo(f"published the docs site to {folder}; `lagoa docs serve` opens it")


@docs.command("serve")
@click.option("--port", default=8080, show_default=True, help="Port to listen on (0: any free port).")
@project_option
@handle_errors
def docs_serve(port: int, project_path: str) -> None:
    """Serve the published docs site on http://127.0.0.1:PORT until Ctrl-C."""
    from lagoa.publish.docs import docs_server

    server = docs_server(_project(project_path), port)
    click.echo(f"serving the docs at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@main.group()
def quality() -> None:
    """Expectation suites: starter suites and validation reports."""


@quality.command("init")
@click.argument("table")
@click.option("--force", is_flag=True, help="Overwrite an existing suite file.")
@project_option
@handle_errors
def quality_init(table: str, force: bool, project_path: str) -> None:
    """Write a starter suite for TABLE profiled from its data (types, nulls, ranges, value sets)."""
    from lagoa.quality.ondemand import profile_suite, resolve_tables, write_suite

    project = _project(project_path)
    (identifier,) = resolve_tables(project, [table])[:1] or [table]
    suite = profile_suite(project, identifier)
    path = project.root / project.config.quality.path / f"{suite['name']}.json"
    write_suite(path, suite, force=force)
    click.echo(
        f"wrote {path} ({len(suite['expectations'])} expectations); review it, then `lagoa validate {identifier}`"
    )


@quality.command("report")
@click.option("--run", "run_id", help="Run id (default: the latest run with results).")
@click.option("--html", "show_html", is_flag=True, help="Print the paths of the HTML reports instead.")
@project_option
@json_option
@handle_errors
def quality_report(run_id: str | None, show_html: bool, project_path: str, as_json: bool) -> None:
    """Show the stored validation results of a run."""
    from lagoa.quality.results import load_results

    project = _project(project_path)
    found, results = load_results(project.storage, run_id)
    if found is None or not results:
        click.echo(
            "no validation results yet: run `lagoa ingest` or `lagoa validate`"
            if run_id is None
            else f"no results for run {run_id}"
        )
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    if show_html:
        for path in project.storage.list(f"quality/{found}"):
            if path.endswith(".html"):
                click.echo(project.storage.local_path(path))
        return
    click.echo(f"run {found}")
    for data in results:
        _print_result(data)


# The orchestration commands (graph, run, runs, backfill, scheduler) and `lagoa cdc` live in their own modules.
from lagoa import cli_cdc, cli_runs  # noqa: E402

__all__ = ["cli_cdc", "cli_runs", "main"]

if __name__ == "__main__":  # `python -m lagoa.cli`: the importable module has every command
    from lagoa.cli import main as registered

    registered()
