"""DuckDB connections with the extensions Lagoa needs, installed from their PyPI packages.

Extensions are never downloaded: the ``duckdb-extension-<name>`` packages ship the binaries, and
many users' machines (and CI) cannot reach DuckDB's extension repository anyway.

Loading an extension from several threads at once is not safe in DuckDB (concurrent loads fail
with "function already exists", duckdb-java#202; its maintainers advise loading once,
duckdb-mysql#89), and a load waits inside DuckDB for any other load of the same extension into the
same database. Lagoa's tasks open connections in parallel, so a process installs each extension
once and loads extensions one connection at a time, under one lock. A warehouse view refresh
holds it too (:func:`extensions_settled`): a load beside a refresh binding ``iceberg_scan`` was
seen to hang both. No other lock is taken while holding it, so it cannot take part in a lock
cycle, and a wait for it that passes :data:`LOAD_WAIT` fails with an error instead of hanging.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from lagoa.core.errors import EngineError
from lagoa.core.sql import quote_literal

if TYPE_CHECKING:
    from lagoa.storage.s3 import S3Settings

# iceberg reads manifests with avro, so avro loads first.
EXTENSIONS = ("avro", "iceberg")
S3_EXTENSIONS = ("httpfs", "aws")
"""For a lake on S3: httpfs reads and writes ``s3://``; aws gives its secret the AWS credential chain."""
LOAD_WAIT = 300.0
"""Seconds a connection waits for another thread's extension load before failing."""

_LOADING = threading.RLock()
_INSTALLED: set[str] = set()


@contextmanager
def extensions_settled() -> Iterator[None]:
    """Hold off extension loads in this process while the block binds SQL that calls extension
    functions (a warehouse view refresh: ``iceberg_scan`` reads metadata when a view is
    created). A LOAD in one thread and such a bind in another were seen to hang each other
    inside DuckDB under load; taking turns costs milliseconds."""
    if not _LOADING.acquire(timeout=LOAD_WAIT):
        raise EngineError(
            f"waited {LOAD_WAIT:g}s for another thread to load DuckDB extensions",
            hint="a DuckDB extension load is stuck in this process; stop it and run the command again",
        )
    try:
        yield
    finally:
        _LOADING.release()


def installed(extensions: tuple[str, ...] = EXTENSIONS) -> None:
    """Install ``extensions`` into DuckDB's extension folder, once per process, without loading
    them (another process loads them: dbt-duckdb; loading avro and iceberg costs 0.2–0.5 s)."""
    missing = [name for name in extensions if name not in _INSTALLED]
    if not missing:
        return
    paths = [extension_path(name) for name in missing]  # a missing or mismatched package says so
    with extensions_settled():
        con = duckdb.connect(config={"autoinstall_known_extensions": False})
        try:
            for name, path in zip(missing, paths, strict=True):
                con.execute(f"INSTALL {quote_literal(str(path))}")
                _INSTALLED.add(name)
        finally:
            con.close()


def extension_path(name: str) -> Path:
    """The extension binary shipped by ``duckdb-extension-<name>`` for this DuckDB version."""
    try:
        module = importlib.import_module(f"duckdb_extension_{name}")
    except ImportError:
        raise EngineError(
            f"DuckDB extension `{name}` is not installed",
            hint=f"pip install 'duckdb-extension-{name}=={duckdb.__version__}'",
        ) from None
    folder = Path(module.__file__ or "").parent / "extensions" / f"v{duckdb.__version__}"
    binary = folder / f"{name}.duckdb_extension"
    if not binary.exists():
        shipped = sorted(p.name for p in (Path(module.__file__ or "").parent / "extensions").glob("v*"))
        raise EngineError(
            f"DuckDB extension `{name}` does not match DuckDB {duckdb.__version__} (package ships {shipped})",
            hint=f"pip install 'duckdb-extension-{name}=={duckdb.__version__}'",
        )
    return binary


def connect(
    database: str | Path = ":memory:",
    *,
    read_only: bool = False,
    extensions: tuple[str, ...] = EXTENSIONS,
    s3: S3Settings | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the given extensions (by default Lagoa's: avro, iceberg) loaded;
    with ``s3``, one that also reads and writes the lake's bucket."""
    if s3 is not None:
        extensions = (*extensions, *S3_EXTENSIONS)
    try:
        con = duckdb.connect(
            str(database), read_only=read_only, config={"autoinstall_known_extensions": False}
        )
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise EngineError(
                f"warehouse {database} is open in another process",
                hint="close the other `lagoa shell` or DuckDB session, then try again",
            ) from None
        raise EngineError(f"cannot open DuckDB database {database}: {exc}") from None
    try:
        _load(con, extensions)
        if s3 is not None:
            con.execute(s3.duckdb_secret())
    except duckdb.Error as exc:
        con.close()
        raise EngineError(
            f"DuckDB cannot reach S3: {str(exc).splitlines()[0]}",
            hint="check the AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, a role) and storage.region",
        ) from None
    except BaseException:
        con.close()
        raise
    return con


def _load(con: duckdb.DuckDBPyConnection, extensions: tuple[str, ...]) -> None:
    """Install (once per process) and load ``extensions`` into ``con``, one thread at a time."""
    if not extensions:
        return
    if not _LOADING.acquire(timeout=LOAD_WAIT):
        raise EngineError(
            f"waited {LOAD_WAIT:g}s for another thread to load DuckDB extensions",
            hint="a DuckDB extension load is stuck in this process; stop it and run the command again",
        )
    try:
        for name in extensions:
            path = extension_path(name)
            try:
                if name not in _INSTALLED:
                    con.execute(f"INSTALL {quote_literal(str(path))}")
                    _INSTALLED.add(name)
                con.execute(f"LOAD {name}")
            except duckdb.Error as exc:
                raise EngineError(f"cannot load DuckDB extension `{name}` from {path}: {exc}") from None
    finally:
        _LOADING.release()
