"""OpenLineage events for every task attempt, sent through the openlineage-python client.

Each attempt is a run of the job ``<pipeline>.<task>``: START when it begins, COMPLETE or FAIL
when it ends (a retried attempt ends in FAIL; the next one starts anew). The pipeline run is the
parent job ``<pipeline>``, with a START and a COMPLETE/FAIL of its own. Run ids are UUIDs derived
from Lagoa's run id, task and attempt, so events and the run history name the same runs.

Datasets come from the project graph, not from the tasks: ingest reads a source's files and
writes ``bronze``; validate reads ``bronze`` and writes ``silver``; transform reads what its dbt
models read and writes the models (in the warehouse); publish writes them to ``gold``.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lagoa.core.config import FileSource, resolve_secrets, source_tables
from lagoa.core.errors import ConfigError
from lagoa.core.names import RUN_ID
from lagoa.orchestrate.executor import Event
from lagoa.orchestrate.graph import Graph, Task
from lagoa.orchestrate.observe.facts import Facts

if TYPE_CHECKING:
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import InputDataset, OutputDataset, RunEvent
    from openlineage.client.transport import Transport
    from pyiceberg.table import Table

    from lagoa.core.config.observe import LineageConfig
    from lagoa.quality.outcome import ExpectationResult, ValidationResult
    from lagoa.transform.column_lineage import ModelLineage
    from lagoa.workspace import Workspace

log = logging.getLogger("lagoa.lineage")

PRODUCER = "https://github.com/lagoa-data/lagoa"
UUID_ROOT = uuid.UUID("5d1c6f43-3f8e-4e53-9c35-7a3f3d1f2b10")
"""Namespace of the uuid5s naming Lagoa's runs and attempts in OpenLineage."""
STATES = {
    "task_started": "START",
    "task_succeeded": "COMPLETE",
    "task_failed": "FAIL",
    "task_retried": "FAIL",
}
DEFAULT_PATH = ".lagoa/lineage.jsonl"
KEPT = "lineage"
"""Where in the project's storage every event sent is kept, one object per event."""


def run_uuid(run_id: str, task: str | None = None, attempt: int = 0) -> str:
    """The OpenLineage run id of a Lagoa run (no task) or of one attempt of a task."""
    return str(uuid.uuid5(UUID_ROOT, run_id if task is None else f"{run_id}/{task}/{attempt}"))


def enabled(config: LineageConfig, environ: Mapping[str, str] = os.environ) -> bool:
    """Lineage is sent when lagoa.yml names a transport or OpenLineage's variables set one."""
    if environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    if config.transport is not None:
        return True
    return any(k in environ for k in ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG")) or any(
        k.startswith("OPENLINEAGE__TRANSPORT") for k in environ
    )


def open_client(workspace: Workspace) -> OpenLineageClient:
    """A client with lagoa.yml's transport, else the one the ``OPENLINEAGE_*`` variables set."""
    from openlineage.client import OpenLineageClient

    config = workspace.config.observe.lineage
    if config.transport is None:
        return OpenLineageClient()
    return OpenLineageClient(transport=_transport(workspace, config))


def _transport(workspace: Workspace, config: LineageConfig) -> Transport:
    from openlineage.client.transport.console import ConsoleConfig, ConsoleTransport
    from openlineage.client.transport.file import FileConfig, FileTransport
    from openlineage.client.transport.http import HttpConfig, HttpTransport, TokenProvider

    if config.transport == "console":
        return ConsoleTransport(ConsoleConfig())
    if config.transport == "file":
        path = workspace.root / (config.path or DEFAULT_PATH)
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileTransport(FileConfig(log_file_path=str(path), append=True))
    if not config.url:
        raise ConfigError(
            "lineage over http needs a server URL",
            hint="set `observe.lineage.url` in lagoa.yml (e.g. http://localhost:5000 for Marquez)",
        )
    reference = config.api_key

    class SecretToken(TokenProvider):
        """The bearer token, resolved from its secret reference for each request: its value is
        in no config object, event or log."""

        def get_bearer(self) -> str | None:
            return f"Bearer {resolve_secrets(reference)}" if reference else None

    return HttpTransport(
        HttpConfig(url=config.url, endpoint="api/v1/lineage", timeout=10, auth=SecretToken({}))
    )


