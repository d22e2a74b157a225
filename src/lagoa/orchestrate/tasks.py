"""What each step of a domain does, for the executor: the project's side of a task."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lagoa.ingest import load_source, merge_source
from lagoa.orchestrate.graph import Task

if TYPE_CHECKING:
    from lagoa.project import Project, SourceSummary


class ProjectTasks:
    """Runs the tasks of one run of a project; remembers what earlier steps produced."""

    def __init__(self, project: Project, run_id: str) -> None:
        self.project = project
        self.run_id = run_id
        self.now = datetime.now(UTC)
        self.summaries: dict[str, SourceSummary] = {}
        self.built: dict[str, list[str]] = {}

    def __call__(self, task: Task) -> int | None:
        step: dict[str, Callable[[str], int]] = {
            "ingest": self.ingest,
            "validate": self.validate,
            "transform": self.transform,
            "publish": self.publish,
        }
        return step[task.step](task.domain)

    def _sources(self, domain: str) -> list[str]:
        return list(self.project.config.domains[domain].sources)

    def ingest(self, domain: str) -> int:
        con = self.project.engine()
        try:
            rows = 0
            for name in self._sources(domain):
                config = self.project.config.sources[name]
                summary = load_source(
                    self.project, con, name, config, run_id=self.run_id, now=self.now, report=_quiet
                )
                self.summaries[name] = summary
                rows += summary.bronze_rows
            return rows
        finally:
            con.close()

    def validate(self, domain: str) -> int:
        from lagoa.project import SourceSummary

        con = self.project.engine()
        try:
            rows = 0
            for name in self._sources(domain):
                config = self.project.config.sources[name]
                summary = self.summaries.get(name) or SourceSummary(name)
                merge_source(self.project, con, name, config, summary, run_id=self.run_id, report=_quiet)
                rows += summary.silver_rows
            return rows
        finally:
            con.close()
            self.project.warehouse.refresh(self.project.lake)

    def transform(self, domain: str) -> int:
        run = self.project.transform([domain], publish=False)
        self.built[domain] = [n.name for n in run.nodes if n.kind == "model" and n.status == "success"]
        return len(self.built[domain])

    def publish(self, domain: str) -> int:
        from lagoa.publish.models import publishable

        marked = set(publishable(self.project))
        models = sorted(set(self.built.get(domain, [])) & marked)
        results = self.project.publish(models, run_id=self.run_id) if models else []
        return sum(r.rows for r in results)


def _quiet(stage: str) -> None:
    del stage
