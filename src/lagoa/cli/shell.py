"""`lagoa shell`: a small SQL prompt on the warehouse (views refreshed on start), read-only unless
``--write``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from lagoa.cli.app import Session, project_command
from lagoa.cli.output import rich_table

if TYPE_CHECKING:
    from lagoa.orchestrate.project import Project


@project_command(with_json=False)
@click.option("--write", is_flag=True, help="Open the warehouse for writing (CREATE, DROP, INSERT…).")
def shell(session: Session, write: bool) -> None:
    """Interactive SQL on the warehouse, read-only unless --write. End statements with `;`, leave
    with `.quit` or Ctrl-D."""
    run_shell(session.project, write=write)


def run_shell(project: Project, *, write: bool = False) -> None:
    import duckdb
    from rich.console import Console
    from rich.text import Text

    from lagoa.cli.lake import warn
    from lagoa.core.errors import EngineError
    from lagoa.engine.warehouse import refuse_writes

    console = Console()
    warehouse = project.warehouse
    if write:
        con = warehouse.connect()
        warehouse.refresh(project.lake, con, warn=warn)
    else:
        con = warehouse.reader(project.lake, warn=warn)
    mode = "for writing" if write else "read-only (--write to change it)"
    console.print(
        f"lagoa shell on {warehouse.path}, {mode} (DuckDB {duckdb.__version__}); end with `;`, .quit to leave",
        markup=False,
    )
    buffer: list[str] = []
    interactive = sys.stdin.isatty()
    try:
        while True:
            try:
                line = input("lagoa> " if not buffer else "   ..> ") if interactive else sys.stdin.readline()
            except EOFError:
                break
            if not interactive and line == "":
                break
            if not buffer and line.strip() in (".quit", ".exit", "\\q"):
                break
            buffer.append(line)
            statement = "\n".join(buffer).strip()
            if not statement.endswith(";"):
                continue
            buffer.clear()
            try:
                if not write:
                    refuse_writes(statement)
                result = con.execute(statement)
            except EngineError as exc:
                console.print(Text(str(exc), style="red"))
                continue
            except duckdb.Error as exc:
                console.print(Text(str(exc), style="red"))
                continue
            # An empty statement (a bare `;`, a comment) gives no result at all.
            if result is not None and result.description:
                columns = [column[0] for column in result.description]
                console.print(rich_table("", columns, result.fetchmany(1000)))
    finally:
        con.close()
