"""`lagoa doctor`: check a project's wiring and say what to fix."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lagoa.core.config import (
    SECRET_PATTERN,
    HttpSource,
    PostgresSource,
    PythonSource,
    dsn_secrets,
    redact,
    resolve_secrets,
    secret_value,
)
from lagoa.core.errors import LagoaError, SecretError

if TYPE_CHECKING:
    from lagoa.workspace import Workspace

Check = tuple[str, bool, str]


def run_checks(workspace: Workspace) -> list[Check]:
    import duckdb

    from lagoa.engine.connection import EXTENSIONS, S3_EXTENSIONS, connect, extension_path
    from lagoa.lake.identity import LAKE_ID

    checks: list[Check] = [("project file", True, f"lagoa.yml ({len(workspace.config.sources)} sources)")]
    for name, source in workspace.config.sources.items():
        if isinstance(source, HttpSource):
            checks.append((f"source {name}", *_reachable(source)))
            continue
        if isinstance(source, PythonSource):
            checks.append((f"source {name}", *_importable(workspace, name, source)))
            continue
        if isinstance(source, PostgresSource):
            checks.append((f"source {name}", *_connects(source)))
            if source.mode == "cdc":
                checks.append((f"source {name} replication", *_replicates(source)))
            continue
        from lagoa.sources.files import matching

        matches = matching(source.path, workspace.root)
        detail = (
            f"{len(matches)} file(s) match `{source.path}`" if matches else f"no file matches `{source.path}`"
        )
        checks.append((f"source {name}", bool(matches), detail))
    s3 = workspace.storage.s3
    for extension in (*EXTENSIONS, *(S3_EXTENSIONS if s3 else ())):
        try:
            checks.append((f"duckdb extension {extension}", True, _extension(extension_path(extension))))
        except LagoaError as exc:
            checks.append((f"duckdb extension {extension}", False, str(exc)))
    try:
        connect(s3=s3).close()
        checks.append(("duckdb", True, f"DuckDB {duckdb.__version__}, extensions load"))
    except LagoaError as exc:
        checks.append(("duckdb", False, str(exc)))
    try:
        workspace.storage.read_bytes(LAKE_ID)  # reads one small object: the store answers
        checks.append(("storage", True, _within(workspace, workspace.storage.warehouse)))
    except LagoaError as exc:
        checks.append(("storage", False, str(exc)))
    try:
        tables = workspace.lake.identifiers()
        checks.append(
            (
                "iceberg catalog",
                True,
                f"{workspace.redactor.text(workspace.config.catalog.uri)} ({len(tables)} tables)",
            )
        )
    except LagoaError as exc:
        checks.append(("iceberg catalog", False, str(exc)))
    try:
        views = workspace.warehouse.refresh(workspace.lake)
        checks.append(("warehouse", True, f"{_within(workspace, workspace.warehouse.path)} ({views} views)"))
    except LagoaError as exc:
        checks.append(("warehouse", False, str(exc)))
    checks += [_suites(workspace), _dbt_project(workspace), *_secrets(workspace)]
    return checks


def _within(workspace: Workspace, path: str | Path) -> str:
    """``path`` as the project names it: from its folder when inside it (paths fit a terminal)."""
    given = Path(path)
    return str(given.relative_to(workspace.root)) if given.is_relative_to(workspace.root) else str(path)


def _extension(path: Path) -> str:
    """An extension's version and the package it comes from (``v1.5.5, duckdb_extension_avro``)."""
    parts = path.parts
    package = next((part for part in reversed(parts) if part.startswith("duckdb_extension")), None)
    return f"{path.parent.name}, from {package}" if package else str(path)


def _suites(workspace: Workspace) -> Check:
    """Every suite parses, its lagoa.yml settings name real suites and expectations, and the
    columns it names are its source's: what a run checks before it lands anything."""
    from lagoa.quality.suite import project_suites

    try:
        suites = project_suites(workspace.root, workspace.config)
    except LagoaError as exc:
        return ("suites", False, str(exc))
    count = sum(len(s.expectations) for s in suites)
    return (
        "suites",
        True,
        f"{len(suites)} suite(s), {count} expectation(s) in {workspace.config.quality.path}/",
    )


def _dbt_project(workspace: Workspace) -> Check:
    """The dbt project parses, names the profile Lagoa writes, and has its model folders; dbt
    itself is not run (`dbt parse` takes seconds). No dbt folder is fine unless lagoa.yml names one."""
    import yaml

    setting = workspace.config.dbt.project
    folder = workspace.root / setting
    file = folder / "dbt_project.yml"
    shown = _within(workspace, file)
    if not file.is_file():
        if "project" in workspace.config.dbt.model_fields_set or folder.exists():
            return ("dbt project", False, f"no dbt_project.yml in {folder}: set `dbt.project` to its folder")
        return ("dbt project", True, f"none ({setting}/ does not exist): no models to transform")
    try:
        data: Any = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return ("dbt project", False, f"{shown} cannot be read as YAML: {str(exc).splitlines()[0]}")
    if not isinstance(data, dict):
        return ("dbt project", False, f"{shown} is not a mapping of settings")
    profile = data.get("profile")
    if not isinstance(profile, str) or not profile:  # Lagoa then tells dbt the profile it writes
        profile = data.get("name")
        if not isinstance(profile, str) or not profile:
            return ("dbt project", False, f"{shown} names neither `profile:` nor `name:`; dbt needs one")
    paths = data.get("model-paths") or ["models"]
    missing = [p for p in paths if not isinstance(p, str) or not (folder / p).is_dir()]
    if missing:
        return (
            "dbt project",
            False,
            f"model folder `{missing[0]}` not found in {_within(workspace, folder)} (model-paths in dbt_project.yml)",
        )
    return (
        "dbt project",
        True,
        f"{shown}: profile `{profile}` (Lagoa writes it), models in {', '.join(paths)}",
    )


def _secrets(workspace: Workspace) -> list[Check]:
    """Each secret the project file refers to can be had (an environment variable is set, a
    Secrets Manager secret can be read); only names are shown, never values."""
    found = {
        m.group(0): m
        for text in _strings(workspace.config.model_dump())
        for m in SECRET_PATTERN.finditer(text)
    }
    checks: list[Check] = []
    for reference in sorted(found):
        match = found[reference]
        if match.group(1) == "env":
            name = match.group(2)
            checks.append(
                (f"secret {name}", True, "set")
                if name in os.environ
                else (f"secret {name}", False, f"not set: `export {name}=...` before running lagoa")
            )
            continue
        shown = reference.removeprefix("${").removesuffix("}")
        try:
            secret_value(match)
        except SecretError as exc:
            checks.append((f"secret {shown}", False, exc.message + (f": {exc.hint}" if exc.hint else "")))
            continue
        checks.append((f"secret {shown}", True, "readable"))
    return checks


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    return []


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


def _replicates(source: PostgresSource) -> tuple[bool, str]:
    """Whether a CDC source's server and user can replicate (``wal_level``, the REPLICATION role)."""
    import psycopg

    from lagoa.sources.cdc.slot import replication_problem

    try:
        dsn = resolve_secrets(source.dsn)
        with psycopg.connect(dsn, connect_timeout=3) as con:
            problem = replication_problem(con)
    except LagoaError as exc:
        return False, exc.message
    except psycopg.Error as exc:
        return False, f"cannot connect: {redact(str(exc).strip(), [dsn])}"
    if problem is not None:
        return False, f"{problem[0]}: {problem[1]}"
    return True, "wal_level = logical, and the user may use replication slots"