def subscriber(
    workspace: Workspace,
    graph: Graph,
    pipeline: str,
    run_id: str,
    interval: tuple[datetime, datetime] | None,
    facts: Callable[[str], Facts] | None = None,
) -> Callable[[Event], None] | None:
    """The lineage subscriber of one run, or None when lineage is not configured. ``facts``
    tells what a task's latest attempt did (its validations become ``dataQualityAssertions``)."""
    if not enabled(workspace.config.observe.lineage):
        return None
    return Lineage(workspace, graph, pipeline, run_id, interval, facts=facts)


class Lineage:
    """Turns a run's events into OpenLineage RunEvents and sends them; a failed delivery is
    logged (redacted), never raised: a lineage server that is down must not fail a run.

    Events are built and sent in order by one thread of their own, so that naming datasets
    (which reads the lake and dbt's manifest) and delivering them never holds up the tasks; the
    run's end waits until every event of the run has been sent. What an attempt validated is
    taken when its end is heard, before a retry can replace it."""

    def __init__(
        self,
        workspace: Workspace,
        graph: Graph,
        pipeline: str,
        run_id: str,
        interval: tuple[datetime, datetime] | None,
        client: OpenLineageClient | None = None,
        facts: Callable[[str], Facts] | None = None,
    ) -> None:
        config = workspace.config.observe.lineage
        self.workspace = workspace
        self.graph = graph
        self.pipeline = pipeline
        self.run_id = run_id
        self.interval = interval
        self.namespace = config.namespace or os.environ.get("OPENLINEAGE_NAMESPACE") or workspace.config.name
        if config.transport == "http" and not config.url:
            _transport(workspace, config)  # says what to set, before the run starts
        self._client = client
        self.datasets = Datasets(workspace)
        self.facts = facts or (lambda task: Facts())
        self.kept = 0
        self._queue: queue.Queue[tuple[Event, tuple[ValidationResult, ...]]] = queue.Queue()
        self._sender: threading.Thread | None = None

    @property
    def client(self) -> OpenLineageClient:
        """Opened on first use, on the sender thread: importing the client takes a third of a
        second that the run's tasks need not wait for."""
        if self._client is None:
            self._client = open_client(self.workspace)
        return self._client

    def __call__(self, event: Event) -> None:
        if event.kind not in STATES and not event.kind.startswith("run_"):
            return  # no RunEvent of it
        ended = STATES.get(event.kind) not in (None, "START") and event.task is not None
        validations = tuple(self.facts(event.task).validations) if ended and event.task else ()
        if self._sender is None:
            self._sender = threading.Thread(target=self._send_all, name="lagoa-lineage", daemon=True)
            self._sender.start()
        self._queue.put((event, validations))
        if event.kind == "run_finished":
            self._queue.join()

    def _send_all(self) -> None:
        while True:
            event, validations = self._queue.get()
            try:
                self.send(event, validations)
            finally:
                self._queue.task_done()
            if event.kind == "run_finished":
                return  # the run's last event

    def send(self, event: Event, validations: Sequence[ValidationResult] = ()) -> None:
        """Build the RunEvent of ``event``, keep it in the lake and emit it."""
        from openlineage.client.serde import Serde

        try:
            built = self.build(event, validations)
            if built is None:
                return
            # Kept in the lake first: `lineage_of` reads the graph without a lineage server.
            self.kept += 1
            key = f"{KEPT}/{self.run_id}/{self.kept:05d}.json"
            self.workspace.storage.put_bytes(key, Serde.to_json(built).encode())
            self.client.emit(built)
        except Exception as exc:
            log.warning("lineage event not sent: %s", self.workspace.redactor.text(str(exc)))

    def build(self, event: Event, validations: Sequence[ValidationResult] = ()) -> RunEvent | None:
        """The RunEvent of ``event``, or None for events that are no run's start or end."""
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

        if event.kind in ("run_started", "run_finished"):
            ended = "FAIL" if event.error else "COMPLETE"
            return RunEvent(
                eventType=RunState["START" if event.kind == "run_started" else ended],
                eventTime=event.at.isoformat(),
                run=Run(runId=run_uuid(self.run_id), facets=self._run_facets(event, None)),
                job=Job(namespace=self.namespace, name=self.pipeline, facets=_job_facets("DAG")),
                producer=PRODUCER,
            )
        state = STATES.get(event.kind)
        if state is None or event.task not in self.graph.tasks:
            return None
        task = self.graph.tasks[event.task]
        inputs, outputs = self.datasets.of(
            task, self.run_id if state == "COMPLETE" else None, validations, described=state != "START"
        )
        return RunEvent(
            eventType=RunState[state],
            eventTime=event.at.isoformat(),
            run=Run(
                runId=run_uuid(self.run_id, task.name, event.attempt),
                facets=self._run_facets(event, task),
            ),
            job=Job(
                namespace=self.namespace,
                name=f"{self.pipeline}.{task.name}",
                facets=_job_facets("TASK"),
            ),
            inputs=inputs,
            outputs=outputs,
            producer=PRODUCER,
        )

    def _run_facets(self, event: Event, task: Task | None) -> dict[str, Any]:
        from openlineage.client.facet_v2 import error_message_run, nominal_time_run, parent_run

        facets: dict[str, Any] = {}
        if task is not None:
            facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=run_uuid(self.run_id)),
                job=parent_run.Job(namespace=self.namespace, name=self.pipeline),
            )
        if self.interval is not None:
            start, end = self.interval
            facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(
                nominalStartTime=start.isoformat(), nominalEndTime=end.isoformat()
            )
        if event.kind in ("task_failed", "task_retried") and event.error:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=event.error, programmingLanguage="python"
            )
        return facets


