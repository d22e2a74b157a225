"""What each step of a domain does, for the executor: the only place where the stages meet.

``ingest`` loads each source of the domain into bronze (the sources stage); ``validate`` checks
and merges what it loaded into silver (quality and silver); ``transform`` builds the domain's dbt
models and ``publish`` puts them in gold (transform and publish).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lagoa.core.config import FileSource, Source
from lagoa.core.config.sources import source_tables
from lagoa.core.errors import EngineError
from lagoa.core.logs import log_context
from lagoa.core.report import LogReporter, Reporter
from lagoa.core.time import Interval
from lagoa.orchestrate.build import domain_selectors, publish_models, published_models, transform
from lagoa.orchestrate.executor import TaskReport
from lagoa.orchestrate.graph import Task
from lagoa.orchestrate.ingest import SourceSummary, validate_source
from lagoa.orchestrate.observe import facts
from lagoa.sources.load import Loaded, load_source
from lagoa.workspace import StageContext, Workspace

if TYPE_CHECKING:
    import duckdb

    from lagoa.orchestrate.rebuild import Reads
    from lagoa.quality.suite import Suite
    from lagoa.transform.runner import NodeResult


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
        self.unchanged: set[str] = set()
        """Domains whose models' inputs are those they were built and published from: not rebuilt."""
        self.inputs: dict[str, tuple[str, Reads | None]] = {}
        """The digest of the inputs each domain's transform built from, and what its models read
        (see rebuild.py)."""
        self.connections: dict[str, duckdb.DuckDBPyConnection] = {}
        """The DuckDB connection each running ingest or validate task uses, to interrupt it."""
        self._suites: list[Suite] | None = None

    def __call__(self, task: Task) -> TaskReport:
        step: dict[str, Callable[[str], TaskReport]] = {
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

    def ingest(self, domain: str) -> TaskReport:
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
            skipped = sum(len(self.loaded[name].skipped_files) for name in names)
            unchanged = f", {skipped} unchanged file{'s' * (skipped != 1)} skipped" if skipped else ""
            return TaskReport(rows, f"{_rows(rows)} to bronze{unchanged}")
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

    def validate(self, domain: str) -> TaskReport:
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
            done = [self.summaries[name] for name in self._sources(domain)]
            return TaskReport(rows, validated(rows, done))
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

    def transform(self, domain: str) -> TaskReport:
        from lagoa.orchestrate.rebuild import Built, inputs, reads

        locations = self.workspace.lake.metadata_locations()  # read once for every question
        interval, record = self.context.interval, Built(self.workspace)
        if record.unchanged(domain, interval, locations):
            self.unchanged.add(domain)
            log.info("nothing the models read has changed since they were built: dbt not started")
            return TaskReport(None, "inputs unchanged since the last build: dbt not started")
        record.building(domain, self.context.run_id)
        run = transform(self.context, [domain], publish=False, quiet=True)  # it logs each node
        models = [n for n in run.nodes if n.kind == "model" and n.status == "success"]
        self.built[domain] = [n.name for n in models]
        read = reads(self.workspace, [n.unique_id for n in run.nodes])
        record.rebuilt(self.context.run_id, [n.unique_id for n in models] if read is not None else None)
        digest = inputs(self.workspace, interval, locations, read.tables if read is not None else None)
        self.inputs[domain] = (digest, read)
        if not any(n.kind == "model" for n in run.nodes):
            selector = (domain_selectors(self.workspace, [domain]) or ["*"])[0]
            warning = (
                f"domain `{domain}` selects no dbt model (`{selector}`): tag its models `{domain}`, "
                f"or set domains.{domain}.select (`path:models/{domain}`, `fqn:*`…)"
            )
            self._warn(warning)  # the whole of it in the run's lines and log; the summary is short
            return TaskReport(None, f"warning: domain `{domain}` selects no dbt model (`{selector}`)")
        return TaskReport(None, built(run.nodes))

    def publish(self, domain: str) -> TaskReport:
        from lagoa.orchestrate.rebuild import Built
        from lagoa.publish.gold import PublishResult

        if domain in self.unchanged:
            return TaskReport(0, "gold is up to date: no model was rebuilt")
        models = published_models(self.workspace, domain, self.built.get(domain))
        results = publish_models(self.context, models) if models else []

        for result in results:
            if isinstance(result, PublishResult):
                with log_context(table=result.table):
                    log.info(
                        "published %s rows to %s: %d partitions, %d files added, %d removed%s",
                        f"{result.rows:,}", result.table, result.partitions, result.added_files,
                        result.removed_files, " (unchanged, skipped)" if result.skipped else "",
                    )  # fmt: skip
            else:
                log.info(
                    "published %s rows to %s, version %s", f"{result.rows:,}", result.location, result.version
                )

        if domain in self.inputs:  # built in this run from these inputs, and now published
            gold = [r.table for r in results if isinstance(r, PublishResult)]
            digest, read = self.inputs.pop(domain)
            Built(self.workspace).published(domain, digest, self.context.run_id, gold, read)
        rows = sum(r.rows for r in results)
        if not results:
            return TaskReport(0, "no model to publish")
        targets = ", ".join(r.table if isinstance(r, PublishResult) else r.location for r in results)
        return TaskReport(rows, f"{_rows(rows)} to {targets}")


SHOWN_REASONS = 4
"""Kinds of quarantine reason a validate task's summary names; the others are counted together."""


def _rows(n: int) -> str:
    return f"{n:,} row{'s' * (n != 1)}"


def validated(rows: int, summaries: list[SourceSummary]) -> str:
    """What a validate task did: rows merged, each expectation's verdict, quarantined rows by
    the kind of their reason ("1,234 rows to silver; 25 expectations: 22 passed, 3 warned;
    4 rows quarantined (bad_value 3, not_null 1)")."""
    parts = [f"{_rows(rows)} to silver"]
    results = [r for s in summaries for v in s.validations for r in v.results]
    if results:
        verdicts = {"passed": sum(r.success for r in results)}
        for action, word in (("warn", "warned"), ("drop", "dropped rows"), ("fail", "failed")):
            verdicts[word] = sum(not r.success and r.action == action for r in results)
        said = ", ".join(f"{n} {word}" for word, n in verdicts.items() if n or word == "passed")
        parts.append(f"{len(results)} expectation{'s' * (len(results) != 1)}: {said}")
    quarantined = sum(s.quarantined for s in summaries)
    if quarantined:
        reasons: dict[str, int] = {}
        for summary in summaries:
            for kind, n in summary.reasons.items():
                reasons[kind] = reasons.get(kind, 0) + n
        ranked = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        why = ", ".join(f"{n:,} {kind}" for kind, n in ranked[:SHOWN_REASONS])
        if len(ranked) > SHOWN_REASONS:
            why += f", {sum(n for _, n in ranked[SHOWN_REASONS:]):,} other"
        parts.append(f"{_rows(quarantined)} quarantined" + (f": {why}" if why else ""))
    return "; ".join(parts)


def built(nodes: Sequence[NodeResult]) -> str:
    """What a transform did: models built and tests passed (and what did not)."""
    counted: dict[str, int] = {}
    for node in nodes:
        if node.kind in ("model", "test", "seed", "snapshot"):
            ok = node.status in ("success", "pass")
            word = {"model": "models", "test": "tests", "seed": "seeds", "snapshot": "snapshots"}[node.kind]
            verb = ("built" if node.kind != "test" else "passed") if ok else node.status
            key = f"{word} {verb}"
            counted[key] = counted.get(key, 0) + 1
    if not counted:
        return "no model selected"
    return ", ".join(
        f"{n} {key}" if n != 1 else f"1 {key.replace('s ', ' ', 1)}" for key, n in counted.items()
    )


def _table_of(name: str, source: Source, layer: str) -> str | None:
    """The one table of ``layer`` the source writes, for the log lines about it (none when the
    source writes several, as a Postgres source does)."""
    tables = source_tables(name, source)
    if len(tables) != 1:
        return None
    bronze, entity = tables[0]
    return f"bronze.{bronze}" if layer == "bronze" else f"silver.{entity}"
