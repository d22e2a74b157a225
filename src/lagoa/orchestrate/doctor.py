"""`lagoa doctor`: check a project's wiring and say what to fix."""

from __future__ import annotations

import glob
from typing import TYPE_CHECKING

from lagoa.core.config import (
    SECRET_PATTERN,
    HttpSource,
    PostgresSource,
    PythonSource,
    dsn_secrets,
    redact,
    resolve_secrets,
)
from lagoa.core.errors import LagoaError

if TYPE_CHECKING:
    from lagoa.workspace import Workspace

Check = tuple[str, bool, str]


def run_checks(workspace: Workspace) -> list[Check]:
    import duckdb

    from lagoa.engine.connection import EXTENSIONS, connect, extension_path

    checks: list[Check] = [
        ("project file", True, f"{workspace.root / 'lagoa.yml'} ({len(workspace.config.sources)} sources)")
    ]
    for name, source in workspace.config.sources.items():
        if isinstance(source, HttpSource):
            checks.append((f"source {name}", *_reachable(source)))
            continue
        if isinstance(source, PythonSource):
            checks.append((f"source {name}", *_importable(workspace, name, source)))
            continue
        if isinstance(source, PostgresSource):
            checks.append((f"source {name}", *_connects(source)))
            continue
        pattern = source.path if source.path.startswith("/") else str(workspace.root / source.path)
        matches = glob.glob(pattern, recursive=True)
        detail = (
            f"{len(matches)} file(s) match `{source.path}`" if matches else f"no file matches `{source.path}`"
        )
        checks.append((f"source {name}", bool(matches), detail))
    for extension in EXTENSIONS:
        try:
            checks.append((f"duckdb extension {extension}", True, str(extension_path(extension))))
        except LagoaError as exc:
            checks.append((f"duckdb extension {extension}", False, str(exc)))
    try:
        connect().close()
        checks.append(("duckdb", True, f"DuckDB {duckdb.__version__}, extensions load"))
    except LagoaError as exc:
        checks.append(("duckdb", False, str(exc)))
    try:
        tables = workspace.lake.identifiers()
        checks.append(("iceberg catalog", True, f"{workspace.config.catalog.uri} ({len(tables)} tables)"))
    except LagoaError as exc:
        checks.append(("iceberg catalog", False, str(exc)))
    try:
        views = workspace.warehouse.refresh(workspace.lake)
        checks.append(("warehouse", True, f"{workspace.warehouse.path} ({views} views)"))
    except LagoaError as exc:
        checks.append(("warehouse", False, str(exc)))
    return checks


def _reachable(source: HttpSource) -> tuple[bool, str]:
    """Whether the API's host accepts connections (no request is sent)."""
    import socket
    import urllib.parse

    url = urllib.parse.urlsplit(source.base_url)
    if SECRET_PATTERN.search(source.base_url) or not url.hostname:
        return True, "base_url is templated or a secret: not checked"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=3).close()
    except OSError as exc:
        return False, f"cannot connect to {url.hostname}:{port} ({exc.__class__.__name__})"
    return True, f"{url.hostname}:{port} accepts connections"


def _importable(workspace: Workspace, name: str, source: PythonSource) -> tuple[bool, str]:
    from lagoa.sources.python import load_function

    try:
        load_function(name, source, workspace.root)
    except LagoaError as exc:
        return False, exc.message
    return True, f"`{source.function}` imports"


def _connects(source: PostgresSource) -> tuple[bool, str]:
    import psycopg

    try:
        dsn = resolve_secrets(source.dsn)
    except LagoaError as exc:
        return False, exc.message
    try:
        with psycopg.connect(dsn, connect_timeout=3) as con:
            level = con.execute("SHOW server_version").fetchone()
    except psycopg.Error as exc:
        return False, f"cannot connect: {redact(str(exc).strip(), dsn_secrets(dsn))}"
    return True, f"PostgreSQL {level[0] if level else '?'}, {len(source.tables)} table(s)"