def _job_facets(kind: str) -> dict[str, Any]:
    from openlineage.client.facet_v2 import job_type_job

    return {
        "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="LAGOA", jobType=kind)
    }


@dataclass(frozen=True)
class Dataset:
    """A dataset as OpenLineage names it, and the table (or source, or model) Lagoa calls it."""

    namespace: str
    name: str
    table: str


class Datasets:
    """The datasets a task reads and writes, named per OpenLineage's naming spec: a lake table in
    local storage is namespace ``file`` and its folder's absolute path; on S3, ``s3://<bucket>``
    and its key; a dbt model is a table of the DuckDB warehouse file."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._analysed: dict[tuple[str, str], ModelLineage | None] = {}
        """Each model's column lineage by its SQL and the schemas it reads (see models_lineage)."""
        self._loaded: dict[str, tuple[str, Table]] = {}
        """Tables loaded, by identifier, with the metadata file they were loaded from."""
        self._current: dict[str, str | None] | None = None
        """Every table's metadata file as of the event being built, when the catalog lists them
        in one query; else None, and each table is loaded anew for each event."""
        self._locations: dict[str, str] = {}
        """Each table's location (its folder): fixed once the table exists."""

    def of(
        self,
        task: Task,
        committed_by: str | None,
        validations: Sequence[ValidationResult] = (),
        *,
        described: bool = True,
    ) -> tuple[list[InputDataset], list[OutputDataset]]:
        """Inputs and outputs of ``task``; with ``committed_by`` (a run id), each output's
        statistics from the commit that run made to it; each input validated by one of
        ``validations`` (a suite bound to the silver table it feeds) with its assertions. Not
        ``described`` (a START), datasets carry their names only: their schemas come with the
        attempt's end, as they are after it."""
        from openlineage.client.event_v2 import InputDataset, OutputDataset

        lake = self.workspace.lake
        self._current = lake.metadata_locations() if lake.lists_locations else None
        if self._current is None:
            self._loaded.clear()
        reads, writes = self.tables(task)
        columns = self.column_lineage() if task.step == "transform" and committed_by else {}
        checked = self._validated_inputs(task, validations)
        tables = {d.table: self._table(d) if described else None for d in [*reads, *writes]}
        inputs = [
            InputDataset(
                d.namespace,
                d.name,
                facets=self._facets(d, tables[d.table]),
                inputFacets=checked.get(d.table, {}),
            )
            for d in reads
        ]
        outputs = [
            OutputDataset(
                d.namespace,
                d.name,
                facets=self._facets(d, tables[d.table])
                | self._columns(columns.get(d.table.removeprefix("main."))),
                outputFacets=self._statistics(tables[d.table], committed_by),
            )
            for d in writes
        ]
        return inputs, outputs

    def _validated_inputs(
        self, task: Task, validations: Sequence[ValidationResult]
    ) -> dict[str, dict[str, Any]]:
        """``dataQualityAssertions`` per bronze table: the suites run on its rows before they
        were merged into silver."""
        from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq

        if not validations or task.step != "validate":
            return {}
        config = self.workspace.config
        feeds = {
            f"silver.{silver}": f"bronze.{bronze}"
            for name in config.domains[task.domain].sources
            for bronze, silver in source_tables(name, config.sources[name])
        }
        found: dict[str, list[Any]] = {}
        for validation in validations:
            if validation.table in feeds:
                found.setdefault(feeds[validation.table], []).extend(
                    _assertion(validation.suite, r) for r in validation.results
                )
        return {
            table: {"dataQualityAssertions": dq.DataQualityAssertionsDatasetFacet(assertions=assertions)}
            for table, assertions in found.items()
        }

    def column_lineage(self) -> dict[str, ModelLineage]:
        """The column lineage of every dbt model, from the SQL dbt compiled last for each (the
        manifest's, else the compiled file an earlier invocation left)."""
        from lagoa.transform.column_lineage import models_lineage

        parsed, compiled_sql = self._manifest(compiled=True)
        nodes: dict[str, Any] = parsed.get("nodes", {})
        models = {key: node for key, node in nodes.items() if node.get("resource_type") == "model"}
        compiled: list[tuple[str, str]] = []
        done: set[str] = set()

        def visit(key: str) -> None:  # upstream first, so that their columns are known
            if key in done or key not in models:
                return
            done.add(key)
            for parent in models[key].get("depends_on", {}).get("nodes", []):
                visit(parent)
            if key in compiled_sql:
                compiled.append((str(models[key]["name"]), compiled_sql[key]))

        for key in sorted(models):
            visit(key)
        identifiers = self._current if self._current is not None else self.workspace.lake.identifiers()
        tables: dict[str, dict[str, list[str]]] = {}
        for identifier in identifiers:
            schema, _, name = identifier.partition(".")
            if not any(name in sql for _, sql in compiled):
                continue  # read by no model
            table = self._load(identifier)
            if table is not None:
                tables.setdefault(schema, {})[name] = [f.name for f in table.schema().fields]
        return models_lineage(compiled, tables, self._analysed)

    def _load(self, identifier: str) -> Table | None:
        """The table as it is now: kept while its metadata file is the current one."""
        location = None if self._current is None else self._current.get(identifier)
        if self._current is not None and location is None:
            return None  # no such table
        kept = self._loaded.get(identifier)
        if kept is not None and (location is None or kept[0] == location):
            return kept[1]
        table = self.workspace.lake.table(identifier)
        if table is not None:
            self._loaded[identifier] = (table.metadata_location, table)
        return table

    def _columns(self, lineage: ModelLineage | None) -> dict[str, Any]:
        """The ``columnLineage`` facet of a model's lineage."""
        from openlineage.client.facet_v2 import column_lineage_dataset as facet

        if lineage is None:
            return {}
        fields = {}
        for column, inputs in lineage.fields.items():
            named = []
            for field in inputs:
                schema, _, table = field.table.partition(".")
                dataset = self._model(table) if schema == "main" else self._lake(field.table)
                change = facet.Transformation(type=field.kind, subtype=field.subtype)
                named.append(facet.InputField(dataset.namespace, dataset.name, field.column, [change]))
            fields[column] = facet.Fields(inputFields=named)
        return {"columnLineage": facet.ColumnLineageDatasetFacet(fields=fields)}

    def tables(self, task: Task) -> tuple[list[Dataset], list[Dataset]]:
        config = self.workspace.config
        names = config.domains[task.domain].sources if task.domain in config.domains else []
        pairs = [pair for n in names for pair in source_tables(n, config.sources[n])]
        if task.step == "ingest":
            files = [self._file(n) for n in names if isinstance(config.sources[n], FileSource)]
            return files, [self._lake(f"bronze.{bronze}") for bronze, _ in pairs]
        if task.step == "validate":
            return (
                [self._lake(f"bronze.{bronze}") for bronze, _ in pairs],
                [self._lake(f"silver.{silver}") for _, silver in pairs],
            )
        models = self.models(task.domain)
        if task.step == "transform":
            reads = sorted({parent for parents in models.values() for parent in parents} - set(models))
            return (
                [self._lake(r) if "." in r else self._model(r) for r in reads],
                [self._model(m) for m in sorted(models)],
            )
        from lagoa.publish.models import publishable

        published = sorted(set(models) & set(publishable(self.workspace)))
        return [self._model(m) for m in published], [self._lake(f"gold.{m}") for m in published]

    def models(self, domain: str) -> dict[str, list[str]]:
        """The domain's dbt models (tagged with its name), each with what it reads: a source's
        table as ``silver.<table>``, a model by its name (from dbt's manifest)."""
        parsed, _ = self._manifest()
        nodes: dict[str, Any] = parsed.get("nodes", {})
        sources: dict[str, Any] = parsed.get("sources", {})
        found: dict[str, list[str]] = {}
        for node in nodes.values():
            if node.get("resource_type") != "model" or domain not in (node.get("tags") or []):
                continue
            parents = []
            for parent in node.get("depends_on", {}).get("nodes", []):
                if parent in sources:
                    parents.append(f"{sources[parent]['source_name']}.{sources[parent]['name']}")
                elif nodes.get(parent, {}).get("resource_type") == "model":
                    parents.append(str(nodes[parent]["name"]))
            found[str(node["name"])] = parents
        return found

    def _manifest(self, *, compiled: bool = False) -> tuple[dict[str, Any], dict[str, str]]:
        """dbt's manifest and, with ``compiled``, each model's compiled SQL: read from several
        files that a dbt build of another task may be rewriting, so holding the warehouse's lock."""
        from lagoa.engine.warehouse import warehouse_lock

        if not compiled:
            return self.workspace.dbt_manifest_document(), {}
        with warehouse_lock(self.workspace.warehouse.path):
            parsed = self.workspace.dbt_manifest_document()
            target = self.workspace.dbt_manifest.parent
            sql: dict[str, str] = {}
            for key, node in parsed.get("nodes", {}).items():
                path = target / "compiled" / node["package_name"] / node["original_file_path"]
                if node.get("resource_type") != "model":
                    continue
                if node.get("compiled_code"):  # compiled by the last dbt invocation
                    sql[key] = node["compiled_code"]
                elif path.is_file():  # by an earlier one (another domain's build)
                    sql[key] = path.read_text(encoding="utf-8")
        return parsed, sql

    def _lake(self, identifier: str) -> Dataset:
        location = self._locations.get(identifier)
        if location is None:
            table = self._load(identifier)
            if table is None:
                warehouse = self.workspace.storage.warehouse.rstrip("/")
                return _named(f"{warehouse}/{identifier.replace('.', '/')}", identifier)
            location = self._locations[identifier] = table.location()
        return _named(location, identifier)

    def _file(self, source: str) -> Dataset:
        config = self.workspace.config.sources[source]
        assert isinstance(config, FileSource)
        return _named(str(self.workspace.root / config.path), source)

    def _model(self, model: str) -> Dataset:
        return Dataset(
            f"duckdb://{self.workspace.warehouse.path.resolve()}", f"main.{model}", f"main.{model}"
        )

    def _table(self, dataset: Dataset) -> Table | None:
        return self._load(dataset.table) if _in_lake(dataset) else None

    def _facets(self, dataset: Dataset, table: Table | None) -> dict[str, Any]:
        from openlineage.client.facet_v2 import schema_dataset, symlinks_dataset

        facets: dict[str, Any] = {
            "symlinks": symlinks_dataset.SymlinksDatasetFacet(
                identifiers=[symlinks_dataset.Identifier(namespace="lagoa", name=dataset.table, type="TABLE")]
            )
        }
        if table is not None:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(name=f.name, type=str(f.field_type))
                    for f in table.schema().fields
                ]
            )
        return facets

    def _statistics(self, table: Table | None, run_id: str | None) -> dict[str, Any]:
        from openlineage.client.facet_v2 import output_statistics_output_dataset as stats

        snapshot = table.current_snapshot() if table is not None and run_id else None
        summary = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
        if run_id is None or summary.get(RUN_ID) != run_id:  # this run committed nothing to it
            return {}
        return {
            "outputStatistics": stats.OutputStatisticsOutputDatasetFacet(
                rowCount=int(summary.get("added-records", 0)),
                size=int(summary.get("added-files-size", 0)),
                fileCount=int(summary.get("added-data-files", 0)),
            )
        }


