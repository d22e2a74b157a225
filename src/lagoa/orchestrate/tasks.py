"""What each step of a domain does, for the executor: the project's side of a task."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lagoa.core.time import Interval
from lagoa.ingest import load_source, merge_source
from lagoa.orchestrate.graph import Task

if TYPE_CHECKING:
    import duckdb

    from lagoa.project import Project, SourceSummary


log = logging.getLogger("lagoa.tasks")


class ProjectTasks:
    """Runs the tasks of one run of a project; remembers what earlier steps produced."""

    def __init__(self, project: Project, run_id: str, interval: Interval) -> None:
        self.project = project
        self.run_id = run_id
        self.interval = interval
        self.now = datetime.now(UTC)
        self.summaries: dict[str, SourceSummary] = {}
        self.built: dict[str, list[str]] = {}
        self.connections: dict[str, duckdb.DuckDBPyConnection] = {}
        """The DuckDB connection each running ingest or validate task uses, to interrupt it."""

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
        return list(self.project.config.domains[domain].sources)

    def _engine(self, step: str, domain: str) -> duckdb.DuckDBPyConnection:
        con = self.project.engine()
        self.connections[f"{step}_{domain}"] = con
        return con

    def ingest(self, domain: str) -> int:
        from lagoa.sources.fetching import Prefetch

        con = self._engine("ingest", domain)
        names = self._sources(domain)
        try:
            rows = 0
            with Prefetch(
                self.project.workspace, names, run_id=self.run_id, interval=self.interval
            ) as ahead:
                for name in names:
                    config = self.project.config.sources[name]
                    summary = load_source(
                        self.project,
                        con,
                        name,
                        config,
                        run_id=self.run_id,
                        now=self.now,
                        report=_log(name),
                        interval=self.interval,
                        prefetched=ahead.take(name),
                    )
                    log.info("%s: %d rows to bronze", name, summary.bronze_rows)
                    self.summaries[name] = summary
                    rows += summary.bronze_rows
            return rows
        finally:
            self.connections.pop(f"ingest_{domain}", None)
            con.close()

    def validate(self, domain: str) -> int:
        from lagoa.project import SourceSummary

        con = self._engine("validate", domain)
        try:
            rows = 0
            for name in self._sources(domain):
                config = self.project.config.sources[name]
                summary = self.summaries.get(name) or SourceSummary(name)
                merge_source(self.project, con, name, config, summary, run_id=self.run_id, report=_log(name))
                log.info("%s: %d rows to silver", name, summary.silver_rows)
                rows += summary.silver_rows
            return rows
        finally:
            self.connections.pop(f"validate_{domain}", None)
            con.close()
            self.project.warehouse.refresh(self.project.lake)

    def transform(self, domain: str) -> int:
        run = self.project.transform([domain], publish=False, interval=self.interval, quiet=True)
        for node in run.nodes:
            log.info("dbt %s %s: %s in %.2fs", node.kind, node.name, node.status, node.seconds)
        self.built[domain] = [n.name for n in run.nodes if n.kind == "model" and n.status == "success"]
        return len(self.built[domain])

    def publish(self, domain: str) -> int:
        from lagoa.publish.models import publishable
        from lagoa.transform.runner import selected_models

        marked = set(publishable(self.project.workspace))
        if domain in self.built:
            models = sorted(set(self.built[domain]) & marked)
        else:  # a retried run whose transform succeeded before
            config = self.project.config.domains[domain]
            models = sorted(
                set(selected_models(self.project.workspace, [config.select or f"tag:{domain}"])) & marked
            )
        results = self.project.publish(models, run_id=self.run_id) if models else []
        for result in results:
            log.info("published %s", result)
        return sum(r.rows for r in results)


def _log(source: str) -> Callable[[str], None]:
    def report(stage: str) -> None:
        log.info("%s: %s", source, stage)

    return report
