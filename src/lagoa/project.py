"""A loaded project wired to its storage, Iceberg catalog and DuckDB warehouse."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lagoa.core.config import PROJECT_FILE, ProjectConfig, did_you_mean, load_config
from lagoa.core.errors import ConfigError, EngineError
from lagoa.engine import Warehouse
from lagoa.lake import Lake, TableInfo
from lagoa.storage import Storage
from lagoa.workspace import StageContext, Workspace

if TYPE_CHECKING:
    import duckdb

    from lagoa.core.time import Interval
    from lagoa.orchestrate.runs import RunOptions, RunResult
    from lagoa.publish.dataset import DatasetResult
    from lagoa.publish.gold import PublishResult
    from lagoa.quality.suite import Suite
    from lagoa.sources.http import FetchResult
    from lagoa.state import StateStore
    from lagoa.transform.runner import DbtRun

Progress = Callable[[str, str], None]
"""Called with (source, stage) as an ingest moves on; the CLI draws it."""


@dataclass
class SourceSummary:
    """What an ingest did for one source."""

    source: str
    files: int = 0
    skipped_files: list[str] = field(default_factory=list)
    bronze_rows: int = 0
    silver_rows: int = 0
    quarantined: int = 0
    """Rows sent to the quarantine: parse failures plus ``failed_checks``."""
    failed_checks: int = 0
    """Rows quarantined because they broke a ``drop`` expectation."""
    silver_total: int = 0
    warnings: list[str] = field(default_factory=list)
    fetch: FetchResult | None = None
    """An HTTP source's pages, records, retries and time spent waiting on the server."""


@dataclass
class IngestSummary:
    run_id: str
    sources: list[SourceSummary]
    warnings: list[str] = field(default_factory=list)


def _reporter(source: str, progress: Progress | None) -> Callable[[str], None]:
    def report(stage: str) -> None:
        if progress is not None:
            progress(source, stage)

    return report


def new_run_id(now: datetime) -> str:
    return f"run-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


