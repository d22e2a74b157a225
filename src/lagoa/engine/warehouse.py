"""The warehouse: a DuckDB file whose bronze/silver/gold schemas hold views over the lake.

Each view reads the Iceberg table's current metadata file with ``iceberg_scan``. Views are
re-pointed after every commit and whenever the warehouse is opened for a query, so SQL always
sees the latest committed snapshot, never a half-written one.

Queries read without writing the file: an in-memory DuckDB gets fresh views over the lake and
attaches the warehouse read-only for the rest (dbt's models), so queries run side by side, in any
number of processes, and a run writing the warehouse never blocks them (while it holds the file,
they see the lake without dbt's models). Only ``write=True`` opens the file for writing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from lagoa.core.errors import EngineError
from lagoa.core.sql import quote_identifier, quote_literal
from lagoa.engine.connection import connect, extensions_settled
from lagoa.engine.named import reads_only
from lagoa.lake.catalog import NAMESPACES, Lake, local_path

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from lagoa.storage.s3 import S3Settings

log = logging.getLogger("lagoa.warehouse")

Warn = Callable[[str], None]
"""Told what could not be done, as one line with its fix; the work goes on."""

READS = frozenset(
    {
        duckdb.StatementType.SELECT,
        duckdb.StatementType.EXPLAIN,
        duckdb.StatementType.PRAGMA,
        duckdb.StatementType.CALL,
        duckdb.StatementType.SET,
        duckdb.StatementType.COPY,
    }
)
"""Statements a read-only query may run (COPY … TO exports; COPY … FROM has no table to fill)."""

WAREHOUSE_WAIT = 1800.0
"""Seconds a task waits for its turn at the warehouse (another task's dbt build, say) before failing."""

_LOCKS: dict[Path, _Turns] = {}
_LOCKS_GUARD = threading.Lock()


class _Turns:
    """A re-entrant lock whose wait is bounded: past :data:`WAREHOUSE_WAIT` it raises an
    EngineError rather than waiting for ever."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=WAREHOUSE_WAIT):
            raise EngineError(
                f"waited {WAREHOUSE_WAIT:g}s for the warehouse {self.path}, held by another task of this process",
                hint="a dbt build or publish of this process is stuck; stop it and run again",
            )

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def warehouse_lock(path: Path) -> _Turns:
    """One lock per warehouse file in this process. DuckDB shares one database between the
    connections of a process, so concurrent writers (view refreshes, dbt, publishes reading it)
    would conflict; tasks running in parallel take turns at the warehouse instead. Work done
    holding it may load extensions (see engine/connection.py), never the other way round."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(path.resolve(), _Turns(path))


@dataclass(frozen=True)
class _View:
    namespace: str
    name: str
    body: str

    @property
    def sql_name(self) -> str:
        return f"{quote_identifier(self.namespace)}.{quote_identifier(self.name)}"

    @property
    def key(self) -> str:
        """``schema.table``, in lower case, as :func:`~lagoa.engine.named.reads_only` names it."""
        return f"{self.namespace}.{self.name}".lower()


VIEWS_FORMAT = "1"
"""Changes when Lagoa writes a table's view differently: remembered views are then made again."""


def _key(views: list[_View]) -> str:
    """What a set of views is: their names and definitions (as this version of Lagoa writes them)."""
    digest = hashlib.sha256(f"views {VIEWS_FORMAT}\n".encode())
    for view in sorted(views, key=lambda v: (v.namespace, v.name)):
        digest.update(f"{view.namespace}.{view.name}\n{view.body}\n".encode())
    return digest.hexdigest()


class Warehouse:
    """The project's DuckDB warehouse file."""

    def __init__(
        self,
        path: Path,
        datasets: Callable[[], dict[str, str]] | None = None,
        s3: S3Settings | None = None,
    ) -> None:
        self.path = path
        self.datasets = datasets
        """Views over published Parquet datasets: ``gold.<name>`` → the SQL reading the dataset."""
        self.s3 = s3
        """How the views reach the lake when it is on S3."""
        self._bodies: dict[str, str] = {}
        """The view of each table by its metadata location, as last read."""

    def connect(self, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        con = connect(self.path, read_only=read_only, s3=self.s3)
        if created:
            self._new_generation()
        return con

    @property
    def _generation_file(self) -> Path:
        return self.path.with_name(f"{self.path.name}.generation")

    def _new_generation(self) -> str:
        token = uuid.uuid4().hex
        self._generation_file.write_text(token, encoding="utf-8")
        return token

    def generation(self) -> str:
        """Which warehouse file this is: a token made with the file, so that one deleted and made
        again (a file system may give it the same inode) is told apart from the one before it.
        What was built into the old file is not in the new one."""
        try:
            return self._generation_file.read_text(encoding="utf-8").strip()
        except OSError:
            return self._new_generation() if self.path.exists() else "none"

    def memory(self) -> duckdb.DuckDBPyConnection:
        """An in-memory connection that reads what the warehouse's views read."""
        return connect(s3=self.s3)

    def refresh(
        self, lake: Lake, con: duckdb.DuckDBPyConnection | None = None, *, warn: Warn | None = None
    ) -> int:
        """Point every view of the warehouse file at its table's current snapshot; returns the
        number of views. A view that cannot be replaced (a table of the same name was created in
        the warehouse) is left as it is and ``warn`` is told how to fix it; the others refresh."""
        with warehouse_lock(self.path):
            views = self._views(lake)
            key = _key(views)
            if con is None and self._refreshed() == key:
                return len(views)  # the file's views are these already: no connection to open
            own = con is None
            con = con or self.connect()
            told: list[str] = []

            def tell(text: str) -> None:
                told.append(text)
                (warn or log.warning)(text)

            try:
                count = self._point(con, views, tell, drop_stale=True)
            finally:
                if own:
                    con.close()
            if own and not told:  # a view left stale is tried (and told) again the next time
                self._remember(key)
            return count

    @property
    def _marker(self) -> Path:
        return self.path.with_name(f"{self.path.name}.views.json")

    def _refreshed(self) -> str | None:
        """The key of the views this file was last refreshed to, if nothing wrote the file since
        (dbt, a `--write` session: they might have dropped or replaced one)."""
        try:
            marker = json.loads(self._marker.read_text(encoding="utf-8"))
            stat = self.path.stat()
        except (OSError, ValueError):
            return None
        if not isinstance(marker, dict) or marker.get("file") != [
            stat.st_ino,
            stat.st_size,
            stat.st_mtime_ns,
        ]:
            return None
        key = marker.get("views")
        return key if isinstance(key, str) else None

    def _remember(self, key: str) -> None:
        """The file's views are ``key``'s now, and the view of each table's metadata location."""
        try:
            stat = self.path.stat()
            marker = {
                "views": key,
                "format": VIEWS_FORMAT,
                "file": [stat.st_ino, stat.st_size, stat.st_mtime_ns],
                "bodies": self._bodies,
            }
            temporary = self._marker.with_name(f"{self._marker.name}.{uuid.uuid4().hex}.tmp")
            temporary.write_text(json.dumps(marker), encoding="utf-8")
            temporary.replace(self._marker)
        except OSError:  # not remembering costs a refresh, nothing else
            pass

    def _remembered_bodies(self) -> dict[str, str]:
        try:
            marker = json.loads(self._marker.read_text(encoding="utf-8"))
            bodies = marker.get("bodies") if marker.get("format") == VIEWS_FORMAT else None
        except (OSError, ValueError, AttributeError):
            return {}
        return {str(k): str(v) for k, v in bodies.items()} if isinstance(bodies, dict) else {}

    def query(
        self, lake: Lake, sql: str, *, write: bool = False, warn: Warn | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run SQL against fresh views; returns column names and rows. Without ``write`` the
        warehouse file is only read (see the module's docstring) and statements that would
        change it are refused."""
        with self._executed(lake, sql, write, warn) as result:
            if result is None or result.description is None:
                return [], []
            return [d[0] for d in result.description], result.fetchall()

    def head(
        self, lake: Lake, sql: str, limit: int, *, warn: Warn | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]], int]:
        """The first ``limit`` rows of a read-only query, and how many rows it has in all. A
        query with more rows than that runs again to count them, as Arrow batches never turned
        into Python values (a query with ``random()`` or a sample may count a different draw)."""
        with self._executed(lake, sql, False, warn) as result:
            if result is None or result.description is None:
                return [], [], 0
            columns = [d[0] for d in result.description]
            try:
                rows = result.fetchmany(limit + 1)
                if len(rows) <= limit:  # all of it: no second run, and no pyarrow to import
                    return columns, rows, len(rows)
                # DuckDB loses rows when one result is read both ways: count on a second result.
                total = sum(batch.num_rows for batch in result.execute(sql).to_arrow_reader(65_536))
            except duckdb.Error as exc:
                raise EngineError(f"query failed: {str(exc).strip()}") from None
            return columns, rows[:limit], total

    @contextmanager
    def _executed(
        self, lake: Lake, sql: str, write: bool, warn: Warn | None
    ) -> Iterator[duckdb.DuckDBPyConnection | None]:
        warn = warn or log.warning
        if not write:
            refuse_writes(sql)
        # A read makes views of the lake tables it names, when it names only those.
        only = None if write else reads_only(sql, NAMESPACES)
        with warehouse_lock(self.path):
            con = self.connect() if write else self.reader(lake, warn=warn, only=only)
            try:
                if write:
                    self.refresh(lake, con, warn=warn)
                try:
                    result = con.execute(sql)
                except duckdb.Error as exc:
                    raise EngineError(f"query failed: {str(exc).strip()}") from None
                yield result
            finally:
                con.close()

    def reader(
        self, lake: Lake, *, warn: Warn | None = None, only: Collection[str] | None = None
    ) -> duckdb.DuckDBPyConnection:
        """An in-memory connection for reading: fresh views over the lake in bronze, silver and
        gold (``only`` those named ``schema.table``, in lower case, when given), and a view of
        every other object of the warehouse file (attached read-only as ``warehouse``: dbt's
        models in ``main``, say). If another process is writing the file, it is left out and
        ``warn`` says so."""
        warn = warn or log.warning
        con = self.memory()
        try:
            views = self._views(lake, only)
            if self._attach(con, warn):
                mirrored = self._mirrored(con, {(v.namespace, v.name) for v in views}, warn)
                views += [v for v in mirrored if only is None or v.key in only]
            self._point(con, views, warn, drop_stale=False)
            return con
        except BaseException:
            con.close()
            raise

    def _views(self, lake: Lake, only: Collection[str] | None = None) -> list[_View]:
        """Lagoa's views: one per lake table (its current snapshot), one per published dataset
        (``only`` those named ``schema.table``, in lower case, when given). A table is loaded
        from the catalog only when its metadata location changed since the last call (a server
        answers many queries; a lake may hold hundreds of tables)."""
        views = []
        bodies: dict[str, str] = {}
        known = self._bodies or self._remembered_bodies()  # a view depends on its location only
        for identifier, location in sorted(lake.metadata_locations().items()):
            if only is not None and identifier.lower() not in only:
                if location in known:
                    bodies[location] = known[location]  # still known for the next call
                continue
            body = known.get(location) if location else None
            if body is None:
                table = lake.table(identifier)
                if table is None:
                    continue
                body, location = _body(table), table.metadata_location
            if location:
                bodies[location] = body
            namespace, name = identifier.split(".", 1)
            views.append(_View(namespace, name, body))
        self._bodies = bodies
        for identifier, body in (self.datasets() if self.datasets else {}).items():
            if only is not None and identifier.lower() not in only:
                continue
            namespace, name = identifier.split(".", 1)
            views.append(_View(namespace, name, body))
        return views

    def _attach(self, con: duckdb.DuckDBPyConnection, warn: Warn) -> bool:
        if not self.path.exists():
            return False
        try:
            con.execute(f"ATTACH {quote_literal(str(self.path))} AS warehouse (READ_ONLY)")
            return True
        except duckdb.Error:
            warn(
                f"the warehouse {self.path} is being written by another process (a run, dbt, or a "
                "`--write` session), so only the lake's tables can be queried now, not dbt's models: "
                "try again when it is done"
            )
            return False

    def _mirrored(
        self, con: duckdb.DuckDBPyConnection, lagoa: set[tuple[str, str]], warn: Warn
    ) -> list[_View]:
        """Views of the attached warehouse's own objects, except Lagoa's views over the lake."""
        objects = con.execute(
            "SELECT schema_name, table_name, 'table' FROM duckdb_tables() WHERE database_name = 'warehouse' "
            "UNION ALL SELECT schema_name, view_name, 'view' FROM duckdb_views() "
            "WHERE database_name = 'warehouse' AND NOT internal"
        ).fetchall()
        views = []
        for namespace, name, kind in objects:
            if namespace in NAMESPACES and kind == "view":
                continue  # Lagoa's own view (fresh above), or one over a table dropped since
            if (namespace, name) in lagoa:
                warn(_collision(namespace, name, kind))
                continue
            source = f"warehouse.{quote_identifier(namespace)}.{quote_identifier(name)}"
            views.append(_View(namespace, name, f"SELECT * FROM {source}"))
        return views

    def _point(
        self, con: duckdb.DuckDBPyConnection, views: list[_View], warn: Warn, *, drop_stale: bool
    ) -> int:
        with extensions_settled():
            return self._point_views(con, views, warn, drop_stale=drop_stale)

    def _point_views(
        self, con: duckdb.DuckDBPyConnection, views: list[_View], warn: Warn, *, drop_stale: bool
    ) -> int:
        """Create or replace ``views``; with ``drop_stale``, drop Lagoa's views whose table is
        gone. A view hidden by a table of the same name is skipped (told to ``warn``); the rest
        switch in one transaction, or, if that fails, one by one, so that a view that cannot be
        replaced leaves the others fresh."""
        try:
            for namespace in sorted({*NAMESPACES[1:], *(v.namespace for v in views)}):
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(namespace)}")
            tables = set(
                con.execute(
                    "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()"
                ).fetchall()
            )
            for view in views:
                if (view.namespace, view.name) in tables:
                    warn(_collision(view.namespace, view.name, "table"))
            todo = [v for v in views if (v.namespace, v.name) not in tables]
            try:
                con.execute("BEGIN")
                count = self._replace(con, todo, None)
                if drop_stale:
                    self._drop_stale(con, views)
                con.execute("COMMIT")
                return count
            except duckdb.Error:
                con.execute("ROLLBACK")
            count = self._replace(con, todo, warn)
            if drop_stale:
                self._drop_stale(con, views)
            return count
        except duckdb.Error as exc:
            raise EngineError(f"cannot refresh warehouse views in {self.path}: {exc}") from None

    def _replace(self, con: duckdb.DuckDBPyConnection, views: list[_View], warn: Warn | None) -> int:
        """Create or replace each view; without ``warn`` the first failure raises."""
        count = 0
        for view in views:
            try:
                con.execute(f"CREATE OR REPLACE VIEW {view.sql_name} AS {view.body}")
                count += 1
            except duckdb.Error as exc:
                if warn is None:
                    raise
                warn(f"view {view.namespace}.{view.name} not refreshed: {str(exc).splitlines()[0]}")
        return count

    def _drop_stale(self, con: duckdb.DuckDBPyConnection, views: list[_View]) -> None:
        wanted = {(v.namespace, v.name) for v in views}
        for namespace, name in con.execute(
            "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal AND database_name = current_database()"
        ).fetchall():
            if namespace in NAMESPACES and (namespace, name) not in wanted:
                con.execute(f"DROP VIEW {quote_identifier(namespace)}.{quote_identifier(name)}")


def _body(table: Table) -> str:
    """The SQL of a table's view: its current snapshot, or no rows of its columns before any."""
    if table.current_snapshot() is None:
        from lagoa.lake.schema import duckdb_type, type_name  # pyiceberg's types: only here

        columns = ", ".join(
            f"CAST(NULL AS {duckdb_type(type_name(f.field_type))}) AS {quote_identifier(f.name)}"
            for f in table.schema().fields
        )
        return f"SELECT {columns} WHERE false"
    return f"SELECT * FROM iceberg_scan({quote_literal(local_path(table.metadata_location))})"


def _collision(namespace: str, name: str, kind: str) -> str:
    drop = "TABLE" if kind == "table" else "VIEW"
    return (
        f"{namespace}.{name} in the warehouse is a {kind} of its own, not Lagoa's view over the lake "
        f"table {namespace}.{name}, which it hides: drop it with "
        f'`lagoa query --write "DROP {drop} {namespace}.{name}"`'
    )


def refuse_writes(sql: str) -> None:
    """Raise unless every statement of ``sql`` only reads (see READS)."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise EngineError(f"query failed: {str(exc).strip()}") from None
    writes = [s for s in statements if s.type not in READS]
    if writes:
        kind = writes[0].type.name
        raise EngineError(
            f"`{kind}` would change the warehouse, which queries only read",
            hint="pass --write (`lagoa query --write`, `lagoa shell --write`) to change it",
        )
