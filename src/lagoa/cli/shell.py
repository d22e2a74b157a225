"""`lagoa shell`: a SQL prompt on the warehouse (views refreshed on start), read-only unless
``--write``: line editing and history on a terminal, dot commands, Ctrl-C that interrupts.

Statements and dot commands are read as chunks, one at a time: from the prompt (Enter runs a
chunk once it ends with `;` or starts with `.`) or from piped lines grouped the same way, so both
behave alike and a dot command never becomes part of a statement."""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from lagoa.cli.app import Session, project_command
from lagoa.cli.output import HumanOutput

if TYPE_CHECKING:
    import duckdb
    from prompt_toolkit.key_binding import KeyBindings

    from lagoa.orchestrate.project import Project

T = TypeVar("T")

SHOWN = 40
"""Rows shown per result, as `lagoa query` does; the rest are counted."""
PROMPT, CONTINUATION = "lagoa> ", "   ..> "
QUIT = (".quit", ".exit", "\\q")
HISTORY = Path(".lagoa") / "shell_history"
"""Where the statements typed at the prompt are kept, under the project's folder."""
SCHEMAS = ("bronze", "silver", "gold", "main")
"""The order `.tables` lists schemas in (any other comes after them)."""


@project_command(with_json=False)
@click.option("--write", is_flag=True, help="Open the warehouse for writing (CREATE, DROP, INSERT…).")
def shell(session: Session, write: bool) -> None:
    """Interactive SQL on the warehouse, read-only unless --write.

    End a statement with `;` (it may span lines). Dot commands: `.tables` lists the tables and
    views by schema, `.schema TABLE` shows a table's columns and types, `.help` lists the
    commands, `.quit` (or Ctrl-D) leaves. On a terminal the up arrow recalls earlier statements,
    kept in .lagoa/shell_history, and Ctrl-C clears the statement being typed or interrupts the
    running query. Piped, the statements are read from standard input without prompts.

    \b
    Examples:
      lagoa shell
      lagoa shell --write
      echo "select count(*) from silver.orders;" | lagoa shell
    """
    run_shell(session.project, write=write)


def run_shell(project: Project, *, write: bool = False) -> None:
    """The shell on ``project``'s warehouse until `.quit` or the end of the input."""
    import duckdb

    from lagoa.cli.lake import warn

    warehouse = project.warehouse
    con = warehouse.connect() if write else warehouse.reader(project.lake, warn=warn)
    try:
        if write:
            warehouse.refresh(project.lake, con, warn=warn)
        mode = "for writing" if write else "read-only (--write to change it)"
        click.echo(
            f"lagoa shell on {warehouse.path}, {mode} (DuckDB {duckdb.__version__}); "
            "end statements with `;`, .help lists the commands, .quit leaves"
        )
        shell = _Shell(con, write)
        # prompt_toolkit only where someone types and reads; piped, plain lines and no prompts.
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
        if interactive:
            # Ctrl-C interrupts a query even when the parent ignored SIGINT (a job started in the
            # background of a script inherits that, and Python then installs no handler of its own).
            signal.signal(signal.SIGINT, signal.default_int_handler)
        chunks = _prompted(project.root / HISTORY) if interactive else _piped(sys.stdin)
        for chunk in chunks:
            try:
                if not shell.run(chunk):
                    break
            except KeyboardInterrupt:  # while printing a result: the shell goes on
                shell.error("interrupted")
    finally:
        con.close()


def _is_command(text: str) -> bool:
    return text.lstrip().startswith((".", "\\"))


def _complete(text: str) -> bool:
    """Whether Enter runs ``text``: nothing, a dot command, or statements ending with `;`."""
    return not text.strip() or _is_command(text) or text.rstrip().endswith(";")


def _piped(lines: Iterable[str]) -> Iterator[str]:
    """Piped lines as chunks: a dot command alone on its line (only where no statement has
    begun), statements once a line ends with `;`, and what is left at the end of the input."""
    buffer: list[str] = []
    for line in lines:
        if not buffer and not line.strip():
            continue
        if not buffer and _is_command(line):
            yield line.strip()
            continue
        buffer.append(line.rstrip("\n"))
        if _complete(line):
            yield "\n".join(buffer)
            buffer.clear()
    if buffer:
        yield "\n".join(buffer)


