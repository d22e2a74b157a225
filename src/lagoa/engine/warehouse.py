"""The warehouse: a DuckDB file whose bronze/silver/gold schemas hold views over the lake.

Each view reads the Iceberg table's current metadata file with ``iceberg_scan``. Views are
re-pointed after every commit and whenever the warehouse is opened for a query, so SQL always
sees the latest committed snapshot, never a half-written one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from lagoa.core.errors import EngineError
from lagoa.core.sql import quote_identifier, quote_literal
from lagoa.engine.connection import connect
from lagoa.lake.catalog import NAMESPACES, Lake, local_path
from lagoa.lake.schema import duckdb_type, type_name

_LOCKS: dict[Path, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def warehouse_lock(path: Path) -> threading.RLock:
    """One lock per warehouse file in this process. DuckDB shares one database between the
    connections of a process, so concurrent writers (view refreshes, dbt, publishes reading it)
    would conflict; tasks running in parallel take turns at the warehouse instead."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(path.resolve(), threading.RLock())


class Warehouse:
    """The project's DuckDB warehouse file."""

    def __init__(self, path: Path, datasets: Callable[[], dict[str, str]] | None = None) -> None:
        self.path = path
        self.datasets = datasets
        """Views over published Parquet datasets: ``gold.<name>`` → the SQL reading the dataset."""

    def connect(self, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return connect(self.path, read_only=read_only)

    def refresh(self, lake: Lake, con: duckdb.DuckDBPyConnection | None = None) -> int:
        """Point every view at its table's current snapshot; returns the number of views."""
        with warehouse_lock(self.path):
            return self._refresh(lake, con)

    def _refresh(self, lake: Lake, con: duckdb.DuckDBPyConnection | None) -> int:
        own = con is None
        con = con or self.connect()
        try:
            count = 0
            con.execute("BEGIN")
            for namespace in NAMESPACES[1:]:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {namespace}")
            wanted = set()
            for identifier in lake.identifiers():
                table = lake.table(identifier)
                if table is None:
                    continue
                namespace, name = identifier.split(".", 1)
                wanted.add((namespace, name))
                view = f"{quote_identifier(namespace)}.{quote_identifier(name)}"
                if table.current_snapshot() is None:
                    columns = ", ".join(
                        f"CAST(NULL AS {duckdb_type(type_name(f.field_type))}) AS {quote_identifier(f.name)}"
                        for f in table.schema().fields
                    )
                    body = f"SELECT {columns} WHERE false"
                else:
                    body = f"SELECT * FROM iceberg_scan({quote_literal(local_path(table.metadata_location))})"
                con.execute(f"CREATE OR REPLACE VIEW {view} AS {body}")
                count += 1
            for identifier, body in (self.datasets() if self.datasets else {}).items():
                namespace, name = identifier.split(".", 1)
                wanted.add((namespace, name))
                con.execute(
                    f"CREATE OR REPLACE VIEW {quote_identifier(namespace)}.{quote_identifier(name)} AS {body}"
                )
                count += 1
            for namespace, name in con.execute(
                "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal AND database_name = current_database()"
            ).fetchall():
                if namespace in NAMESPACES and (namespace, name) not in wanted:
                    con.execute(f"DROP VIEW {quote_identifier(namespace)}.{quote_identifier(name)}")
            con.execute("COMMIT")
            return count
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise EngineError(f"cannot refresh warehouse views in {self.path}: {exc}") from None
        finally:
            if own:
                con.close()

    def query(self, lake: Lake, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run SQL against fresh views; returns column names and rows."""
        with warehouse_lock(self.path):
            return self._query(lake, sql)

    def _query(self, lake: Lake, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        con = self.connect()
        try:
            self.refresh(lake, con)
            try:
                result = con.execute(sql)
            except duckdb.Error as exc:
                raise EngineError(f"query failed: {str(exc).strip()}") from None
            if result.description is None:
                return [], []
            return [d[0] for d in result.description], result.fetchall()
        finally:
            con.close()
