"""Validation on demand (``lagoa validate``) and starter suites profiled from data
(``lagoa quality init``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lagoa.core.config import PostgresSource, source_tables
from lagoa.core.errors import ConfigError, LakeError
from lagoa.core.sql import list_literal, quote_identifier
from lagoa.lake.schema import duckdb_type, type_name
from lagoa.quality.outcome import ValidationResult
from lagoa.quality.results import save_result
from lagoa.quality.suite import Suite, load_suite, load_suites, suites_for
from lagoa.quality.validate import validate

if TYPE_CHECKING:
    import duckdb

    from lagoa.workspace import Workspace

RANGED = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
    "DATE",
    "TIMESTAMP",
)
"""Column types whose observed range becomes a between expectation."""
LOW_CARDINALITY = 20
"""String columns with at most this many distinct values get an ``in_set`` expectation."""


def table_relation(workspace: Workspace, identifier: str) -> tuple[str, str | None]:
    """SQL reading a lake table's live files, and the row order to validate them in."""
    table = workspace.lake.table(identifier)
    if table is None:
        raise LakeError(f"table `{identifier}` does not exist", hint="run `lagoa tables` to list the tables")
    files = workspace.lake.data_files(table)
    if not files:
        columns = ", ".join(
            f"CAST(NULL AS {duckdb_type(type_name(f.field_type))}) AS {quote_identifier(f.name)}"
            for f in table.schema().fields
        )
        return f"SELECT {columns} WHERE false", None
    return (
        f"SELECT * EXCLUDE (_lagoa_file, file_row_number), _lagoa_file AS _lagoa_f, file_row_number AS _lagoa_r "
        f"FROM read_parquet({list_literal(files)}, union_by_name=true, filename='_lagoa_file', file_row_number=true)",
        "struct_pack(f := _lagoa_f, r := _lagoa_r)",
    )


def resolve_tables(workspace: Workspace, targets: list[str], suites: list[Suite] | None = None) -> list[str]:
    """Tables named by ``targets`` (tables, ``<entity>``, sources or domains); default: every
    silver table with one of ``suites`` (default: the project's)."""
    entities = {
        name: [entity for _, entity in source_tables(name, source)]
        for name, source in workspace.config.sources.items()
    }
    if not targets:
        if suites is None:
            suites = load_suites(workspace.root, workspace.config.quality)
        tables = {f"silver.{e}" for names in entities.values() for e in names}
        tables |= {s.table for s in suites if s.table}
        tables |= {f"silver.{s.name}" for s in suites if s.table is None}
        return sorted(t for t in tables if suites_for(suites, t) and workspace.lake.table(t) is not None)
    chosen: list[str] = []
    for target in targets:
        if "." in target:
            chosen.append(target)
        elif target in workspace.config.domains:
            chosen += [f"silver.{e}" for s in workspace.config.domains[target].sources for e in entities[s]]
        elif target in entities:
            chosen += [f"silver.{e}" for e in entities[target]]
        else:
            chosen.append(f"silver.{target}")
    return list(dict.fromkeys(chosen))


def validate_tables(
    workspace: Workspace, targets: list[str], *, suite_file: Path | None = None, run_id: str
) -> list[ValidationResult]:
    """Validate the current contents of tables; results are stored with ``run_id``."""
    project_suites = load_suites(workspace.root, workspace.config.quality)
    tables = resolve_tables(workspace, targets, project_suites)
    if suite_file is not None and not tables:
        raise ConfigError(
            "name the table to validate with --suite", hint="e.g. lagoa validate silver.orders --suite s.json"
        )
    con = workspace.engine()
    results = []
    try:
        for table in tables:
            suites = (
                [load_suite(suite_file, workspace.config.quality)]
                if suite_file
                else suites_for(project_suites, table)
            )
            if not suites:
                raise ConfigError(
                    f"no suite applies to `{table}`",
                    hint=f"add {workspace.config.quality.path}/{table.split('.')[-1]}.json "
                    f"(`lagoa quality init {table}` writes a starter) or pass --suite",
                )
            relation, order = table_relation(workspace, table)
            for suite in suites:
                result = validate(
                    con,
                    suite,
                    relation,
                    table=table,
                    run_id=run_id,
                    result_format=workspace.config.quality.result_format,
                    order_by=order,
                )
                save_result(workspace.storage, result)
                results.append(result)
    finally:
        con.close()
    return results


