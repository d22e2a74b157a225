"""``lagoa validate`` and ``lagoa quality init|report``: expectation suites and their results."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from lagoa.cli.app import Session, handle_errors, json_option, main, project_command, project_option
from lagoa.cli.output import HumanOutput, Output


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
    targets: tuple[str, ...], suite_file: Path | None, strict: bool, session: Session, out: Output
) -> None:
    """Validate tables now against their expectation suites.

    TARGETS are tables (silver.orders), entities, sources or domains; by default every silver
    table that has a suite. Results are stored like an ingest's (see `lagoa quality report`).
    Exits 1 when an expectation whose on_fail is `fail` does not hold (any, with --strict).

    \b
    Examples:
      lagoa validate
      lagoa validate silver.erp_orders --strict
      lagoa validate orders marketing --json
    """
    results = session.project.validate(list(targets), suite_file=suite_file)
    out.validations(results)
    failed = [x for r in results for x in r.failed() if strict or x.expectation.action == "fail"]
    if failed:
        sys.exit(1)


@main.group()
def quality() -> None:
    """Expectation suites: starter suites and validation reports.

    \b
    Examples:
      lagoa quality init silver.erp_orders
      lagoa quality report --html
    """


@quality.command("init")
@click.argument("table")
@click.option("--force", is_flag=True, help="Overwrite an existing suite file.")
@project_option
@handle_errors
def quality_init(table: str, force: bool, session: Session) -> None:
    """Write a starter suite for TABLE profiled from its data (types, nulls, ranges, value sets).

    \b
    Examples:
      lagoa quality init silver.erp_orders
      lagoa quality init silver.products --force
    """
    HumanOutput().suite_written(*session.project.starter_suite(table, force=force))


@quality.command("report")
@click.option("--run", "run_id", help="Run id (default: the latest run with results).")
@click.option("--html", "show_html", is_flag=True, help="Print the paths of the HTML reports instead.")
@project_option
@json_option
@handle_errors
def quality_report(run_id: str | None, show_html: bool, session: Session, out: Output) -> None:
    """Show the stored validation results of a run (its id or short id; default: the latest).

    \b
    Examples:
      lagoa quality report
      lagoa quality report --run 2e7d55 --json
      lagoa quality report --html
    """
    from lagoa.core.errors import ConfigError

    project = session.project
    if run_id is not None:
        # `lagoa validate` stores results under ids of its own, which the run history lacks.
        with contextlib.suppress(ConfigError):
            run_id = project.resolve_run(run_id)
    found, results = project.quality_results(run_id)
    if found is None or not results:
        out.no_quality_results(run_id)
        sys.exit(1)
    out.quality_report(found, results, project.quality_reports(found) if show_html else None)
