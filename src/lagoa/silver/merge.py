"""Merge pending bronze batches into ``silver.<entity>``, and parse failures into its quarantine.

Silver keeps the latest version of each primary key (greatest ``ordering`` value; on a tie, the
newer batch: the one ingested later, and within one ingest the file modified last, then the one
whose path sorts last, as bronze's commits record in ``BATCH_ORDER``). A row with no key at all
goes to the quarantine. The merge is copy-on-write at file granularity: DuckDB finds the silver
files that hold any incoming key, rewrites just those together with the new rows, and one Iceberg
commit swaps them. Untouched files (and so untouched partitions) are never read or rewritten.
pyiceberg's own ``upsert`` is far too slow for this (see DESIGN.md: 100k keys into 2M rows did
not finish in 10 minutes).
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import duckdb

from lagoa.core.config import TableSource
from lagoa.core.names import BATCH_ORDER, BATCHES, ERROR_COLUMNS, QUARANTINE_COLUMNS, RUN_ID
from lagoa.core.sql import in_list, list_literal, quote_identifier, quote_literal
from lagoa.lake.catalog import Lake
from lagoa.lake.partitioning import PartitionField, partition_spec
from lagoa.lake.pruning import files_for_keys
from lagoa.lake.schema import iceberg_schema, iceberg_type, type_name
from lagoa.lake.writer import layout, write_parquet

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from lagoa.workspace import StageContext


class Verdict(Protocol):
    """What a gate decided for a batch."""

    @property
    def rows(self) -> str:
        """SQL relation of the rows that go on to silver."""

    @property
    def dropped(self) -> str | None:
        """SQL relation of rows to quarantine: (row columns…, ``_lagoa_reason``); None if none."""

    @property
    def warnings(self) -> list[str]: ...


class Gate(Protocol):
    """Checks a batch before silver commits it; the quality stage's ``QualityGate`` is one. The
    verdict holds while the context is open (its relations may name views the gate made)."""

    def check(self, con: duckdb.DuckDBPyConnection, relation: str) -> AbstractContextManager[Verdict]: ...


@dataclass(frozen=True)
class SilverResult:
    table: str
    batches: list[str]
    merged_rows: int
    quarantined_rows: int
    rewritten_files: int
    dropped_rows: int = 0
    """Rows quarantined because they broke a ``drop`` expectation (part of quarantined_rows)."""
    warnings: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    """Rows quarantined by the kind of reason (the part of ``_lagoa_reason`` before its first
    colon: ``bad_value``, an expectation's name…), most first."""


def _silver_table(lake: Lake, identifier: str, bronze: Table, config: TableSource) -> Table:
    """Create silver from bronze's columns, or add the columns bronze has gained since."""
    system = {name for name, _ in ERROR_COLUMNS}
    wanted = [(f.name, f.field_type) for f in bronze.schema().fields if f.name not in system]
    table = lake.table(identifier)
    if table is not None:
        return lake.evolve(table, wanted)
    schema = iceberg_schema(wanted)
    fields = [PartitionField.parse(text) for text in config.partition_by]
    return lake.create_table(identifier, schema, partition_spec(fields, schema) if fields else None)


@dataclass(frozen=True)
class Rejection:
    """Which bronze rows silver refuses on their own, and why: those that did not parse, and
    (with a primary key) those with no key at all, which no merge could place. A composite key
    with some of its columns empty is still a key."""

    condition: str
    reason: str
    raw: str

    @staticmethod
    def of(silver: Table, config: TableSource, business: list[str]) -> Rejection:
        if not config.primary_key:
            return Rejection("_lagoa_error IS NOT NULL", "_lagoa_error", "_lagoa_raw")
        types = {f.name: type_name(f.field_type) for f in silver.schema().fields}
        missing = " AND ".join(_missing(key, types.get(key, "")) for key in config.primary_key)
        named = ", ".join(f"`{key}`" for key in config.primary_key)
        return Rejection(
            f"(_lagoa_error IS NOT NULL OR ({missing}))",
            f"COALESCE(_lagoa_error, {quote_literal('empty primary key ' + named)})",
            f"COALESCE(_lagoa_raw, CAST({_record(business)} AS VARCHAR))",
        )


def _missing(key: str, type_name_: str) -> str:
    """SQL true when a key column holds no value: NULL (an empty CSV field reads as NULL), or
    an empty string."""
    column = quote_identifier(key)
    return f"({column} IS NULL OR {column} = '')" if type_name_ == "string" else f"{column} IS NULL"


def _record(columns: list[str]) -> str:
    """SQL for a row's columns as one JSON object."""
    return (
        "to_json(struct_pack("
        + ", ".join(f"{quote_identifier(c)} := {quote_identifier(c)}" for c in columns)
        + "))"
    )


REASON_KIND = r"""CASE
    WHEN _lagoa_reason LIKE 'failed expectations:%'
        THEN coalesce(nullif(regexp_extract(_lagoa_reason, '#\d+ ([^,]+)', 1), ''), 'failed expectations')
    WHEN regexp_matches(_lagoa_reason, '^line \d+: [a-z ]+')
        THEN regexp_extract(_lagoa_reason, '^line \d+: ([a-z ]+[a-z])', 1)
    WHEN regexp_matches(_lagoa_reason, '^[^:]+: .* is not an? \S+$')
        THEN regexp_extract(_lagoa_reason, '^([^:]+):', 1) || ' not ' || regexp_extract(_lagoa_reason, ' is not (an? \S+)$', 1)
    ELSE left(split_part(_lagoa_reason, ':', 1), 60)
END"""
"""A quarantine reason's kind, for counting: the expectation broken (``expect_…(column)``), the
defect of a line (``too many columns``), the column and type a value is not (``quantity not a
long``), else the reason's first part."""


def _quarantine(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    identifier: str,
    incoming: str,
    pending: list[str],
    run_id: str,
    rejection: Rejection,
    dropped: tuple[str, list[str]] | None = None,
) -> tuple[int, int, dict[str, int]]:
    """Append the rows of pending batches that silver refuses (``rejection``), and those that
    broke a ``drop`` expectation (``dropped``: a relation with ``_lagoa_reason`` and its row
    columns), in one commit. Returns the rows quarantined, of which dropped by expectations, and
    their number by kind of reason."""
    table = lake.table(identifier)
    already = lake.committed(table)
    if not set(pending) - already:
        return 0, 0, {}
    if table is None:
        table = lake.create_table(
            identifier, iceberg_schema([(n, iceberg_type(t)) for n, t in QUARANTINE_COLUMNS])
        )
    skip = f" AND _lagoa_batch_id NOT IN ({in_list(already)})" if already else ""
    run = quote_literal(run_id)
    selects = [
        f"SELECT {rejection.reason} AS _lagoa_reason, {rejection.raw} AS _lagoa_raw, _lagoa_batch_id, "
        f"_lagoa_source, _lagoa_ingested_at, {run} AS _lagoa_run_id FROM {incoming} "
        f"WHERE {rejection.condition}{skip}"
    ]
    dropped_rows = 0
    if dropped is not None:
        relation, business = dropped
        record = _record(business)
        failing = (
            f"SELECT _lagoa_reason, CAST({record} AS VARCHAR) AS _lagoa_raw, _lagoa_batch_id, _lagoa_source, "
            f"_lagoa_ingested_at, {run} AS _lagoa_run_id FROM ({relation}) WHERE true{skip}"
        )
        selects.append(failing)
    with lake.write(table, properties={BATCHES: pending, RUN_ID: run_id}) as staged:
        written = write_parquet(con, " UNION ALL ".join(selects), staged.folder, layout(table))
        staged.add = written.files
    if dropped is not None:  # counting the refused rows reads a few columns; the filter reads all
        (refused,) = con.execute(
            f"SELECT count(*) FROM {incoming} WHERE {rejection.condition}{skip}"
        ).fetchone() or (0,)
        dropped_rows = written.rows - int(refused)
    reasons: dict[str, int] = {}
    if written.files:  # the few quarantined rows, read back by their reason only
        grouped = con.execute(
            f"SELECT {REASON_KIND} AS kind, count(*) AS n "
            f"FROM read_parquet({list_literal(written.files)}) GROUP BY 1 ORDER BY 2 DESC, 1"
        ).fetchall()
        reasons = {str(kind): int(n) for kind, n in grouped}
    return written.rows, dropped_rows, reasons


def merge_silver(
    context: StageContext,
    con: duckdb.DuckDBPyConnection,
    name: str,
    config: TableSource,
    *,
    gate: Gate | None = None,
) -> SilverResult | None:
    """Merge every bronze batch that silver has not seen, as commits of the context's run; None
    when there is nothing to do.

    With a ``gate``, the batch's parsed rows are validated first: a failed ``fail`` expectation
    raises before any commit, and rows breaking a ``drop`` expectation go to the quarantine."""
    lake, run_id = context.lake, context.run_id
    entity = config.entity or name
    identifier = f"silver.{entity}"
    if not lake.ledger(f"bronze.{name}") - lake.ledger(identifier):
        return None  # nothing new (known without loading either table)
    bronze = lake.table(f"bronze.{name}")
    if bronze is None:
        return None
    pending = sorted(lake.committed(bronze) - lake.committed(lake.table(identifier)))
    if not pending:
        return None

    from pyiceberg.expressions import In

    # pyiceberg's In has a __new__ that mypy reads wrongly; call it untyped.
    make_in: Any = In
    bronze_files = lake.data_files(bronze, make_in("_lagoa_batch_id", pending))
    properties: dict[str, object] = {BATCHES: pending, RUN_ID: run_id}
    silver = _silver_table(lake, identifier, bronze, config)
    if not bronze_files:  # batches with no rows (header-only files): record them, nothing to merge
        lake.commit(silver, properties=properties)
        return SilverResult(identifier, pending, 0, 0, 0)

    projection = ", ".join(quote_identifier(f.name) for f in silver.schema().fields)
    business = [f.name for f in silver.schema().fields if not f.name.startswith("_lagoa_")]
    rejection = Rejection.of(silver, config, business)
    incoming = (
        f"(SELECT * FROM read_parquet({list_literal(bronze_files)}, union_by_name=true) "
        f"WHERE _lagoa_batch_id IN ({in_list(pending)}))"
    )
    batch = Batch(
        incoming,
        f"SELECT {projection} FROM {incoming} WHERE NOT {rejection.condition}",
        projection,
        pending,
        business,
        rejection,
        [
            "_lagoa_ingested_at DESC",
            f"{_batch_position(bronze, pending)} DESC NULLS LAST",
            "_lagoa_batch_id DESC",
        ],
    )
    checking: AbstractContextManager[Verdict | None] = gate.check(con, batch.rows) if gate else nullcontext()
    with checking as verdict:
        if verdict is not None:
            batch = replace(batch, rows=f"SELECT {projection} FROM ({verdict.rows})")
        return _merge(con, lake, identifier, silver, config, batch, run_id, verdict)


@dataclass(frozen=True)
class Batch:
    """The pending bronze batches as silver reads them."""

    incoming: str
    """SQL relation of every bronze row of the batches."""
    rows: str
    """SQL for the rows that go on to silver."""
    projection: str
    batches: list[str]
    business: list[str]
    """The table's own columns (not Lagoa's ``_lagoa_*``)."""
    rejection: Rejection
    newer: list[str]
    """ORDER BY terms putting the newer of two versions of a key with equal ordering first."""


def _merge(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    identifier: str,
    silver: Table,
    config: TableSource,
    batch: Batch,
    run_id: str,
    outcome: Verdict | None,
) -> SilverResult:
    pending, projection, rows = batch.batches, batch.projection, batch.rows
    properties: dict[str, object] = {BATCHES: pending, RUN_ID: run_id}
    business = batch.business
    dropped = (outcome.dropped, business) if outcome is not None and outcome.dropped else None
    quarantined, dropped_rows, reasons = _quarantine(
        con, lake, f"{identifier}__quarantine", batch.incoming, pending, run_id, batch.rejection, dropped
    )
    warnings = list(outcome.warnings) if outcome is not None else []
    existing = lake.data_files(silver) if config.primary_key else []
    partitions = [PartitionField.parse(text).duckdb_expression() for text in config.partition_by]
    if config.primary_key:
        rows = _latest_per_key(rows, projection, config, batch.newer)
    if not existing:
        with lake.write(silver, properties=properties) as staged:
            written = write_parquet(con, rows, staged.folder, layout(silver), partitions)
            staged.add = written.files
        return SilverResult(
            identifier, pending, written.rows, quarantined, 0, dropped_rows, warnings, reasons
        )

    # Stage the de-duplicated batch once: it is read to find affected files and to merge.
    batch_folder = lake.staging_folder(silver)
    try:
        with lake.write(silver, properties=properties) as staged:
            (incoming_rows,) = con.execute(
                f"COPY ({rows}) TO {quote_literal(batch_folder)} (FORMAT parquet, PER_THREAD_OUTPUT true)"
            ).fetchone() or (0,)
            staged_rows = f"read_parquet({quote_literal(batch_folder + '/*.parquet')})"
            # NULL members match NULL, as in _latest_per_key: a key is one row whatever it holds.
            key_match = " AND ".join(
                f"s.{quote_identifier(k)} IS NOT DISTINCT FROM b.{quote_identifier(k)}"
                for k in config.primary_key
            )
            candidates = files_for_keys(con, lake, silver, staged_rows, config.primary_key[0])
            rewritten = (
                [
                    row[0]
                    for row in con.execute(
                        f"SELECT DISTINCT s.filename FROM read_parquet({list_literal(candidates)}, "
                        f"filename=true, union_by_name=true) s SEMI JOIN {staged_rows} b ON {key_match}"
                    ).fetchall()
                ]
                if candidates
                else []
            )
            sources = [f"SELECT {projection}, 1 AS _lagoa_new FROM {staged_rows}"]
            if rewritten:
                sources.append(
                    f"SELECT {projection}, 0 AS _lagoa_new FROM read_parquet({list_literal(rewritten)}, union_by_name=true)"
                )
            merged = _latest_per_key(
                " UNION ALL BY NAME ".join(sources), projection, config, ["_lagoa_new DESC"]
            )
            written = write_parquet(con, merged, staged.folder, layout(silver), partitions)
            staged.add, staged.remove = written.files, rewritten
    finally:
        lake.storage.remove_tree(batch_folder)
    return SilverResult(
        identifier, pending, int(incoming_rows), quarantined, len(rewritten), dropped_rows, warnings, reasons
    )


def _batch_position(bronze: Table, pending: list[str]) -> str:
    """SQL for a row's batch's place among the pending batches of its bronze commit, oldest
    first (NULL for commits that recorded no order: their batches then tie by id)."""
    wanted = set(pending)
    order: list[str] = []
    for snapshot in bronze.metadata.snapshots:
        recorded = snapshot.summary.additional_properties.get(BATCH_ORDER) if snapshot.summary else None
        if recorded:
            order += [batch for batch in json.loads(recorded) if batch in wanted]
    if not order:
        return "NULL"
    return f"list_position({list_literal(order)}, _lagoa_batch_id)"


def _latest_per_key(rows: str, projection: str, config: TableSource, tie_breakers: list[str]) -> str:
    """The row with the greatest ordering value per primary key; ``tie_breakers`` decide ties.

    Most keys arrive once, so only rows whose key repeats are ranked with a window: ranking every
    row sorted all of them (5M rows: 1.5 s and 1.4 GB more than this, measured here). The keys
    that repeat are found once (a materialised CTE; as a subquery each branch grouped them again,
    0.6 s per 3M rows) and joined by hash, NULL keys alike (rows without a key were quarantined
    before; one here is still ranked, not lost).
    """
    columns = [quote_identifier(k) for k in config.primary_key]
    key = columns[0] if len(columns) == 1 else f"struct_pack({', '.join(f'{c} := {c}' for c in columns)})"
    repeated = f"SELECT {key} AS k FROM ({rows}) GROUP BY k HAVING count(*) > 1"
    match = f"ON {key} IS NOT DISTINCT FROM __lagoa_repeated.k"
    order = [f"{quote_identifier(config.ordering)} DESC NULLS LAST"] if config.ordering else []
    return (
        f"WITH __lagoa_repeated AS MATERIALIZED ({repeated}) "
        f"SELECT {projection} FROM ({rows}) ANTI JOIN __lagoa_repeated {match} "
        f"UNION ALL SELECT {projection} FROM ({rows}) SEMI JOIN __lagoa_repeated {match} "
        f"QUALIFY row_number() OVER (PARTITION BY {', '.join(columns)} ORDER BY {', '.join([*order, *tie_breakers])}) = 1"
    )
