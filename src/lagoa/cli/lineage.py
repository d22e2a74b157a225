"""``lagoa lineage``: the lineage graph of a table, from the events runs kept in the lake."""

from __future__ import annotations

import click

from lagoa.cli.app import Session, project_command
from lagoa.cli.output import Output


@project_command()
@click.argument("table")
@click.option(
    "--upstream/--downstream", default=True, help="What the table is made from (default), or goes into."
)
@click.option("--columns", is_flag=True, help="Each column's source columns instead (dbt models).")
def lineage(table: str, session: Session, out: Output, upstream: bool, columns: bool) -> None:
    """Show the lineage of a table (bronze.x, silver.x, gold.x, main.<model>) from kept events.

    \b
    Examples:
      lagoa lineage gold.fct_daily_store_metrics
      lagoa lineage silver.erp_orders --downstream
      lagoa lineage main.fct_daily_store_metrics --columns
    """
    out.lineage(session.project.lineage(table, upstream=upstream), upstream=upstream, columns=columns)