def profile_suite(workspace: Workspace, identifier: str) -> dict[str, Any]:
    """A starter suite for a table, profiled from its data: the column set, types, nulls, ranges
    of numbers and times, and value sets of low-cardinality text columns."""
    relation, _ = table_relation(workspace, identifier)
    con = workspace.engine()
    try:
        return _profile(con, relation, identifier, workspace)
    finally:
        con.close()


def _profile(
    con: duckdb.DuckDBPyConnection, relation: str, identifier: str, workspace: Workspace
) -> dict[str, Any]:
    described = con.execute(f"DESCRIBE SELECT * FROM ({relation})").fetchall()
    columns = [(name, str(kind)) for name, kind, *_ in described if not name.startswith("_lagoa_")]
    (rows,) = con.execute(f"SELECT count(*) FROM ({relation})").fetchone() or (0,)
    entity = identifier.split(".")[-1]
    key = next(
        (
            s.primary_key
            for n, s in workspace.config.sources.items()
            if not isinstance(s, PostgresSource) and (s.entity or n) == entity
        ),
        [],
    )
    expectations: list[dict[str, Any]] = [
        {
            "type": "expect_table_row_count_to_be_between",
            "kwargs": {"min_value": 1},
            "meta": {"lagoa": {"on_fail": "fail"}},
        },
        {
            "type": "expect_table_columns_to_match_set",
            "kwargs": {"column_set": [c for c, _ in columns], "exact_match": False},
            "meta": {"lagoa": {"on_fail": "fail"}},
        },
    ]
    if len(key) == 1:
        expectations.append({"type": "expect_column_values_to_be_unique", "kwargs": {"column": key[0]}})
    elif len(key) > 1:
        expectations.append({"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": key}})
    for name, kind in columns:
        col = quote_identifier(name)
        upper = kind.upper()
        # Ranges only for numbers, dates and timestamps: the bounds a suite can express.
        ordered = upper.startswith(RANGED) and not upper.endswith("[]")
        stats = con.execute(
            f"SELECT count({col}), count(DISTINCT {col})"
            + (f", min({col}), max({col})" if ordered else "")
            + f" FROM ({relation})"
        ).fetchone() or (0, 0)
        non_null, distinct = int(stats[0]), int(stats[1])
        expectations.append(
            {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": name, "type_": kind}}
        )
        if rows and non_null == rows:
            expectations.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": name}})
        elif rows and non_null / rows >= 0.5:
            mostly = int(non_null / rows * 100) / 100
            expectations.append(
                {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": name, "mostly": mostly}}
            )
        if ordered and non_null:
            low, high = stats[2], stats[3]
            bounds = {"min_value": _json_bound(low), "max_value": _json_bound(high)}
            expectations.append(
                {"type": "expect_column_values_to_be_between", "kwargs": {"column": name, **bounds}}
            )
        elif upper == "VARCHAR" and 0 < distinct <= LOW_CARDINALITY:
            (values,) = con.execute(
                f"SELECT list(DISTINCT {col} ORDER BY {col}) FROM ({relation}) WHERE {col} IS NOT NULL"
            ).fetchone() or ([],)
            expectations.append(
                {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": name, "value_set": values}}
            )
    return {
        "name": entity,
        "expectations": expectations,
        "meta": {
            "lagoa": {
                "table": identifier,
                "profiled_rows": rows,
                "profiled_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
            "notes": "Starter suite written by `lagoa quality init`: review bounds and sets, and set "
            "meta.lagoa.on_fail (warn, drop or fail) per expectation.",
        },
    }


def _json_bound(value: Any) -> Any:
    if hasattr(value, "isoformat"):  # dates and timestamps
        return value.isoformat()
    if isinstance(value, int | float):
        return value
    return float(value)  # decimals


def write_suite(path: Path, suite: dict[str, Any], *, force: bool) -> None:
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", hint="pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(suite, indent=2, default=str) + "\n", encoding="utf-8")
