"""The ``validate`` step of a source, wired here because it joins two stages: the quality gate
checks bronze's pending batches on their way into silver. And what an ingest reports per source.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import duckdb

from lagoa.core.config import PostgresSource, Source
from lagoa.orchestrate.observe import facts
from lagoa.quality.gate import QualityGate
from lagoa.quality.outcome import ValidationResult
from lagoa.quality.results import save_result
from lagoa.quality.suite import Suite, suites_for
from lagoa.silver.merge import merge_silver
from lagoa.sources.load import Loaded

if TYPE_CHECKING:
    from lagoa.sources.http import FetchResult
    from lagoa.storage import Storage
    from lagoa.workspace import StageContext


@dataclass(frozen=True)
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
    reasons: dict[str, int] = field(default_factory=dict)
    """Rows quarantined by the kind of their reason, most first."""
    validations: list[ValidationResult] = field(default_factory=list)
    """The suites' results on the rows merged."""


@dataclass(frozen=True)
class IngestSummary:
    run_id: str
    sources: list[SourceSummary]
    warnings: list[str] = field(default_factory=list)
    cancelled: bool = False
    """Stopped (Ctrl-C) before every step ran: what was committed is listed, the rest waits."""


def validate_source(
    context: StageContext,
    con: duckdb.DuckDBPyConnection,
    config: Source,
    loaded: Loaded,
    suites: list[Suite],
) -> SourceSummary:
    """Run the table's suites on bronze's pending batches, then merge them into silver (and the
    quarantine). A Postgres source wrote silver itself."""
    name = loaded.source
    done = SourceSummary(
        name,
        loaded.files,
        loaded.skipped_files,
        loaded.bronze_rows,
        silver_rows=loaded.silver_rows,
        silver_total=loaded.silver_total,
        fetch=loaded.fetch,
    )
    if isinstance(config, PostgresSource):
        return done
    workspace, report = context.workspace, context.reporter
    identifier = f"silver.{config.entity or name}"
    bound = suites_for(suites, identifier)
    gate = None
    validations: list[ValidationResult] = []

    def save(result: ValidationResult) -> str:
        validations.append(result)
        return _saved(workspace.storage, result)

    if bound:
        gate = QualityGate(
            bound, identifier, context.run_id, workspace.config.quality.result_format, save=save
        )
    landed = workspace.lake.columns(f"bronze.{name}")
    if landed is not None:  # its columns are known: the settings may have changed since it landed
        config.check_columns(name, landed)
    report.stage(name, "validating and merging silver" if bound else "merging silver")
    silver = merge_silver(context, con, name, config, gate=gate)
    total = workspace.lake.rows(identifier)
    report.stage(name, "done")
    if silver is None:
        return replace(done, silver_total=total)
    return replace(
        done,
        silver_rows=silver.merged_rows,
        quarantined=silver.quarantined_rows,
        failed_checks=silver.dropped_rows,
        silver_total=total,
        warnings=list(silver.warnings),
        reasons=dict(silver.reasons),
        validations=validations,
    )


def _saved(storage: Storage, result: ValidationResult) -> str:
    facts.validated(result)  # for the attempt's metrics and lineage
    return save_result(storage, result)
