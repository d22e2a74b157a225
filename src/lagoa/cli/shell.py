"""`lagoa shell`: a small SQL prompt on the warehouse (views refreshed on start)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from lagoa.cli.app import Session, project_command

if TYPE_CHECKING:
    from lagoa.orchestrate.project import Project


@project_command(with_json=False)
def shell(session: Session) -> None:
    """Interactive SQL on the warehouse. End statements with `;`, leave with `.quit` or Ctrl-D."""
    run_shell(session.project)


def run_shell(project: Project) -> None:
    import duckdb
    from rich.console import Console
    from rich.table import Table

    console = Console()
    con = project.warehouse.connect()
    project.warehouse.refresh(project.lake, con)
    console.print(
        f"lagoa shell on {project.warehouse.path} (DuckDB {duckdb.__version__}); end with `;`, .quit to leave"
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
                console.print(f"[red]{exc}[/red]")
                continue
            if result.description:
                table = Table()
                for column in result.description:
                    table.add_column(column[0])
                for row in result.fetchmany(1000):
                    table.add_row(*["" if v is None else str(v) for v in row])
                console.print(table)
    finally:
        con.close()
