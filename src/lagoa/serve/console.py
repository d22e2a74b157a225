"""The read-only SQL console: one SELECT at a time over the warehouse, in a connection that cannot
reach outside the lake.

Two walls, so that neither alone has to be perfect:

- the statement: DuckDB's own parser must find exactly one ``SELECT`` (``WITH``, ``FROM``,
  ``DESCRIBE``, ``SHOW``, ``SUMMARIZE`` and ``VALUES`` are SELECTs to it), and its syntax tree
  must call none of the functions that reveal secrets or run SQL given as a string;
- the connection: a fresh in-memory reader of the warehouse (views over the lake, the warehouse
  file attached read-only, see ``engine/warehouse.py``) in which file and network access is then
  switched off except for the lake's own folder (``allowed_directories``), extension loading is
  off, and the configuration is locked, so no statement can turn any of it back on. A read of
  ``/etc/passwd`` or of an httpfs URL fails inside DuckDB with a permission error, which is
  reported as a refusal.

Each query has a time limit and returns one page of rows; :func:`stream_csv` streams every row.
"""

from __future__ import annotations

import csv
import io
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from lagoa.core.errors import QueryFailedError as QueryFailedError
from lagoa.core.errors import RefusedError as RefusedError
from lagoa.core.sql import quote_literal
from lagoa.engine.named import names

if TYPE_CHECKING:
    from lagoa.orchestrate.project import Project

QUERY_SECONDS = 30.0
"""A console query running longer is interrupted."""
PAGE_ROWS = 100
MAX_PAGE_ROWS = 1000
REFUSED_FUNCTIONS = {
    "duckdb_secrets": "it lists the connection's secrets",
    "which_secret": "it names the connection's secrets",
    "query": "it runs SQL given as a string",
    "query_table": "it reads tables named by a string",
    "getenv": "it reads the server's environment",
}
REFUSED_KINDS = {
    "COPY": "`COPY` reads or writes files; download results as CSV instead",
    "COPY_DATABASE": "`COPY FROM DATABASE` writes a database",
    "ATTACH": "`ATTACH` opens another database",
    "DETACH": "`DETACH` changes the attached databases",
    "LOAD": "`INSTALL` and `LOAD` add extensions",
    "SET": "`SET` and `RESET` change settings",
    "VARIABLE_SET": "`SET VARIABLE` changes settings",
    "PRAGMA": "`PRAGMA` changes settings",
    "CREATE": "`CREATE` (DDL) changes the warehouse",
    "CREATE_FUNC": "`CREATE MACRO` (DDL) changes the warehouse",
    "DROP": "`DROP` (DDL) changes the warehouse",
    "ALTER": "`ALTER` (DDL) changes the warehouse",
    "INSERT": "`INSERT` (DML) changes data",
    "UPDATE": "`UPDATE` (DML) changes data",
    "DELETE": "`DELETE` (DML) changes data",
    "MERGE_INTO": "`MERGE` (DML) changes data",
    "EXPORT": "`EXPORT DATABASE` writes files",
    "EXPLAIN": "`EXPLAIN` is not run by the console (`EXPLAIN ANALYZE` executes its statement)",
    "CALL": "`CALL` runs procedures",
    "TRANSACTION": "transactions are not needed to read",
    "UPDATE_EXTENSIONS": "extensions are not updated from the console",
}


PRAGMA = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*PRAGMA\b", re.IGNORECASE | re.DOTALL)
"""A statement starting with ``PRAGMA`` (after blanks and comments)."""
REFUSED_PRAGMA = (
    "`PRAGMA` statements change settings or are shortcuts for table functions: select from the "
    "function instead (`SELECT * FROM pragma_version()`)"
)
FILE_NAME = re.compile(r"[/\\:]|\.[A-Za-z0-9]{1,10}(?:\.(?:gz|zst|bz2|lz4))?\Z")
"""A table name DuckDB would read as a file (a path, a URL, ``x.csv``): ``FROM '/etc/passwd'``."""


@dataclass(frozen=True)
class Page:
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    page: int
    page_size: int
    more: bool
    """Whether rows follow this page."""


@dataclass(frozen=True)
class Checked:
    """A statement the console runs, and the lake's tables it reads."""

    text: str
    reads: frozenset[str] | None
    """``schema.table`` (lower case) of every table it names; None when that cannot be told (a
    SHOW, a look at the catalog, a statement DuckDB cannot serialise): then it sees them all."""


def check(sql: str) -> str:
    """The one SELECT of ``sql``, or :class:`RefusedError` saying why it is not run."""
    return checked(sql).text


