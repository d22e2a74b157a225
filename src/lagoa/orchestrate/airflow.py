"""The project's pipelines as Airflow DAGs: which DAGs there are, and what each one holds, from
the same graph, schedules, limits and SLAs the embedded orchestrator uses.

Per pipeline (the default), a DAG holds every task of a pipeline (a configured one, or a domain
with a schedule of its own; the whole project, unscheduled, when there is neither). Per domain, a
DAG holds one domain's four tasks, and a transform that reads another domain's tables waits for
that domain's DAG through assets (Airflow 2: datasets) instead of a schedule.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from croniter import croniter

from lagoa.core.config.publish import PublishSettings
from lagoa.core.config.sources import FileSource, HttpSource, PostgresSource, Source, source_tables
from lagoa.core.errors import ConfigError
from lagoa.core.names import QUARANTINE_SUFFIX
from lagoa.core.time import STEP, parse_duration, previous_interval
from lagoa.deploy.airflow.dags import SUPPORT_FILE, AirflowVersion, DagSpec, DagTask, render
from lagoa.orchestrate.executor import RetryPolicy
from lagoa.orchestrate.external import pipeline_graph, sla_targets
from lagoa.orchestrate.graph import STEPS, Graph, Task, tagged_models
from lagoa.orchestrate.runs import unit_for
from lagoa.publish.models import publishable

if TYPE_CHECKING:
    from lagoa.workspace import Workspace

Per = Literal["pipeline", "domain"]
DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)
"""A DAG's start date when its pipeline sets none and does not catch up: any past date will do."""


def exported_pipelines(workspace: Workspace) -> list[str]:
    """The pipelines that become DAGs: the configured ones and every domain with a schedule of
    its own; ``all`` (every domain, run when triggered) when there is none."""
    config = workspace.config
    names = list(config.pipelines)
    names += [d for d, c in config.domains.items() if c.schedule and d not in config.pipelines]
    return names or ["all"]


def dag_specs(workspace: Workspace, per: Per = "pipeline") -> list[DagSpec]:
    if per == "pipeline":
        return [
            _pipeline_spec(workspace, name, pipeline_graph(workspace, name))
            for name in exported_pipelines(workspace)
        ]
    return [_domain_spec(workspace, domain) for domain in workspace.config.domains]


def export(
    workspace: Workspace, out: Path, *, version: AirflowVersion = "3", per: Per = "pipeline"
) -> list[Path]:
    """Write the DAG files, and the support module they import, into ``out``; returns the paths
    written. DAG files Lagoa wrote earlier for DAGs that are gone are removed."""
    out.mkdir(parents=True, exist_ok=True)
    folder, root = out.resolve(), workspace.root.resolve()
    # Relative when the DAGs live inside the project (they move with it); else where it is.
    where = os.path.relpath(root, folder) if folder.is_relative_to(root) else str(root)
    written = []
    for name, text in dag_sources(workspace, where, version=version, per=per).items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    support = out / SUPPORT_FILE.name
    shutil.copyfile(SUPPORT_FILE, support)
    for stale in out.glob(f"{workspace.config.name}.*.py"):
        if stale not in written:
            stale.unlink()
    return [*written, support]


def dag_sources(
    workspace: Workspace,
    project_dir: str,
    *,
    version: AirflowVersion = "3",
    per: Per = "pipeline",
    deadlines: bool = True,
) -> dict[str, str]:
    """The DAG files' text by file name; ``project_dir`` is the project's folder as the DAG
    files find it (relative to theirs, or absolute). Without ``deadlines`` (Airflow 3.0 has no
    Deadline Alerts), SLAs are not exported."""
    sources = {}
    for spec in dag_specs(workspace, per):
        shown = spec if deadlines else replace(spec, deadlines=())
        sources[f"{spec.dag_id}.py"] = render(shown, version, project_dir)
    return sources


def _asset(workspace: Workspace, domain: str, layer: str) -> str:
    return f"lagoa://{workspace.config.name}/{domain}/{layer}"