SEVERITY = {"fail": "error", "warn": "warn", "drop": "drop"}
"""An expectation's action as an assertion's severity: ``drop`` quarantines the failing rows."""


def _assertion(suite: str, result: ExpectationResult) -> Any:
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq

    from lagoa.quality.outcome import jsonable

    expectation = result.expectation
    actual = result.unexpected_count if result.unexpected_count is not None else result.observed_value
    return dq.Assertion(
        assertion=expectation.type,
        success=result.success,
        column=expectation.column,
        severity=SEVERITY.get(expectation.action, expectation.action),
        name=f"{suite}#{expectation.index} {expectation.label}",
        actual=None if actual is None else json.dumps(jsonable(actual), default=str),
        params={key: jsonable(value) for key, value in expectation.kwargs.items()},
    )


def _in_lake(dataset: Dataset) -> bool:
    """A table of the lake (not a file source, not a dbt model in the warehouse)."""
    return "." in dataset.table and not dataset.namespace.startswith("duckdb://")


def _named(location: str, table: str) -> Dataset:
    """OpenLineage's name of a location: ``s3://bucket`` and the key, or ``file`` and the path."""
    if location.startswith("s3://"):
        bucket, _, key = location.removeprefix("s3://").partition("/")
        return Dataset(f"s3://{bucket}", key, table)
    return Dataset("file", str(Path(location.removeprefix("file://")).resolve()), table)