def checked(sql: str) -> Checked:
    """:func:`check`, with the tables the statement reads."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryFailedError(_first_line(exc)) from None
    if not statements:
        raise QueryFailedError("nothing to run: the query is empty")
    if len(statements) > 1:
        raise RefusedError("the console runs one statement at a time")
    (statement,) = statements
    if PRAGMA.match(sql):
        # DuckDB rewrites the read-only pragmas (``PRAGMA version``) into SELECTs and the others
        # into SET or PRAGMA statements: none is run, whichever it is.
        raise RefusedError(REFUSED_PRAGMA)
    kind = statement.type.name
    if kind != "SELECT":
        raise RefusedError(REFUSED_KINDS.get(kind, f"`{kind}` statements are not run by the console"))
    text = statement.query.strip().rstrip(";").strip()
    functions, tables, reads = _called(text)
    for name in functions:
        if name.lower() in REFUSED_FUNCTIONS:
            raise RefusedError(f"`{name}` is not available in the console: {REFUSED_FUNCTIONS[name.lower()]}")
    for name in sorted(tables):
        if FILE_NAME.search(name):
            raise RefusedError(
                f"`FROM {quote_literal(name)}` reads a file by its path: the console reads the lake's "
                "tables by name (bronze.…, silver.…, gold.…, dbt's models in main.…)"
            )
    return Checked(text, reads)


def _called(sql: str) -> tuple[set[str], set[str], frozenset[str] | None]:
    """Every function and table function the statement calls, every table it names without a
    schema, and every ``schema.table`` it names (None when it may see tables it does not name)."""
    found = names(sql)
    if found is None:
        # DuckDB cannot serialise every statement (a PIVOT, say): judge it by its text instead.
        # A file named in FROM still cannot be read: the connection's external access is off.
        return {word for word in REFUSED_FUNCTIONS if word in sql.lower()}, set(), None
    return set(found.functions), set(found.bare), found.tables


class Console:
    """Runs checked statements on sandboxed readers of one project's warehouse."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def _reader(self, reads: frozenset[str] | None) -> duckdb.DuckDBPyConnection:
        """A sandboxed reader with views of the lake tables in ``reads`` (None: all of them):
        a view's creation reads its table's files, hundreds of them in a large lake."""
        project = self.project
        con = project.warehouse.reader(project.lake, warn=lambda _: None, only=reads)
        try:
            allowed = [project.storage.location("").rstrip("/") + "/"]
            con.execute(f"SET allowed_directories = [{', '.join(quote_literal(d) for d in allowed)}]")
            con.execute("SET enable_external_access = false")
            con.execute("SET autoinstall_known_extensions = false")
            con.execute("SET autoload_known_extensions = false")
            con.execute("SET lock_configuration = true")
        except BaseException:
            con.close()
            raise
        return con

    def page(self, sql: str, page: int = 0, page_size: int = PAGE_ROWS) -> Page:
        """One page of the statement's rows (``page`` counts from 0)."""
        statement = checked(sql)
        text = statement.text
        size = max(1, min(page_size, MAX_PAGE_ROWS))
        con = self._reader(statement.reads)
        try:
            paged = f"SELECT * FROM ({text}) AS console LIMIT {size + 1} OFFSET {max(page, 0) * size}"
            result = _run(con, paged)
            columns = [d[0] for d in result.description or []]
            types = [str(d[1]) for d in result.description or []]
            rows = [[json_cell(v) for v in row] for row in result.fetchall()]
        finally:
            con.close()
        return Page(columns, types, rows[:size], max(page, 0), size, len(rows) > size)

    def stream_csv(self, sql: str) -> Iterator[str]:
        """Every row of the statement as CSV, with a header; checked before the first byte."""
        statement = checked(sql)
        con = self._reader(statement.reads)
        result = _run(con, statement.text)

        def lines() -> Iterator[str]:
            try:
                buffer = io.StringIO()
                writer = csv.writer(buffer)
                writer.writerow([d[0] for d in result.description or []])
                while True:
                    batch = result.fetchmany(5000)
                    if not batch:
                        break
                    writer.writerows(batch)
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
                yield buffer.getvalue()
            finally:
                con.close()

        return lines()


def _run(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyConnection:
    timer = threading.Timer(QUERY_SECONDS, con.interrupt)
    timer.start()
    try:
        return con.execute(sql)
    except duckdb.PermissionException as exc:
        raise RefusedError(f"the query reads outside the lake: {_first_line(exc)}") from None
    except duckdb.InterruptException:
        raise QueryFailedError(f"the query ran longer than {QUERY_SECONDS:g}s and was stopped") from None
    except duckdb.Error as exc:
        raise QueryFailedError(_first_line(exc)) from None
    finally:
        timer.cancel()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def json_cell(value: Any) -> Any:
    """A cell as JSON holds it (the console's rows, the tables' previews and partitions)."""
    if value is None or isinstance(value, bool | int | float | str):
        if isinstance(value, float) and value != value:  # NaN
            return None
        return value
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