def _outlets(workspace: Workspace, step: str, domain: str) -> tuple[str, ...]:
    layer = {"validate": "silver", "transform": "models", "publish": "gold"}.get(step)
    return (_asset(workspace, domain, layer),) if layer else ()


def _pipeline_spec(
    workspace: Workspace, pipeline: str, graph: Graph, *, assets: tuple[str, ...] = ()
) -> DagSpec:
    config = workspace.config
    settings = config.orchestration
    pipeline_config = config.pipeline(pipeline)
    schedule = None if assets else pipeline_config.schedule
    unit = unit_for(workspace, pipeline)
    offset = _tick_offset(schedule, unit) if schedule else timedelta(0)
    slas = {label: (sla, tasks) for label, sla, tasks in sla_targets(workspace, pipeline, graph)}
    sla_of_task: dict[str, int] = {}
    deadlines: set[int] = set()
    for sla, names in slas.values():
        seconds = max(0, parse_duration(sla) - int(offset.total_seconds()))
        deadlines.add(seconds)
        for name in names:
            sla_of_task[name] = min(seconds, sla_of_task.get(name, seconds))
    models = tagged_models(workspace)
    tasks = tuple(
        DagTask(
            task.name,
            task.domain,
            tuple(u for u in task.upstream if u in graph.tasks),
            _outlets(workspace, task.step, task.domain),
            sla_of_task.get(task.name),
            workspace.redactor.text(_task_doc(workspace, task, models)),
        )
        for task in _readable_order(workspace, graph)
    )
    if pipeline_config.catchup and pipeline_config.start is None:
        raise ConfigError(
            f"pipeline `{pipeline}` catches up but sets no `start`: Airflow would run every tick since its start date",
            hint=f"set `start` on `{pipeline}` (the first data interval to run)",
        )
    # Airflow runs the first tick at or after start_date; Lagoa's first interval is `start`,
    # which the tick one interval later processes.
    start = pipeline_config.start + STEP[unit] if pipeline_config.start else DEFAULT_START
    retry = RetryPolicy()
    description = pipeline_config.description or _describe(workspace, pipeline, graph)
    return DagSpec(
        dag_id=f"{config.name}.{pipeline}",
        project=config.name,
        pipeline=pipeline,
        description=description,
        start=start,
        tasks=tasks,
        schedule=schedule,
        assets=assets,
        catchup=pipeline_config.catchup,
        max_active_runs=settings.max_active_runs,
        max_active_tasks=settings.max_parallel,
        retries=retry.retries,
        retry_delay_seconds=retry.backoff,
        timeout_seconds=parse_duration(settings.task_timeout) if settings.task_timeout else None,
        deadlines=tuple(sorted(deadlines)),
        tags=("lagoa", config.name),
    )


def _domain_spec(workspace: Workspace, domain: str) -> DagSpec:
    whole = pipeline_graph(workspace, "all")
    graph = Graph()
    waits: set[str] = set()
    for task in whole.order():
        if task.domain != domain:
            continue
        outside = [u for u in task.upstream if whole.tasks[u].domain != domain]
        for name in outside:
            other = whole.tasks[name]
            waits.update(_outlets(workspace, other.step, other.domain))
        graph.add(task)
    return _pipeline_spec(workspace, domain, graph, assets=tuple(sorted(waits)))


