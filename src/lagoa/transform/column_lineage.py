"""Column lineage of dbt models: for each column a model's compiled SQL outputs, the (table,
column) pairs it is computed from. Pure SQL analysis with sqlglot's DuckDB dialect.

The SQL is first qualified against the lake's schemas and the upstream models' columns, so that
``select *`` expands and every column names its table. A column computed from no column at all
(``count(*)``) depends on its rows only: its inputs are the grouping keys, as indirect ones.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.lineage import Node, lineage
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import build_scope, traverse_scope

log = logging.getLogger("lagoa.transform")

DIALECT = "duckdb"
CATALOG = "warehouse"
"""The catalog dbt's compiled SQL names every table in (``"warehouse"."silver"."orders"``)."""

Tables = Mapping[str, Mapping[str, Iterable[str]]]
"""Columns of each table by schema: ``{"silver": {"erp_orders": ["order_id", …]}}``."""


@dataclass(frozen=True)
class InputField:
    table: str
    """``<schema>.<table>``: ``silver.erp_orders``, ``main.stg_erp_orders`` (a model)."""
    column: str
    kind: Literal["DIRECT", "INDIRECT"] = "DIRECT"
    subtype: str = "TRANSFORMATION"
    """OpenLineage's: IDENTITY, TRANSFORMATION, AGGREGATION (direct), GROUP_BY (indirect)."""


@dataclass(frozen=True)
class ModelLineage:
    columns: tuple[str, ...]
    fields: dict[str, tuple[InputField, ...]]
    """For each output column, what it is computed from."""


def model_lineage(sql: str, tables: Tables) -> ModelLineage:
    """The lineage of one model's compiled SQL (SqlglotError when it cannot be analysed)."""
    schema: dict[str, Any] = {
        CATALOG: {
            s: {t: dict.fromkeys(cols, "unknown") for t, cols in ts.items()} for s, ts in tables.items()
        }
    }
    query = qualify(sqlglot.parse_one(sql, dialect=DIALECT), schema=schema, dialect=DIALECT)
    if not isinstance(query, exp.Query):
        raise SqlglotError("a model's SQL must be a query")
    columns = tuple(query.named_selects)
    # Every column's graph in one walk of the query, qualified once (scopes shared).
    roots = lineage(None, query, schema=schema, dialect=DIALECT, scope=build_scope(query), copy=False)
    fields = {c: tuple(_inputs(query, roots[c], schema)) for c in columns}
    return ModelLineage(columns, fields)


def models_lineage(
    models: Iterable[tuple[str, str]],
    tables: Tables,
    memo: dict[tuple[str, str], ModelLineage | None] | None = None,
) -> dict[str, ModelLineage]:
    """The lineage of ``(model, compiled SQL)`` pairs given upstream first: each model's columns
    join the schemas (as ``main.<model>``) before the models that read it are analysed. A model
    sqlglot cannot analyse is left out, and so are those whose ``*`` it would have expanded.

    ``memo`` keeps each analysis by its SQL and the columns of the tables the SQL names, so that
    analysing the same models again (at every transform of a run) costs nothing."""
    known = {schema: {t: list(c) for t, c in ts.items()} for schema, ts in tables.items()}
    found: dict[str, ModelLineage] = {}
    for name, sql in models:
        named = {s: {t: c for t, c in ts.items() if t in sql} for s, ts in known.items()}
        key = (sql, json.dumps(named, sort_keys=True))
        if memo is None or key not in memo:
            try:
                analysed: ModelLineage | None = model_lineage(sql, known)
            except SqlglotError as exc:
                log.debug("no column lineage for %s: %s", name, exc)
                analysed = None
            if memo is not None:
                memo[key] = analysed
        else:
            analysed = memo[key]
        if analysed is not None:
            found[name] = analysed
            known.setdefault("main", {})[name] = list(analysed.columns)
    return found


def _inputs(query: exp.Expr, root: Node, schema: dict[str, Any]) -> list[InputField]:
    aggregated = any(n.expression.find(exp.AggFunc) for n in root.walk())
    plain = all(isinstance(_unalias(n.expression), exp.Column) for n in root.walk() if n.downstream)
    subtype = "AGGREGATION" if aggregated else "IDENTITY" if plain else "TRANSFORMATION"
    found: list[InputField] = []
    for leaf in root.walk():
        if leaf.downstream:
            continue
        table = _table(leaf)
        if table is not None:
            found.append(InputField(table, _column(leaf), "DIRECT", subtype))
        elif leaf.expression.find(exp.AggFunc):  # count(*): its rows, counted per group
            found += _group_keys(query, leaf, schema)
    return sorted(set(found), key=lambda f: (f.table, f.column, f.kind))


def _table(node: Node) -> str | None:
    if isinstance(node.source, exp.Table) and node.source.db:
        return f"{node.source.db}.{node.source.name}"
    return None


def _column(node: Node) -> str:
    """The column a leaf reads, unquoted."""
    return exp.to_column(node.name).name


def _unalias(expression: exp.Expr) -> exp.Expr:
    return expression.this if isinstance(expression, exp.Alias) else expression


def _group_keys(query: exp.Expr, leaf: Node, schema: dict[str, Any]) -> list[InputField]:
    """The grouping keys of the select computing ``leaf``, traced to their tables."""
    name = leaf.name.rsplit(".", 1)[-1]
    for scope in traverse_scope(query):
        select = scope.expression
        if not isinstance(select, exp.Select) or name not in select.named_selects:
            continue
        projection = next(p for p in select.selects if p.alias_or_name == name)
        if projection.sql() != leaf.expression.sql():
            continue
        keys = [p.alias_or_name for p in select.selects if not p.find(exp.AggFunc)]
        alone = select.copy()
        ctes = query.args.get("with_")
        if ctes is not None:  # the select may read the query's CTEs
            alone.set("with_", ctes.copy())
        found = []
        roots = lineage(None, alone, schema=schema, dialect=DIALECT, scope=build_scope(alone), copy=False)
        for key in keys:
            for node in roots[key].walk():
                table = _table(node)
                if not node.downstream and table is not None:
                    found.append(InputField(table, _column(node), "INDIRECT", "GROUP_BY"))
        return found
    return []
