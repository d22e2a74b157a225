"""dbt-core, run in this process against the warehouse: once per run, with partial parsing.

Starting dbt costs seconds (imports, parsing); running it in process once per run, rather than a
subprocess per model or per domain, pays that once.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lagoa.core.errors import TransformError
from lagoa.engine.warehouse import warehouse_lock
from lagoa.transform.profiles import asks_profile, dbt_project_dir, dbt_settings, profile_name, write_profiles

log = logging.getLogger("lagoa.transform")

if TYPE_CHECKING:
    from dbt.cli.main import dbtRunnerResult
    from dbt.contracts.graph.manifest import Manifest

    from lagoa.workspace import StageContext, Workspace


@dataclass(frozen=True)
class NodeResult:
    name: str
    kind: str
    status: str
    path: str
    message: str | None
    seconds: float
    started_at: datetime | None = None
    """When dbt started executing the node (its ``execute`` timing), if it did."""
    line: int | None = None
    """The line of the node's own file that its error points at, when it points at one."""
    unique_id: str = ""
    """dbt's id of the node (``model.shop.daily_sales``), as its manifest names it."""

    @property
    def where(self) -> str:
        """The node's file, with the line its error points at: ``models/x.sql:10``."""
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass(frozen=True)
class DbtRun:
    success: bool
    nodes: list[NodeResult] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)
    """What ``dbt ls`` printed."""

    def failures(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.status in ("error", "fail", "runtime error")]


PROFILED = {
    "build",
    "run",
    "test",
    "seed",
    "snapshot",
    "compile",
    "parse",
    "ls",
    "list",
    "show",
    "docs",
    "source",
    "run-operation",
    "debug",
}
"""dbt commands that connect with a profile (and so take ``--profile``)."""


def invoke(workspace: Workspace, args: list[str], *, manifest: Manifest | None = None) -> DbtRun:
    """Run ``dbt <args>`` for the project's dbt project with Lagoa's generated profile; on the
    ``manifest`` of an earlier parse, when given (dbt then does not parse)."""
    result = _invoked(workspace, args, manifest)
    if result.exception is not None:
        raise TransformError(f"dbt {' '.join(args[:1])} failed: {_condensed(result.exception)}") from None
    listed = [str(item) for item in result.result] if isinstance(result.result, list) else []
    return DbtRun(bool(result.success), _nodes(result.result), listed)


def parsed_manifest(workspace: Workspace) -> Manifest | None:
    """dbt's manifest of the project, parsed without the interval's ``--vars``; None when the
    parse fails (the build that follows then parses, and tells why). The manifest this process
    parsed last is used again while no file dbt reads has changed (by size and time) and no
    environment variable the project reads has another value: a parse costs a second even when
    dbt's partial parsing finds nothing to do."""
    from dbt.contracts.graph.manifest import Manifest

    dbt_dir, profiles = dbt_project_dir(workspace), write_profiles(workspace)
    before = _files_read(dbt_dir, profiles)
    kept = _PARSED.get(dbt_dir)
    if kept is not None and kept[0] == before and _same_environment(kept[1], _dbt_environment(profiles)):
        return kept[1]
    result = _invoked(workspace, ["parse", "--log-level", "none", "--log-level-file", "debug"], None)
    if not result.success or not isinstance(result.result, Manifest):
        _PARSED.pop(dbt_dir, None)
        return None
    if _files_read(dbt_dir, profiles) == before:  # not changed while it parsed
        _PARSED[dbt_dir] = (before, result.result)
    return result.result


_PARSED: dict[Path, tuple[tuple[tuple[str, int, int], ...], Manifest]] = {}
"""Per dbt project folder: the files dbt read (see :func:`_files_read`) and the manifest parsed."""

PROJECT_FILES = ("dbt_project.yml", "packages.yml", "dependencies.yml", "package-lock.yml", "selectors.yml")
PATH_SETTINGS = {
    "model-paths": ["models"],
    "macro-paths": ["macros"],
    "seed-paths": ["seeds"],
    "snapshot-paths": ["snapshots"],
    "test-paths": ["tests"],
    "analysis-paths": ["analyses"],
    "docs-paths": [],
    "packages-install-path": ["dbt_packages"],
}
"""The folders of a dbt project that dbt parses, and their defaults."""