def _prompted(history: Path) -> Iterator[str]:
    """What is typed at the prompt, a chunk at a time, until Ctrl-D."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory, History, InMemoryHistory

    kept: History
    try:
        history.parent.mkdir(parents=True, exist_ok=True)
        kept = FileHistory(str(history))
    except OSError:  # a project folder we cannot write to: history for this session only
        kept = InMemoryHistory()
    prompt: PromptSession[str] = PromptSession(
        history=kept, multiline=True, key_bindings=_enter_runs(), prompt_continuation=_continuation
    )
    while True:
        try:
            yield prompt.prompt(PROMPT)
        except KeyboardInterrupt:  # Ctrl-C: what was typed is dropped, a new prompt follows
            continue
        except EOFError:  # Ctrl-D on an empty line
            return


def _continuation(width: int, line: int, soft_wrap: int) -> str:
    """Before each line after the first: the continuation prompt, or a margin where a long line
    wraps (it goes on the same line of SQL)."""
    return " " * width if soft_wrap else CONTINUATION


def _enter_runs() -> KeyBindings:
    """Enter runs a complete chunk (see :func:`_complete`) and starts a new line otherwise, so
    a statement of several lines is one history entry that the up arrow recalls whole."""
    from prompt_toolkit.filters import is_searching
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

    bindings = KeyBindings()

    @bindings.add("enter", filter=~is_searching)
    def _enter(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if _complete(buffer.text):
            buffer.validate_and_handle()
        else:
            buffer.newline(copy_margin=False)

    return bindings


class _Shell:
    """One session's connection, and what it does with a chunk of input."""

    def __init__(self, con: duckdb.DuckDBPyConnection, write: bool) -> None:
        from rich.console import Console

        self.con = con
        self.write = write
        self.out = HumanOutput()
        self.console = Console()

    def error(self, text: str) -> None:
        from rich.text import Text

        self.console.print(Text(text, style="red"))

    def run(self, chunk: str) -> bool:
        """Run a dot command or statements; False when asked to leave."""
        if _is_command(chunk):
            words = chunk.strip().rstrip(";").split()
            name = words[0].lower()
            if name in QUIT:
                return False
            command = COMMANDS.get(name)
            if command is None:
                self.error(f"unknown command {words[0]} (try .help)")
            else:
                self._guarded(lambda: command.run(self, words[1:]))
        elif chunk.strip():
            self._guarded(lambda: self.statements(chunk))
        return True

    def _guarded(self, work: Callable[[], None]) -> None:
        """``work``, its errors said in red without a traceback: the shell goes on."""
        import duckdb

        from lagoa.core.errors import EngineError

        try:
            work()
        except duckdb.InterruptException:
            self.error("interrupted")
        except (EngineError, duckdb.Error) as exc:
            self.error(str(exc).strip())
        except Exception as exc:  # whatever a statement raises, the shell stays
            self.error(f"{type(exc).__name__}: {exc}")

    def statements(self, text: str) -> None:
        """Each statement of ``text`` in turn, with its first rows and how many more it has."""
        import duckdb

        from lagoa.engine.warehouse import refuse_writes

        if not self.write:
            refuse_writes(text)
        try:
            statements: list[duckdb.Statement | str] = list(duckdb.extract_statements(text))
        except duckdb.Error:  # a syntax error: executing it gives DuckDB's own words for it
            statements = [text]
        for statement in statements:
            shown = self.interruptible(functools.partial(_head, self.con, statement))
            # An empty statement (a comment) or one without rows (SET, …) shows nothing.
            if shown is None:
                continue
            columns, rows, more = shown
            self.out.query_rows(columns, rows)
            if more:
                click.echo(f"… {more:,} more row{'s' if more != 1 else ''} (`lagoa query --csv` prints all)")

    def interruptible(self, work: Callable[[], T]) -> T:
        """``work`` in a thread, so that Ctrl-C reaches this (the main) thread while DuckDB runs
        and interrupts the connection; DuckDB then raises its InterruptException."""
        from concurrent.futures import ThreadPoolExecutor
        from concurrent.futures import TimeoutError as Pending

        with ThreadPoolExecutor(1, thread_name_prefix="lagoa-shell") as pool:
            future = pool.submit(work)
            interrupted = False
            while True:
                try:
                    # Once interrupted, asked again until done: a Ctrl-C that came before DuckDB
                    # began the query would otherwise find nothing to interrupt.
                    return future.result(timeout=0.1 if interrupted else None)
                except KeyboardInterrupt:
                    interrupted = True
                    self.con.interrupt()
                except Pending:
                    self.con.interrupt()

    def tables(self, args: list[str]) -> None:
        rows = self.con.execute(
            "select table_schema, table_name, table_type from information_schema.tables"
            " where table_catalog = current_database() order by table_schema, table_name"
        ).fetchall()
        kinds = {"BASE TABLE": "table", "VIEW": "view", "LOCAL TEMPORARY": "temporary"}
        listed = sorted(
            ((schema, name, kinds.get(kind, kind.lower())) for schema, name, kind in rows),
            key=lambda r: (SCHEMAS.index(r[0]) if r[0] in SCHEMAS else len(SCHEMAS), r[0], r[1]),
        )
        if not listed:
            click.echo("no tables or views yet: `lagoa ingest` loads the sources")
            return
        self.out.table("", ["schema", "table", "kind"], listed)

    def schema(self, args: list[str]) -> None:
        if len(args) != 1:
            self.error("usage: .schema TABLE (e.g. .schema silver.orders)")
            return
        *schema, name = [part.strip('"').lower() for part in args[0].split(".", 1)]
        rows = self.con.execute(
            "select table_schema, column_name, data_type, is_nullable from information_schema.columns"
            " where table_catalog = current_database() and lower(table_name) = ?"
            " order by table_schema, ordinal_position",
            [name],
        ).fetchall()
        found = sorted({r[0] for r in rows if not schema or r[0].lower() == schema[0]})
        if not found:
            self.error(f"no table or view `{args[0]}` in the warehouse (.tables lists them)")
        elif len(found) > 1:
            self.error(f"`{name}` is in {', '.join(found)}: name one, e.g. .schema {found[0]}.{name}")
        else:
            columns = [(c, t, "yes" if n == "YES" else "no") for s, c, t, n in rows if s == found[0]]
            self.out.table(f"{found[0]}.{name}", ["column", "type", "nullable"], columns)

    def help(self, args: list[str]) -> None:
        click.echo("End a statement with `;`; it may span lines. Commands, alone on their line:")
        for name, command in COMMANDS.items():
            click.echo(f"  {command.usage or name:<18}{command.does}")
        click.echo(f"  {', '.join(QUIT):<18}leave (Ctrl-D too)")
        click.echo(f"On a terminal the up arrow recalls earlier statements (kept in {HISTORY}),")
        click.echo("Ctrl-C clears the statement being typed or interrupts the running query.")


def _head(
    con: duckdb.DuckDBPyConnection, statement: duckdb.Statement | str
) -> tuple[list[str], list[tuple[Any, ...]], int] | None:
    """The first SHOWN rows of ``statement`` and how many more it has (None: it gives none); the
    rest are counted as Arrow batches, never turned into Python values."""
    result = con.execute(statement)
    if result is None or not result.description:
        return None
    columns = [d[0] for d in result.description]
    rows: list[tuple[Any, ...]] = []
    total = 0
    for batch in result.to_arrow_reader(65_536):
        if len(rows) < SHOWN:
            part = batch.slice(0, SHOWN - len(rows))
            rows.extend(zip(*(part.column(i).to_pylist() for i in range(part.num_columns)), strict=True))
        total += batch.num_rows
    return columns, rows, total - len(rows)


@dataclass(frozen=True)
class _Command:
    does: str
    run: Callable[[_Shell, list[str]], None]
    usage: str = ""


COMMANDS = {
    ".tables": _Command("the tables and views, by schema", _Shell.tables),
    ".schema": _Command("a table's columns and types", _Shell.schema, ".schema TABLE"),
    ".help": _Command("this list", _Shell.help),
}
"""The dot commands besides those that leave (QUIT)."""
