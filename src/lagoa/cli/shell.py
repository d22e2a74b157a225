"""`lagoa shell`: a small SQL prompt on the warehouse (views refreshed on start)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from lagoa.cli.app import Session, project_command
from lagoa.cli.output import rich_table

if TYPE_CHECKING:
    from lagoa.orchestrate.project import Project


@project_command(with_json=False)
def shell(session: Session) -> None:
    """Interactive SQL on the warehouse. End statements with `;`, leave with `.quit` or Ctrl-D."""
    run_shell(session.project)


def run_shell(project: Project) -> None:
    import duckdb
    from rich.console import Console
    from rich.text import Text

    console = Console()
    con = project.warehouse.connect()
    project.warehouse.refresh(project.lake, con)
    console.print(
        f"lagoa shell on {project.warehouse.path} (DuckDB {duckdb.__version__}); end with `;`, .quit to leave",
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
                result = con.execute(statement)
            except duckdb.Error as exc:
                console.print(Text(str(exc), style="red"))
                continue
            # An empty statement (a bare `;`, a comment) gives no result at all.
            if result is not None and result.description:
                columns = [column[0] for column in result.description]
                console.print(rich_table("", columns, result.fetchmany(1000)))
    finally:
        con.close()