def _files_read(dbt_dir: Path, profiles: Path) -> tuple[tuple[str, int, int], ...]:
    """(path, size, modification time) of every file a parse of the project reads: its project
    files, everything under the folders its dbt_project.yml names, and Lagoa's profile."""
    import yaml

    try:
        settings = dbt_settings(dbt_dir)
    except (OSError, yaml.YAMLError):
        settings = {}  # dbt's parse then fails, and says why
    folders: set[Path] = set()
    for key, default in PATH_SETTINGS.items():
        given = settings.get(key, default)
        for name in [given] if isinstance(given, str) else given or []:
            folders.add(dbt_dir / str(name))
    files = [dbt_dir / name for name in PROJECT_FILES] + [profiles / "profiles.yml"]
    for folder in sorted(folders):
        files += [p for p in folder.rglob("*") if "__pycache__" not in p.parts]
    found = []
    for path in files:
        with contextlib.suppress(OSError):
            stat = path.stat()
            found.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(found))


def _same_environment(manifest: Manifest, settings: dict[str, str]) -> bool:
    """Whether every environment variable the project read (dbt's ``env_var()``) still has the
    value it was parsed with."""
    environment = {**os.environ, **settings}
    return all(environment.get(name) == value for name, value in (manifest.env_vars or {}).items())


def _dbt_environment(profiles: Path) -> dict[str, str]:
    """What Lagoa sets in dbt's environment: no usage statistics leave the machine; dbt's target/
    and logs/ live with Lagoa's state (beside ``profiles``.yml)."""
    return {
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_TARGET_PATH": str(profiles / "target"),
        "DBT_LOG_PATH": str(profiles / "logs"),
    }


def _invoked(workspace: Workspace, args: list[str], manifest: Manifest | None) -> dbtRunnerResult:
    """dbt's own result of ``dbt <args>``, run in this process with the settings Lagoa gives it."""
    dbt_dir = dbt_project_dir(workspace)
    profiles = write_profiles(workspace)
    workspace.warehouse.refresh(workspace.lake)
    full = list(args)
    if "--project-dir" not in full:
        full += ["--project-dir", str(dbt_dir)]
    if "--profiles-dir" not in full:
        full += ["--profiles-dir", str(profiles)]
    if full[:1] and full[0] in PROFILED and "--profile" not in full and not asks_profile(dbt_dir):
        # dbt_project.yml names no profile: dbt would look in ~/.dbt; name the one Lagoa wrote.
        full += ["--profile", profile_name(dbt_dir)]
    if full[:1] == ["clean"] and not any(a.endswith("clean-project-files-only") for a in full):
        # dbt's target/ is Lagoa's, outside the dbt project: dbt refuses to clean it unless told.
        full.append("--no-clean-project-files-only")
    settings = _dbt_environment(profiles)
    from dbt.cli.main import dbtRunner

    # dbt keeps global state (environment, loggers, the adapter's connection): one at a time.
    with warehouse_lock(workspace.warehouse.path):
        saved = {name: os.environ.get(name) for name in settings}
        os.environ.update(settings)
        _close_logs()
        try:
            runner = dbtRunner(manifest=manifest, callbacks=[_progress(contextvars.copy_context())])
            return runner.invoke(full)
        finally:
            _release()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _progress(context: contextvars.Context) -> Callable[[Any], None]:
    """dbt's node events as Lagoa's log lines ("dbt model daily_sales: success in 0.12s"): the
    run's log keeps them, and ``lagoa run`` shows the latest while the transform runs. dbt calls
    from its own threads: each line is logged in (a copy of) the context dbt was invoked in, the
    one the run's task log is kept for."""

    def hear(event: Any) -> None:
        with contextlib.suppress(Exception):  # dbt calls this unguarded: a lost line must not fail it
            tell(event)

    def tell(event: Any) -> None:
        name = event.info.name
        if name == "NodeStart":
            node = event.data.node_info
            context.copy().run(log.info, "dbt %s %s: building", node.resource_type, node.node_name)
        elif name == "NodeFinished":
            node, result = event.data.node_info, event.data.run_result
            started = f", started {_utc(node.node_started_at)}" if node.node_started_at else ""
            line = (
                f"dbt {node.resource_type} {node.node_name}: {result.status} in {result.execution_time:.2f}s"
            )
            context.copy().run(log.info, "%s%s", line, started)

    return hear


def _utc(moment: str) -> str:
    """dbt's time (UTC, without saying so) in ISO-8601 with its offset."""
    parsed = datetime.fromisoformat(moment)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