@dataclass(frozen=True)
class TableLineage:
    """What a table is made from (upstream) or goes into (downstream), from the kept events."""

    table: str
    edges: tuple[tuple[str, str, str], ...]
    """``(input table, job, output table)``, for each task that last completed."""
    columns: dict[str, tuple[tuple[str, str], ...]]
    """For each of the table's columns, the (table, column) pairs it is computed from (dbt
    models only)."""
    events: int = 0
    """The kept events it was read from (none: lineage was never on)."""


def kept_events(workspace: Workspace) -> list[dict[str, Any]]:
    """Every event the project's runs kept, in the order they were sent within each run."""
    storage = workspace.storage
    found = []
    for key in storage.list(f"{KEPT}/"):
        data = storage.read_bytes(key)
        if data is not None:
            found.append(json.loads(data))
    return found


def lineage_of(events: list[dict[str, Any]], table: str, *, upstream: bool = True) -> TableLineage:
    """The tables upstream (or downstream) of ``table``, by the last completed attempt of each
    task, and its columns' lineage."""
    latest: dict[str, dict[str, Any]] = {}
    for event in sorted(events, key=lambda e: str(e["eventTime"])):
        if event["eventType"] == "COMPLETE" and "parent" in event["run"].get("facets", {}):
            latest[event["job"]["name"]] = event
    names = {
        (d["namespace"], d["name"]): _lagoa_name(d)
        for event in latest.values()
        for d in event.get("inputs", []) + event.get("outputs", [])
    }
    edges: set[tuple[str, str, str]] = set()
    for job, event in latest.items():
        for target in event.get("outputs", []):
            # A model's column lineage says which datasets it reads: finer than all the task's.
            facet = target.get("facets", {}).get("columnLineage", {}).get("fields", {})
            read = {(f["namespace"], f["name"]) for field in facet.values() for f in field["inputFields"]}
            sources = {names.get(key, key[1]) for key in read} or {
                _lagoa_name(d) for d in event.get("inputs", [])
            }
            edges |= {(source, job, _lagoa_name(target)) for source in sources}
    reached, frontier = {table}, {table}
    chosen: set[tuple[str, str, str]] = set()
    while frontier:
        step = {e for e in edges if (e[2] if upstream else e[0]) in frontier} - chosen
        chosen |= step
        frontier = {e[0] if upstream else e[2] for e in step} - reached
        reached |= frontier
    columns: dict[str, tuple[tuple[str, str], ...]] = {}
    for event in latest.values():
        for output in event.get("outputs", []):
            facet = output.get("facets", {}).get("columnLineage")
            if facet is None or _lagoa_name(output) != table:
                continue
            for column, field in facet["fields"].items():
                columns[column] = tuple(
                    (names.get((f["namespace"], f["name"]), f["name"]), f["field"])
                    for f in field["inputFields"]
                )
    return TableLineage(table, tuple(sorted(chosen)), columns, len(events))


def _lagoa_name(dataset: dict[str, Any]) -> str:
    """The name Lagoa gives a dataset (its symlink), else OpenLineage's."""
    for identifier in dataset.get("facets", {}).get("symlinks", {}).get("identifiers", []):
        if identifier.get("namespace") == "lagoa":
            return str(identifier["name"])
    return str(dataset["name"])