class Project:
    """A Lagoa project folder: ``lagoa.yml`` plus everything it points at."""

    def __init__(self, root: Path, config: ProjectConfig) -> None:
        self.workspace = Workspace(root, config, self._dataset_views)
        """What the project's stages are given: folder, settings, storage, lake, warehouse."""
        self.root = self.workspace.root
        self.config = config

    @classmethod
    def load(cls, path: Path | str = ".") -> Project:
        """Load the project in ``path`` (a folder holding lagoa.yml, or the file itself)."""
        path = Path(path)
        file = path if path.suffix in (".yml", ".yaml") else path / PROJECT_FILE
        return cls(file.parent, load_config(file))

    @property
    def storage(self) -> Storage:
        return self.workspace.storage

    @property
    def lake(self) -> Lake:
        return self.workspace.lake

    @property
    def warehouse(self) -> Warehouse:
        return self.workspace.warehouse

    def _dataset_views(self) -> dict[str, str]:
        """Warehouse views over the models published as Parquet datasets."""
        from lagoa.publish.dataset import dataset_view
        from lagoa.publish.models import publishable

        views = {}
        for model, settings in publishable(self.workspace).items():
            if settings.format == "parquet" and (body := dataset_view(self.workspace, settings)) is not None:
                views[f"gold.{model}"] = body
        return views

    def engine(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection for loading data; see :meth:`Workspace.engine`."""
        return self.workspace.engine()

    def source_names(self, selected: list[str] | None = None) -> list[str]:
        names = list(self.config.sources)
        if not selected:
            return names
        unknown = [s for s in selected if s not in names and s not in self.config.domains]
        if unknown:
            raise ConfigError(
                f"no source or domain named `{unknown[0]}`{did_you_mean(unknown[0], names)}",
                file=str(self.root / PROJECT_FILE),
                hint=f"sources: {', '.join(names)}",
            )
        chosen: list[str] = []
        for item in selected:
            for name in self.config.domains[item].sources if item in self.config.domains else [item]:
                if name not in chosen:
                    chosen.append(name)
        return chosen

    def ingest(self, sources: list[str] | None = None, progress: Progress | None = None) -> IngestSummary:
        """Land, type and merge the given sources (all by default) into bronze and silver."""
        from lagoa.ingest import ingest_source
        from lagoa.sources.fetching import Prefetch

        now = datetime.now(UTC)
        run_id = new_run_id(now)
        summary = IngestSummary(run_id, [])
        names = self.source_names(sources)
        con = self.engine()
        try:
            with Prefetch(self.workspace, names, run_id=run_id) as ahead:
                for name in names:
                    report = _reporter(name, progress)
                    source = ingest_source(
                        self,
                        con,
                        name,
                        self.config.sources[name],
                        run_id=run_id,
                        now=now,
                        report=report,
                        prefetched=ahead.take(name),
                    )
                    summary.sources.append(source)
                    summary.warnings.extend(source.warnings)
        finally:
            con.close()
            try:
                self.warehouse.refresh(self.lake)
            except EngineError as exc:
                summary.warnings.append(
                    f"warehouse views not refreshed ({exc.message}); they refresh on the next query"
                )
        return summary

    @cached_property
    def suites(self) -> list[Suite]:
        """The expectation suites in the project's quality folder."""
        from lagoa.quality.suite import load_suites

        return load_suites(self.root, self.config.quality)

    def suites_for(self, table: str) -> list[Suite]:
        """Suites bound to ``table`` (``silver.<entity>``): by setting, else by the suite's name."""
        from lagoa.quality.suite import suites_for

        return suites_for(self.suites, table)

    def transform(
        self,
        domains: list[str] | None = None,
        *,
        publish: bool = True,
        interval: Interval | None = None,
        quiet: bool = False,
    ) -> DbtRun:
        """Build the dbt models of ``domains`` (all models by default) in one dbt invocation.
        With an ``interval``, models see it as ``var('interval_start')`` and ``var('interval_end')``
        (UTC, ``YYYY-MM-DD HH:MM:SS``)."""
        from lagoa.transform.runner import build

        selectors = None
        if domains:
            unknown = [d for d in domains if d not in self.config.domains]
            if unknown:
                raise ConfigError(
                    f"no domain named `{unknown[0]}`{did_you_mean(unknown[0], self.config.domains)}",
                    file=str(self.root / PROJECT_FILE),
                )
            selectors = [self.config.domains[d].select or f"tag:{d}" for d in domains]
        context = StageContext(self.workspace, new_run_id(datetime.now(UTC)), interval=interval)
        run = build(context, selectors, quiet=quiet)
        from lagoa.publish.models import publishable

        built = {n.name for n in run.nodes if n.kind == "model" and n.status == "success"}
        if publish:
            self.publish(sorted(built & set(publishable(self.workspace))))
        else:
            self.warehouse.refresh(self.lake)
        return run

    def publish(
        self, models: list[str] | None = None, *, run_id: str | None = None
    ) -> list[PublishResult | DatasetResult]:
        """Publish dbt models marked for publishing (all of them by default) to gold."""
        from lagoa.publish.gold import publish
        from lagoa.publish.models import publishable

        marked = publishable(self.workspace)
        for model in models or []:
            if model not in marked:
                raise ConfigError(
                    f"model `{model}` is not marked for publishing{did_you_mean(model, marked)}",
                    hint="add it under `publish:` in lagoa.yml or set meta.lagoa.publish in its config",
                )
        chosen = sorted(marked) if models is None else models
        run_id = run_id or new_run_id(datetime.now(UTC))
        from lagoa.publish.dataset import publish_dataset

        context = StageContext(self.workspace, run_id)
        results: list[PublishResult | DatasetResult] = [
            publish_dataset(context, model, marked[model])
            if marked[model].format == "parquet"
            else publish(context, model, marked[model])
            for model in chosen
        ]
        self.warehouse.refresh(self.lake)
        return results

    def docs(self) -> Path:
        """Generate dbt's documentation site and publish it under ``gold/_docs/``; returns its folder."""
        from lagoa.publish.docs import publish_docs
        from lagoa.transform.runner import generate_docs_site

        return publish_docs(self.workspace, generate_docs_site(self.workspace))

    @cached_property
    def state(self) -> StateStore:
        from lagoa.state import StateStore

        return StateStore.open(self.config.state.uri, self.root)

    def run(
        self,
        names: list[str] | None = None,
        *,
        interval: Interval | tuple[datetime, datetime] | None = None,
        options: RunOptions | None = None,
    ) -> RunResult:
        """One run of a pipeline (or of domains; all by default) for ``interval`` (default: the
        previous day, or hour for an hourly pipeline), recorded in the state database. A run that
        finds all of the pipeline's ``max_active_runs`` slots taken gets a LeaseError (or waits)."""
        from lagoa.core.time import Interval
        from lagoa.orchestrate.runs import default_interval, resolve, run

        pipeline, domains = resolve(self, names or [])
        if isinstance(interval, tuple):
            interval = Interval(*interval)
        return run(self, pipeline, domains, interval or default_interval(self, pipeline), options)

    def tables(self) -> list[TableInfo]:
        found = (self.lake.table(identifier) for identifier in self.lake.identifiers())
        return [self.lake.describe(table) for table in found if table is not None]

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        return self.warehouse.query(self.lake, sql)

    def doctor(self) -> list[tuple[str, bool, str]]:
        """Checks of the project's wiring: (check, ok, detail)."""
        from lagoa.orchestrate.doctor import run_checks

        return run_checks(self)


def load_project(path: Path | str = ".") -> Project:
    """Load the project in ``path``; see :meth:`Project.load`."""
    return Project.load(path)