def build(context: StageContext, selectors: list[str] | None = None, *, quiet: bool = False) -> DbtRun:
    """``dbt build`` (models, then their tests) for the selectors; raises on any failure. With
    an interval in the context, models see it as ``var('interval_start')`` and
    ``var('interval_end')`` (UTC, ``YYYY-MM-DD HH:MM:SS``); ``quiet`` prints nothing of dbt's
    (its log file keeps it all): a failure is told once, by the error raised."""
    run = build_all(context, selectors, quiet=quiet)
    check(run)
    return run


def check(run: DbtRun) -> None:
    """A TransformError naming each failed node, its file and dbt's message, when one failed."""
    failures = run.failures()
    if not run.success or failures:
        lines = [f"{n.kind} {n.name} ({n.where}): {_condensed(n.message)}" for n in failures]
        told = [f"{n.kind} {n.name} ({n.where}):\n{_indented(n.message, n.name)}" for n in failures]
        shown = "\n  ".join(told[:5]) or "see dbt's log: .lagoa/dbt/logs/dbt.log"
        raise TransformError(
            f"dbt build failed ({len(failures)} node{'s' * (len(failures) != 1)}):\n  {shown}",
            failures=lines,
            hint="fix the model or test named above, then run `lagoa transform` again",
        )


def build_all(context: StageContext, selectors: list[str] | None = None, *, quiet: bool = False) -> DbtRun:
    """:func:`build` without raising: what dbt built, and what failed (see :func:`check`)."""
    from lagoa.transform.sources import write_sources

    workspace, interval = context.workspace, context.interval
    variables = None
    if interval is not None:
        variables = {
            "interval_start": interval.start.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "interval_end": interval.end.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        }
    write_sources(workspace, dbt_project_dir(workspace))
    args = ["build"]
    if selectors:
        args += ["--select", *selectors]
    if variables:
        args += ["--vars", json.dumps(variables)]
    if quiet:
        args += ["--log-level", "none", "--log-level-file", "debug"]
    # dbt's partial parsing keeps a hash of the --vars it parsed with: a new interval would parse
    # the whole project again (seconds, every run). So parse without them, as `lagoa graph` does,
    # and build on that manifest: each model still compiles with the interval's vars, only its
    # parse-time config() and ref() see them unset.
    return invoke(workspace, args, manifest=parsed_manifest(workspace))


def selected_models(workspace: Workspace, selectors: list[str]) -> list[str]:
    """The names of the models ``selectors`` select (``dbt ls``)."""
    from lagoa.transform.sources import write_sources

    write_sources(workspace, dbt_project_dir(workspace))
    args = ["ls", "--resource-type", "model", "--output", "name", "--quiet", "--select", *selectors]
    return invoke(workspace, args).listed


def _nodes(result: Any) -> list[NodeResult]:
    nodes = []
    for item in getattr(result, "results", None) or []:
        node = getattr(item, "node", None)
        if node is None:
            continue
        message, line = located(getattr(item, "message", None), node)
        nodes.append(
            NodeResult(
                name=str(getattr(node, "name", "")),
                kind=str(getattr(node, "resource_type", "")),
                status=str(getattr(item, "status", "")),
                path=str(getattr(node, "original_file_path", "")),
                message=message,
                seconds=float(getattr(item, "execution_time", 0.0) or 0.0),
                started_at=_execute_start(item),
                line=line,
                unique_id=str(getattr(node, "unique_id", "")),
            )
        )
    return nodes


QUOTED_LINE = re.compile(r"^(\s*)LINE (\d+):( ?)(.*)$", re.MULTILINE)
"""The line of the SQL that DuckDB quotes in an error, numbered in the SQL it ran."""
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}")


def located(message: str | None, node: Any) -> tuple[str | None, int | None]:
    """dbt's message with DuckDB's ``LINE n:`` (a line of the compiled, wrapped SQL it ran)
    numbered as the line of the model's own file, and that number, when the line is found there."""
    found = QUOTED_LINE.search(message or "")
    raw = getattr(node, "raw_code", None)
    if message is None or found is None or not isinstance(raw, str):
        return message, None
    number = source_line(found.group(4), raw, getattr(node, "compiled_code", None))
    if number is None:
        return message, None
    said, told = f"LINE {found.group(2)}:", f"line {number}:"
    tail = message[found.end() :]
    shift = len(told) - len(said)
    caret = re.match(r"\n(\s*)\^", tail)
    if caret is not None and shift:  # keep the caret under the same character
        spaces = caret.group(1)
        spaces = spaces + " " * shift if shift > 0 else spaces[: len(spaces) + shift]
        tail = f"\n{spaces}^" + tail[caret.end() :]
    shown = f"{found.group(1)}{told}{found.group(3)}{found.group(4)}"
    return message[: found.start()] + shown + tail, number