def _task_doc(workspace: Workspace, task: Task, models: dict[str, list[str]]) -> str:
    """What the task does in this project, in a sentence: the task's doc in Airflow's UI."""
    config = workspace.config
    domain = config.domains[task.domain]
    names = domain.sources
    if task.step == "ingest":
        copied = [n for n in names if isinstance(config.sources[n], PostgresSource)]
        landed = [n for n in names if n not in copied]
        parts = []
        if landed:
            what = "; ".join(_source_doc(name, config.sources[name]) for name in landed)
            parts.append(f"Lands {what} in raw (the exact bytes) and in bronze, one commit per table.")
        for name in copied:
            parts.append(
                f"Copies {_source_doc(name, config.sources[name])} into bronze change logs and silver."
            )
        return " ".join(parts)
    if task.step == "validate":
        merged = [
            e
            for name in names
            if not isinstance(config.sources[name], PostgresSource)
            for _, e in source_tables(name, config.sources[name])
        ]
        if not merged:
            return "Nothing to merge: Postgres sources write silver as they land."
        return (
            "Checks the new bronze batches against their quality suites and merges them into "
            + ", ".join(f"`silver.{e}`" for e in merged)
            + "; rows that do not parse or break a `drop` expectation go, with the reason, to "
            + ", ".join(f"`silver.{e}{QUARANTINE_SUFFIX}`" for e in merged)
            + "."
        )
    if task.step == "transform":
        if domain.select:
            return f"dbt builds and tests the models `{domain.select}` selects."
        listed = ", ".join(f"`{m}`" for m in models.get(task.domain, [])) or "none yet"
        return f"dbt builds and tests the models tagged `{task.domain}`: {listed}."
    marked = publishable(workspace)
    published = [m for m in models.get(task.domain, []) if m in marked]
    if not published:
        return "Nothing of this domain is marked for publishing (`publish:` in lagoa.yml)."
    return "Publishes " + "; ".join(_publish_doc(m, marked[m]) for m in published) + "."


def _source_doc(name: str, source: Source) -> str:
    if isinstance(source, FileSource):
        return f"`{name}` ({source.format} files `{source.path}`)"
    if isinstance(source, HttpSource):
        return f"`{name}` (pages of {source.method} `{urlsplit(source.base_url).netloc}{source.endpoint}`)"
    if isinstance(source, PostgresSource):
        tables = ", ".join(f"`{t}`" for t in source.tables) or f"every table of `{source.schema_name}`"
        return f"`{name}` (Postgres {tables}, {source.mode})"
    return f"`{name}` (the Python function `{source.function}`)"


def _publish_doc(model: str, settings: PublishSettings) -> str:
    layout = [f"partitioned by {', '.join(settings.partition_by)}"] if settings.partition_by else []
    layout += [f"Z-ordered by {', '.join(settings.zorder)}"] if settings.zorder else []
    layout += [f"sorted by {', '.join(settings.sort_by)}"] if settings.sort_by else []
    shape = f", {', '.join(layout)}" if layout else ""
    if settings.format == "parquet":
        where = f" at `{settings.location}`" if settings.location else ""
        return f"`{model}` as a Parquet dataset{where}{shape}, replaced whole in one swap (CTAS)"
    return f"`gold.{model}` as an Iceberg table{shape}, in one commit"


def _readable_order(workspace: Workspace, graph: Graph) -> list[Task]:
    """Domain by domain as lagoa.yml lists them, each in step order (Airflow needs no order)."""
    domains = list(workspace.config.domains)
    return sorted(graph.tasks.values(), key=lambda t: (domains.index(t.domain), STEPS.index(t.step)))


def _describe(workspace: Workspace, pipeline: str, graph: Graph) -> str:
    domains = sorted({t.domain for t in graph.tasks.values()})
    schedule = workspace.config.pipeline(pipeline).schedule
    when = f"on `{schedule}` (UTC)" if schedule else "when triggered"
    return f"Domains {', '.join(domains)}: ingest, validate, transform and publish, {when}."


def _tick_offset(schedule: str, unit: str) -> timedelta:
    """How long after the end of its data interval the schedule ticks (``0 2 * * *``: 2h); the
    smallest such lag over a year of ticks, so that an SLA counted from the tick never fires late."""
    it = croniter(schedule, datetime(2024, 1, 1, tzinfo=UTC))
    lags = []
    for _ in range(400 if unit == "daily" else 48):
        tick: datetime = it.get_next(datetime)
        lags.append(tick - previous_interval(tick, unit).end)  # type: ignore[arg-type]
    return min(lags)
