"""A loaded project: its workspace (what stages are given) and its run history, with a method for
everything a user can do from the command line. Each method hands its work to the orchestration
modules, which wire the stages; nothing here loads, checks or writes data itself."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lagoa.core.config import PROJECT_FILE, PostgresSource, ProjectConfig, did_you_mean, load_config
from lagoa.core.errors import ConfigError
from lagoa.core.time import Interval, Unit
from lagoa.orchestrate.build import new_run_id
from lagoa.workspace import StageContext, Workspace

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

    import duckdb

    from lagoa.core.config.orchestration import Event as NotifyEvent
    from lagoa.core.report import Reporter
    from lagoa.deploy.airflow.dags import AirflowVersion
    from lagoa.deploy.terraform import TfvarsWritten
    from lagoa.engine import Warehouse
    from lagoa.lake import Lake, TableInfo
    from lagoa.lake.maintenance import ExpireResult, OptimizeResult
    from lagoa.orchestrate.airflow import Per
    from lagoa.orchestrate.executor import EventStream
    from lagoa.orchestrate.external import SchedulerRun, TaskResult
    from lagoa.orchestrate.graph import Graph
    from lagoa.orchestrate.ingest import IngestSummary
    from lagoa.orchestrate.mwaa import MwaaDeploy
    from lagoa.orchestrate.observe.lineage import TableLineage
    from lagoa.orchestrate.runs import RunOptions, RunResult
    from lagoa.orchestrate.scheduler import Scheduler
    from lagoa.orchestrate.status import ProjectStatus
    from lagoa.publish.dataset import DatasetResult
    from lagoa.publish.gold import PublishResult
    from lagoa.quality.outcome import ValidationResult
    from lagoa.quality.suite import Suite
    from lagoa.sources.cdc import Replicator
    from lagoa.state import StateStore
    from lagoa.storage import Storage
    from lagoa.transform.runner import DbtRun
    from lagoa.transform.target_profile import ProfileWritten


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

    @cached_property
    def state(self) -> StateStore:
        """The run history and leases."""
        from lagoa.core.config import resolve_secrets
        from lagoa.state import StateStore

        uri = resolve_secrets(self.config.state.uri)  # a database's password: `${env:…}` or `${aws-secret:…}`
        return StateStore.open(uri, self.root, self.workspace.redactor.text)

    def close(self) -> None:
        """Give back the connections of the catalog and the run history (a process that ends
        needs no call; one that loads many projects does)."""
        if "state" in self.__dict__:
            self.state.close()
        if "lake" in self.workspace.__dict__:
            self.workspace.lake.close()

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
        """The sources that ``selected`` (sources or domains) names, in order; all by default."""
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

    def ingest(
        self,
        sources: list[str] | None = None,
        reporter: Reporter | None = None,
        *,
        cancel: threading.Event | None = None,
    ) -> IngestSummary:
        """Land, type and merge the given sources or domains (all by default) into bronze and
        silver: a one-off run of the ``ingest`` and ``validate`` steps, recorded in the run
        history. Raises what the first failed step raised."""
        from lagoa.orchestrate.ingest import IngestSummary, SourceSummary
        from lagoa.orchestrate.runs import RunOptions, ingest

        names = self.source_names(sources)
        result, tasks = ingest(
            self.workspace,
            self.state,
            names,
            options=RunOptions(cancel=cancel, trigger="ingest"),
            reporter=reporter,
        )
        cancelled = result.state == "cancelled"
        for outcome in result.outcomes.values():
            if outcome.exception is not None and not cancelled:
                raise outcome.exception
        return IngestSummary(
            result.run_id,
            [tasks.summaries.get(name) or SourceSummary(name) for name in names],
            [w for name in names if name in tasks.summaries for w in tasks.summaries[name].warnings]
            + tasks.warnings,
            cancelled,
        )

    @cached_property
    def suites(self) -> list[Suite]:
        """The expectation suites in the project's quality folder."""
        from lagoa.quality.suite import project_suites

        return project_suites(self.root, self.config)

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
        from lagoa.orchestrate.build import transform
        from lagoa.orchestrate.rebuild import Built

        Built(self.workspace).forget()  # models built by hand: the next run builds, not trusts
        context = StageContext(self.workspace, new_run_id(datetime.now(UTC)), interval=interval)
        return transform(context, domains, publish=publish, quiet=quiet)

    def publish(
        self, models: list[str] | None = None, *, run_id: str | None = None
    ) -> list[PublishResult | DatasetResult]:
        """Publish dbt models marked for publishing (all of them by default) to gold."""
        from lagoa.orchestrate.build import publish_models
        from lagoa.orchestrate.rebuild import Built

        Built(self.workspace).forget()
        context = StageContext(self.workspace, run_id or new_run_id(datetime.now(UTC)))
        return publish_models(context, models)

    def docs(self, *, quiet: bool = False) -> str:
        """Generate dbt's documentation site and publish it under ``gold/_docs/``; returns its
        location. ``quiet`` prints dbt's errors only."""
        from lagoa.publish.docs import publish_docs
        from lagoa.transform.runner import generate_docs_site

        return publish_docs(self.workspace, generate_docs_site(self.workspace, quiet=quiet))

    def dbt(self, args: list[str]) -> DbtRun:
        """Any dbt command on the project's dbt project, with Lagoa's generated profile."""
        from lagoa.orchestrate.rebuild import Built
        from lagoa.transform.runner import invoke

        Built(self.workspace).forget()  # any dbt command may change the warehouse's models
        return invoke(self.workspace, args)

    def dbt_sources(self) -> Path:
        """Write the lake's bronze and silver tables as dbt sources; returns the file."""
        from lagoa.transform.profiles import dbt_project_dir
        from lagoa.transform.sources import write_sources

        return write_sources(self.workspace, dbt_project_dir(self.workspace))

    def dbt_profile(self, target: str, *, out: Path | None = None, default: bool = False) -> ProfileWritten:
        """Write the dbt target of a distributed engine (``athena``, ``trino``, ``snowflake``,
        ``redshift``) into a profiles.yml (default: the dbt project's), keeping its other targets;
        ``default`` makes it the one dbt uses without ``--target``."""
        from lagoa.transform.target_profile import write_target

        return write_target(self.workspace, target, out=out, default=default)

    def docs_server(self, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
        """An HTTP server of the published docs site (call ``serve_forever``); port 0: any free one."""
        from lagoa.publish.docs import docs_server

        return docs_server(self.workspace, port, host)

    def validate(self, targets: list[str], *, suite_file: Path | None = None) -> list[ValidationResult]:
        """Validate tables (or the tables of entities, sources, domains; by default every silver
        table with a suite) as they are now; the results are stored under a new run id."""
        from lagoa.quality.ondemand import validate_tables

        run_id = new_run_id(datetime.now(UTC))
        return validate_tables(self.workspace, targets, suite_file=suite_file, run_id=run_id)

    def starter_suite(self, table: str, *, force: bool = False) -> tuple[Path, dict[str, Any], str]:
        """Write a suite for ``table`` profiled from its data; returns (file, suite, table)."""
        from lagoa.quality.ondemand import profile_suite, resolve_tables, write_suite

        (identifier,) = resolve_tables(self.workspace, [table])[:1] or [table]
        suite = profile_suite(self.workspace, identifier)
        path = self.root / self.config.quality.path / f"{suite['name']}.json"
        write_suite(path, suite, force=force)
        return path, suite, identifier

    def quality_results(self, run_id: str | None = None) -> tuple[str | None, list[ValidationResult]]:
        """A run's stored validation results (default: the latest run that has some)."""
        from lagoa.quality.results import load_results

        return load_results(self.storage, run_id)

    def quality_reports(self, run_id: str) -> list[str]:
        """Where the HTML reports of a run's validation results are."""
        return [
            self.storage.location(p) for p in self.storage.list(f"quality/{run_id}") if p.endswith(".html")
        ]

    def optimize(self, table: str) -> OptimizeResult:
        """Compact a table's files per partition and re-apply its sort or Z-order, in one commit."""
        from lagoa.lake.maintenance import optimize

        con = self.workspace.engine()
        try:
            return optimize(self.lake, table, con)
        finally:
            con.close()

    def expire(self, table: str, older_than: datetime) -> ExpireResult:
        """Expire a table's snapshots older than ``older_than`` (never the current one) and delete
        the files nothing references any more."""
        from lagoa.lake.maintenance import expire

        return expire(self.lake, table, older_than)

    def resolve(self, names: list[str]) -> tuple[str, list[str]]:
        """The pipeline name and domains that ``names`` (a pipeline, or domains) select."""
        from lagoa.orchestrate.runs import resolve

        return resolve(self.workspace, names)

    def graph(self, names: list[str] | None = None) -> Graph:
        """The task graph that ``lagoa run`` of ``names`` (a pipeline or domains) executes."""
        from lagoa.orchestrate.graph import project_graph

        return project_graph(self.workspace, self.resolve(names or [])[1])

    def unselected(self, names: list[str] | None = None) -> dict[str, str]:
        """The domains of ``names`` whose dbt selector matches no model, with the selector (as
        far as dbt's last parse tells: see ``selecting_nothing``)."""
        from lagoa.orchestrate.build import selecting_nothing

        return selecting_nothing(self.workspace, self.resolve(names or [])[1])

    def run(
        self,
        names: list[str] | None = None,
        *,
        interval: Interval | tuple[datetime, datetime] | None = None,
        options: RunOptions | None = None,
    ) -> RunResult[Interval]:
        """One run of a pipeline (or of domains; all by default) for ``interval`` (default: the
        previous day, or hour for an hourly pipeline), recorded in the state database. A run that
        finds all of the pipeline's ``max_active_runs`` slots taken gets a LeaseError (or waits)."""
        from lagoa.orchestrate.runs import default_interval, resolve, run

        pipeline, domains = resolve(self.workspace, names or [])
        if isinstance(interval, tuple):
            interval = Interval(*interval)
        interval = interval or default_interval(self.workspace, pipeline)
        return run(self.workspace, self.state, pipeline, domains, interval, options)

    def retry(self, run_id: str, options: RunOptions | None = None) -> RunResult[Interval]:
        """Run the tasks of ``run_id`` that did not succeed again, as new attempts of that run."""
        from lagoa.orchestrate.runs import retry

        return retry(self.workspace, self.state, run_id, options)

    def backfill(
        self,
        names: list[str],
        start: datetime,
        end: datetime,
        *,
        concurrency: int = 1,
        options: RunOptions | None = None,
        on_result: Callable[[RunResult[Interval]], None] | None = None,
    ) -> list[RunResult[Interval]]:
        """A run per interval in [start, end) of a pipeline (or domains), ``concurrency`` at a time."""
        from lagoa.orchestrate.runs import backfill

        pipeline, domains = self.resolve(names)
        return backfill(
            self.workspace,
            self.state,
            pipeline,
            domains,
            start,
            end,
            concurrency=concurrency,
            options=options,
            on_result=on_result,
        )

    def unit(self, pipeline: str) -> Unit:
        """``daily`` or ``hourly``: the length of the pipeline's data intervals."""
        from lagoa.orchestrate.runs import unit_for

        return unit_for(self.workspace, pipeline)

    def scheduler(
        self,
        *,
        stop: threading.Event | None = None,
        events: EventStream | None = None,
        reporter: Reporter | None = None,
        poll: float = 30.0,
        clock: Callable[[], datetime] | None = None,
    ) -> Scheduler:
        """A scheduler of the project's scheduled pipelines (``serve`` or ``run_once``)."""
        from lagoa.orchestrate.scheduler import Scheduler

        return Scheduler(
            self.workspace, self.state, stop=stop, events=events, reporter=reporter, poll=poll, clock=clock
        )

    def serve_metrics(self) -> tuple[str, int] | None:
        """Serve the process's Prometheus metrics at ``/metrics`` on ``observe.metrics`` (from a
        background thread); the host and port, or None when no port is set."""
        from lagoa.orchestrate.observe.process import serve

        return serve(self.workspace)

    def status(
        self, names: list[str] | None = None, *, runs: int | None = None, cdc: bool = True
    ) -> ProjectStatus:
        """What ``lagoa status`` shows: each pipeline and domain (or ``names``) with its last and
        next run, freshness, quality pass rate, quarantine trend, and the CDC sources' lag;
        ``runs``: how many recent runs the trend covers (default: ``status.TREND_RUNS``)."""
        from lagoa.orchestrate.status import TREND_RUNS, project_status

        return project_status(self.workspace, self.state, names=names or (), runs=runs or TREND_RUNS, cdc=cdc)

    def push_metrics(self, pipeline: str) -> None:
        """Push the process's metrics to ``observe.pushgateway``, if set, grouped by ``pipeline``."""
        from lagoa.orchestrate.observe.process import push

        push(self.workspace, pipeline)

    def airflow_export(
        self, out: Path, *, version: AirflowVersion = "3", per: Per = "pipeline"
    ) -> list[Path]:
        """Write the project's pipelines as Airflow DAG files into ``out`` (with the module they
        import); returns the files written."""
        from lagoa.orchestrate.airflow import export

        return export(self.workspace, out, version=version, per=per)

    def deploy_mwaa(
        self,
        bucket: str,
        *,
        prefix: str = "",
        environment: str | None = None,
        airflow: str | None = None,
        per: Per = "pipeline",
        dry_run: bool = False,
    ) -> MwaaDeploy:
        """Put the project's DAGs, the project and Lagoa into the S3 bucket of an MWAA
        environment (only what changed); with ``environment``, ask MWAA to use the new plugins,
        requirements and startup script (see :mod:`lagoa.orchestrate.mwaa`)."""
        from lagoa.orchestrate.mwaa import deploy_mwaa

        return deploy_mwaa(
            self.workspace,
            bucket=bucket,
            prefix=prefix,
            environment=environment,
            airflow=airflow,
            per=per,
            dry_run=dry_run,
        )

    def deploy_terraform(self, out: Path | None = None) -> TfvarsWritten:
        """Write ``terraform.tfvars`` for ``deploy/terraform`` from the project's settings
        (default: ``deploy/terraform/terraform.tfvars`` in the project): names only, never a
        secret's value (see :mod:`lagoa.deploy.terraform`)."""
        import os

        from lagoa.deploy.terraform import TFVARS, write_tfvars

        return write_tfvars(self.config, out or self.root / TFVARS, os.environ)

    def airflow_home(self, *, port: int = 8080) -> tuple[Path, dict[str, str]]:
        """A local Airflow for this project, no Docker: its environment built from Lagoa's lock
        under ``.lagoa/airflow``, the DAGs exported into its DAG folder. Returns the ``bin``
        folder of Airflow's environment and the environment variables to run it with."""
        import os
        import sys

        from lagoa.deploy.airflow.environment import ensure_environment

        home = self.root / ".lagoa" / "airflow"
        bin_dir = ensure_environment(home / "venv")
        dags = home / "dags"
        self.airflow_export(dags)
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API__PORT": str(port),
            "LAGOA_PYTHON": sys.executable,
            # `airflow standalone` starts its scheduler, API server... as `airflow` from PATH.
            "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]),
        }
        return bin_dir, env

    def airflow_task(
        self, pipeline: str, task: str, *, run: SchedulerRun, interval_end: datetime, final: bool
    ) -> TaskResult:
        """One attempt of a task of ``pipeline`` that Airflow runs, for the interval its run
        ``interval_end`` gives (see :mod:`lagoa.orchestrate.external`)."""
        from lagoa.orchestrate.external import run_task

        return run_task(
            self.workspace, self.state, pipeline, task, run=run, interval_end=interval_end, final=final
        )

    def airflow_notify(
        self,
        pipeline: str,
        event: NotifyEvent,
        *,
        run: SchedulerRun,
        task: str | None = None,
        attempt: int = 0,
        error: str | None = None,
    ) -> int:
        """Send an Airflow callback's event through the project's notifiers; how many it reached."""
        from lagoa.orchestrate.external import notify

        return notify(
            self.workspace, self.state, pipeline, event, run=run, task=task, error=error, attempt=attempt
        )

    def airflow_sla_check(self, pipeline: str, *, run: SchedulerRun, interval_end: datetime) -> list[str]:
        """At an Airflow deadline: send ``sla_miss`` for each SLA of the run that was missed."""
        from lagoa.orchestrate.external import sla_missed

        return sla_missed(self.workspace, self.state, pipeline, run=run, interval_end=interval_end)

    def cdc_source(self, name: str | None) -> tuple[str, PostgresSource]:
        """The CDC source named ``name``, or the project's only one when ``name`` is None."""
        sources = {
            n: c for n, c in self.config.sources.items() if isinstance(c, PostgresSource) and c.mode == "cdc"
        }
        if name is None:
            if len(sources) != 1:
                found = ", ".join(sorted(sources)) or "none"
                raise ConfigError(
                    f"name the source to replicate (CDC sources: {found})",
                    hint="a source with `kind: postgres` and `mode: cdc`",
                )
            name = next(iter(sources))
        if name not in sources:
            raise ConfigError(
                f"`{name}` is not a CDC source", hint=f"CDC sources: {', '.join(sorted(sources)) or 'none'}"
            )
        return name, sources[name]

    def replicator(self, source: str | None, reporter: Reporter | None = None) -> Replicator:
        """The replicator of a CDC source (see :meth:`cdc_source`); use it as a context manager."""
        from lagoa.sources.cdc import Replicator

        name, config = self.cdc_source(source)
        run_id = f"cdc-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        return Replicator(self.workspace, name, config, run_id=run_id, reporter=reporter)

    def lineage(self, table: str, *, upstream: bool = True) -> TableLineage:
        """What ``table`` is made from (or, not ``upstream``, goes into) and its columns'
        lineage, from the lineage events the project's runs kept in its storage."""
        from lagoa.orchestrate.observe.lineage import kept_events, lineage_of

        return lineage_of(kept_events(self.workspace), table, upstream=upstream)

    def tables(self) -> list[TableInfo]:
        found = (self.lake.table(identifier) for identifier in self.lake.identifiers())
        return [self.lake.describe(table) for table in found if table is not None]

    def query(
        self, sql: str, *, write: bool = False, warn: Callable[[str], None] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run SQL on fresh views of the lake; the warehouse file is only read unless ``write``
        (statements that would change it are refused). ``warn`` hears of views that could not be
        made fresh (the query runs on the others)."""
        return self.warehouse.query(self.lake, sql, write=write, warn=warn)

    def resolve_run(self, given: str) -> str:
        """The full id of the run ``given`` names: the id itself, its short id (``lagoa runs``
        shows it) or a prefix; ConfigError when it names no run or several."""
        found = self.state.run_ids_like(given.strip())
        if len(found) == 1:
            return found[0]
        if not found:
            raise ConfigError(f"no run `{given}`", hint="`lagoa runs` lists them")
        raise ConfigError(
            f"`{given}` names {len(found)}{'+' if len(found) >= 10 else ''} runs: {', '.join(found[:5])}",
            hint="give more of the id",
        )

    def query_head(
        self, sql: str, limit: int, *, warn: Callable[[str], None] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]], int]:
        """The first ``limit`` rows of a read-only query and its number of rows (the others are
        counted, not read into Python)."""
        return self.warehouse.head(self.lake, sql, limit, warn=warn)

    def doctor(self) -> list[tuple[str, bool, str]]:
        """Checks of the project's wiring: (check, ok, detail)."""
        from lagoa.orchestrate.doctor import run_checks

        return run_checks(self.workspace)


def load_project(path: Path | str = ".") -> Project:
    """Load the project in ``path``; see :meth:`Project.load`."""
    return Project.load(path)