def source_line(quoted: str, raw: str, compiled: str | None) -> int | None:
    """The number (from 1) of the line of the model's source ``raw`` that became the line
    ``quoted`` of its compiled SQL: the same text, or the same text around its Jinja."""
    text = quoted.strip().removeprefix("...").removesuffix("...").strip()
    if not text:
        return None
    lines = raw.splitlines()
    same = [i for i, line in enumerate(lines, 1) if text in line]
    if len(same) == 1:
        return same[0]
    patterns = {
        i: re.compile(".*?".join(re.escape(part.strip()) for part in JINJA.split(line.strip())))
        for i, line in enumerate(lines, 1)
        if JINJA.search(line) and JINJA.sub("", line).strip()  # a line of Jinja only renders to anything
    }
    rendered = [i for i, pattern in patterns.items() if pattern.fullmatch(text)]
    candidates = same or rendered
    if len(candidates) == 1 or (candidates and compiled is None):
        return candidates[0]
    if candidates and compiled is not None:  # the candidate nearest where the compiled line is
        found = [i for i, line in enumerate(compiled.splitlines(), 1) if text in line]
        if len(found) == 1:  # several: which one DuckDB meant is not known; say none
            moved = len(lines) - len(compiled.splitlines())
            return min(candidates, key=lambda i: abs(i - (found[0] + moved)))
    return None


def _execute_start(item: Any) -> datetime | None:
    for timing in getattr(item, "timing", None) or []:
        started = getattr(timing, "started_at", None)
        if getattr(timing, "name", None) == "execute" and isinstance(started, datetime):
            return started if started.tzinfo else started.replace(tzinfo=UTC)  # dbt's times are UTC
    return None


def _indented(value: object, name: str, limit: int = 12) -> str:
    """dbt's message of a node, line by line under it, without the line repeating its name."""
    lines = [line.rstrip() for line in str(value or "no message").strip().splitlines()]
    if (
        lines
        and name in lines[0]
        and lines[0].lower().startswith(("runtime error", "compilation error", "database error"))
    ):
        lines = lines[1:] or lines
    lines = textwrap.dedent("\n".join(line for line in lines if line.strip())).splitlines()
    if len(lines) > limit:
        lines = [*lines[:limit], "…"]
    return "\n".join(f"      {line}" for line in lines)


def _condensed(value: object, limit: int = 400) -> str:
    """dbt's multi-line message on one line: "Runtime Error in model x (path) — Catalog Error: …"."""
    lines = [line.strip() for line in str(value or "").splitlines() if line.strip()]
    text = " — ".join(lines) or "no message"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _release() -> None:
    """Close what dbt keeps open after an invocation in this process: dbt-duckdb's connection to
    the warehouse (DuckDB refuses a second connection to the same file with other settings) and
    dbt's log file."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = DuckDBConnectionManager._ENV  # dbt-duckdb has no public handle on it
    connection = getattr(environment, "conn", None)
    if connection is not None:
        connection.close()
    DuckDBConnectionManager.close_all_connections()  # type: ignore[no-untyped-call]
    _close_logs()


def _close_logs() -> None:
    """Close and drop dbt's loggers; each invocation sets up its own, without closing the last."""
    from dbt_common.events.event_manager_client import cleanup_event_logger, get_event_manager

    for logger in get_event_manager().loggers:
        for handler in getattr(getattr(logger, "_python_logger", None), "handlers", []):
            handler.close()
    cleanup_event_logger()


def generate_docs_site(workspace: Workspace, *, quiet: bool = False) -> Path:
    """Run ``dbt docs generate``; returns the folder holding the site (index, manifest, catalog).
    ``quiet`` prints dbt's errors only."""
    run = invoke(workspace, ["docs", "generate", *(["--quiet"] if quiet else [])])
    if not run.success:
        raise TransformError(
            "dbt docs generate failed", hint="run `lagoa dbt docs generate` to see dbt's output"
        )
    return workspace.root / ".lagoa" / "dbt" / "target"
