"""``lagoa status``: every pipeline and domain on one screen, and an exit code for cron and CI."""

from __future__ import annotations

import sys

import click

from lagoa.cli.app import Session, project_command
from lagoa.cli.output import Output


@project_command()
@click.argument("names", nargs=-1)
@click.option(
    "--runs",
    "recent",
    type=click.IntRange(1),
    help="Recent runs the quarantine trend and the quality pass rate look back over (default: 5).",
)
@click.option("--no-cdc", is_flag=True, help="Do not connect to the CDC sources' servers.")
def status(names: tuple[str, ...], recent: int | None, no_cdc: bool, session: Session, out: Output) -> None:
    """Show each pipeline and domain (or NAMES): its last run, next scheduled run, freshness
    against its schedule and SLA, quality pass rate, quarantine trend and CDC lag.

    Exits 1 when a pipeline's last run failed, a scheduled pipeline is stale (its latest
    successful interval ended more than a period plus its SLA ago, or it never succeeded), or a
    CDC source cannot be read or keeps more WAL than `max_retained_wal_mb`; 0 otherwise.

    \b
    Examples:
      lagoa status
      lagoa status daily --runs 10
      lagoa status --no-cdc --json
    """
    result = session.project.status(list(names), runs=recent, cdc=not no_cdc)
    out.status(result)
    if not result.ok:
        sys.exit(1)
