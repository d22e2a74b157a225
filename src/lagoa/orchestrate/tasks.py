"""What each step of a domain does, for the executor: the only place where the stages meet.

``ingest`` loads each source of the domain into bronze (the sources stage); ``validate`` checks
and merges what it loaded into silver (quality and silver); ``transform`` builds the domain's dbt
models and ``publish`` puts them in gold (transform and publish).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lagoa.core.config import FileSource, Source
from lagoa.core.config.sources import source_tables
from lagoa.core.errors import EngineError
from lagoa.core.logs import log_context
from lagoa.core.report import LogReporter, Reporter
from lagoa.core.time import Interval
from lagoa.orchestrate.build import publish_models, published_models, transform
from lagoa.orchestrate.graph import Task
from lagoa.orchestrate.ingest import SourceSummary, validate_source
from lagoa.orchestrate.observe import facts
from lagoa.sources.load import Loaded, load_source
from lagoa.workspace import StageContext, Workspace

if TYPE_CHECKING:
    import duckdb

    from lagoa.quality.suite import Suite


log = logging.getLogger("lagoa.tasks")


class ProjectTasks:
    """Runs the tasks of one run of a project; remembers what earlier steps produced.

    ``groups`` names the sources of each task group (a domain); by default the project's domains.
    """

    def __init__(
        self,
        workspace: Workspace,
        run_id: str,
        interval: Interval | None,
        *,
        groups: dict[str, list[str]] | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        self.workspace = workspace
        self.context = StageContext(
            workspace, run_id, datetime.now(UTC), interval, reporter or LogReporter(log)
        )
        self.groups = groups
        self.loaded: dict[str, Loaded] = {}
        self.summaries: dict[str, SourceSummary] = {}
        """Per source, what its validate step reported."""
        self.warnings: list[str] = []
        self.built: dict[str, list[str]] = {}
        self.connections: dict[str, duckdb.DuckDBPyConnection] = {}
        """The DuckDB connection each running ingest or validate task uses, to interrupt it."""
        self._suites: list[Suite] | None = None

    def __call__(self, task: Task) -> int | None:
        step: dict[str, Callable[[str], int]] = {
            "ingest": self.ingest,
            "validate": self.validate,
            "transform": self.transform,
            "publish": self.publish,
        }
        return step[task.step](task.domain)

    def interrupt(self, task: Task) -> None:
        """Stop what ``task`` is running in DuckDB (its timeout passed)."""
        con = self.connections.get(f"{task.step}_{task.domain}")
        if con is not None:
            con.interrupt()

    def _sources(self, domain: str) -> list[str]:
        if self.groups is not None:
            return list(self.groups[domain])
        return list(self.workspace.config.domains[domain].sources)

    def _engine(self, step: str, domain: str) -> duckdb.DuckDBPyConnection:
        con = self.workspace.engine()
        self.connections[f"{step}_{domain}"] = con
        return con

    def ingest(self, domain: str) -> int:
        from lagoa.quality.suite import required_columns
        from lagoa.sources.fetching import Prefetch

        con = self._engine("ingest", domain)
        names = self._sources(domain)
        sources = self.workspace.config.sources
        # A file's columns are all known when it is read; an HTTP page may lack an optional field.
        files = {name: config for name, config in sources.items() if isinstance(config, FileSource)}
        required = required_columns(self.check_suites(), files)
        try:
            rows = 0
            with Prefetch(
                self.workspace, names, run_id=self.context.run_id, interval=self.context.interval
            ) as ahead:
                for name in names:
                    with log_context(table=_table_of(name, sources[name], "bronze")):
                        loaded = load_source(
                            self.context,
                            con,
                            name,
                            sources[name],
                            prefetched=ahead.take(name),
                            required=required.get(name),
                        )
                        log.info("%s: %d rows to bronze", name, loaded.bronze_rows)
                    facts.read(name, loaded.bronze_rows)
                    self.loaded[name] = loaded
                    rows += loaded.bronze_rows
            return rows
        finally:
            self.connections.pop(f"ingest_{domain}", None)
            con.close()

    def check_suites(self) -> list[Suite]:
        """The project's suites, loaded once and checked against their sources (SuiteError,
        ConfigError when one is wrong)."""
        from lagoa.quality.suite import project_suites

        if self._suites is None:
            self._suites = project_suites(self.workspace.root, self.workspace.config)
        return self._suites

    def validate(self, domain: str) -> int:
        suites = self.check_suites()
        con = self._engine("validate", domain)
        try:
            rows = 0
            for name in self._sources(domain):
                config = self.workspace.config.sources[name]
                loaded = self.loaded.get(name) or Loaded(name)
                with log_context(table=_table_of(name, config, "silver")):
                    summary = validate_source(self.context, con, config, loaded, suites)
                    log.info("%s: %d rows to silver", name, summary.silver_rows)
                self.summaries[name] = summary
                rows += summary.silver_rows
            return rows
        finally:
            self.connections.pop(f"validate_{domain}", None)
            con.close()
            try:
                self.workspace.warehouse.refresh(self.workspace.lake, warn=self._warn)
            except EngineError as exc:
                self._warn(
                    f"warehouse views not refreshed ({exc.message}); queries read the lake afresh anyway"
                )

    def _warn(self, warning: str) -> None:
        log.warning("%s", warning)
        self.warnings.append(warning)

    def transform(self, domain: str) -> int:
        run = transform(self.context, [domain], publish=False, quiet=True)
        for node in run.nodes:
            started = f", started {node.started_at.isoformat()}" if node.started_at else ""
            log.info("dbt %s %s: %s in %.2fs%s", node.kind, node.name, node.status, node.seconds, started)
        self.built[domain] = [n.name for n in run.nodes if n.kind == "model" and n.status == "success"]
        return len(self.built[domain])

    def publish(self, domain: str) -> int:
        models = published_models(self.workspace, domain, self.built.get(domain))
        results = publish_models(self.context, models) if models else []
        for result in results:
            with log_context(table=getattr(result, "table", None)):
                log.info("published %s", result)
        return sum(r.rows for r in results)


def _table_of(name: str, source: Source, layer: str) -> str | None:
    """The one table of ``layer`` the source writes, for the log lines about it (none when the
    source writes several, as a Postgres source does)."""
    tables = source_tables(name, source)
    if len(tables) != 1:
        return None
    bronze, entity = tables[0]
    return f"bronze.{bronze}" if layer == "bronze" else f"silver.{entity}"
