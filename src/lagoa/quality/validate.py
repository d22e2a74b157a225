"""Run a suite against a relation in DuckDB: one scan for every row rule and aggregate.

The relation is wrapped in a temporary view. One query counts, for every row rule, the rows in its
domain, the missing rows and the unexpected ones, and evaluates every aggregate. Uniqueness rules
count by grouping, one query each. Only for the rules that found unexpected rows, a short read
fetches the first ones, in the relation's order (``partial_unexpected_list``). Python only judges
the handful of numbers that come back.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import duckdb

from lagoa.core.config import ResultFormat
from lagoa.core.errors import CompileError, ConditionError, SuiteError
from lagoa.core.sql import quote_identifier, quote_literal
from lagoa.quality.conditions import condition_sql
from lagoa.quality.expectations import SPECS
from lagoa.quality.outcome import ExpectationResult, ValidationResult, ValueCount
from lagoa.quality.rules import Column, Context, Observation, RowRule, Rule, plain
from lagoa.quality.suite import Expectation, Suite
from lagoa.quality.table_rules import grouping, key_sql

ROW = "_lagoa_row"
SAMPLE = 100_000
"""Rows sampled to tell whether a text column has few distinct values."""
FEW_VALUES = 1_000
"""At most this many distinct values (in the sample, and then in all) and a text column's value
rules are judged per value: a regex or a set test of 5 statuses, not of 3M rows (~0.1 s each)."""
MAX_LIST = 200
"""Longest ``unexpected_list`` kept for COMPLETE, as in Great Expectations."""
_views = itertools.count()


@dataclass(frozen=True)
class CompiledExpectation:
    expectation: Expectation
    rule: Rule
    domain: str

    @property
    def fails(self) -> str:
        """SQL: this row breaks the expectation (only for row rules)."""
        assert isinstance(self.rule, RowRule)
        return f"(({self.domain}) AND NOT ({self.rule.missing}) AND coalesce({self.rule.unexpected}, false))"


@dataclass(frozen=True)
class CompiledSuite:
    suite: Suite
    view: str
    columns: dict[str, Column]
    expectations: list[CompiledExpectation]
    ordered: bool = False
    """Whether the view numbers its rows (``_lagoa_row``)."""

    def dropping(self) -> list[CompiledExpectation]:
        return [
            c for c in self.expectations if c.expectation.action == "drop" and isinstance(c.rule, RowRule)
        ]

    def drop_filter(self) -> str | None:
        """SQL: the row breaks an expectation whose action is ``drop``; None without any."""
        dropping = self.dropping()
        return " OR ".join(c.fails for c in dropping) if dropping else None

    def drop_reason(self) -> str:
        """SQL text naming every ``drop`` expectation the row breaks."""
        cases = [
            f"CASE WHEN {c.fails} THEN {quote_literal(f'{self.suite.name}#{c.expectation.index} {c.expectation.label}')} END"
            for c in self.dropping()
        ]
        return f"'failed expectations: ' || concat_ws('; ', {', '.join(cases)})"


def compile_suite(
    con: duckdb.DuckDBPyConnection, suite: Suite, relation: str, *, order_by: str | None = None
) -> CompiledSuite:
    """Wrap ``relation`` in a view with a row order and compile every expectation against it.

    A missing column or an argument the data cannot take is a :class:`SuiteError` naming the
    suite and the expectation, so nothing is skipped silently. The view lives on ``con`` until
    :func:`release` drops it.
    """
    view = f"_lagoa_validated_{next(_views)}"
    # A row number only when something needs one: an explicit order, or increasing/decreasing rules
    # (numbering the rows costs as much as the rest of a suite).
    ordered = order_by is not None or any(SPECS[e.type].ordered for e in suite.expectations)
    order = f", {order_by or 'row_number() OVER ()'} AS {ROW}" if ordered else ""
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT *{order} FROM ({relation})")
    hidden = f" EXCLUDE ({ROW})" if ordered else ""
    described = con.execute(f"DESCRIBE SELECT *{hidden} FROM {view}").fetchall()
    columns = {name: Column(name, str(kind)) for name, kind, *_ in described}
    compiled = []
    for expectation in suite.expectations:
        spec = SPECS[expectation.type]
        try:
            domain = _domain(expectation)
            rule = spec.compile(
                expectation.kwargs, Context(columns, view, domain, f"{view}_{expectation.index}")
            )
        except (CompileError, ConditionError) as exc:
            con.execute(f"DROP VIEW IF EXISTS {view}")
            raise SuiteError(suite.path, f"`{expectation.type}`: {exc}", index=expectation.index) from None
        compiled.append(CompiledExpectation(expectation, rule, domain))
    return CompiledSuite(suite, view, columns, compiled, ordered)


def release(con: duckdb.DuckDBPyConnection, compiled: CompiledSuite) -> None:
    """Drop the suite's view and the temporary tables its rules prepared."""
    for item in compiled.expectations:
        if isinstance(item.rule, RowRule) and item.rule.scratch:
            con.execute(f"DROP TABLE IF EXISTS {item.rule.scratch}")
    con.execute(f"DROP VIEW IF EXISTS {compiled.view}")


def _domain(expectation: Expectation) -> str:
    condition = expectation.kwargs.get("row_condition")
    if condition in (None, ""):
        return "true"
    return condition_sql(condition, expectation.kwargs.get("condition_parser"))


def run_compiled(
    con: duckdb.DuckDBPyConnection,
    compiled: CompiledSuite,
    *,
    table: str,
    run_id: str,
    result_format: ResultFormat = "SUMMARY",
    partial_count: int = 20,
) -> ValidationResult:
    """Evaluate a compiled suite in one scan and judge the results."""
    started = time.perf_counter()
    keep = (
        0 if result_format == "BOOLEAN_ONLY" else (MAX_LIST if result_format == "COMPLETE" else partial_count)
    )
    items = list(enumerate(compiled.expectations))
    # Rows are numbered and shown in the relation's order, so keep it while validating.
    (preserved,) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone() or (True,)
    con.execute("SET preserve_insertion_order = true")
    try:
        for item in _narrowed(compiled, [item for _, item in items]):
            if isinstance(item.rule, RowRule) and item.rule.prepare:
                con.execute(item.rule.prepare)
        items = _judged_per_value(con, compiled, items)
        cursor = con.execute(_scan(compiled, items))
        names = [d[0] for d in cursor.description or []]
        row = dict(zip(names, cursor.fetchone() or (), strict=True))
        for i, item in items:
            if isinstance(item.rule, RowRule) and item.rule.count is not None:
                (row[f"u{i}"],) = con.execute(item.rule.count).fetchone() or (0,)
        for i, item in items:
            if isinstance(item.rule, RowRule) and keep and row[f"u{i}"]:
                row[f"p{i}"] = _first_unexpected(con, compiled, i, item, keep)
    except duckdb.Error as exc:
        raise _culprit(con, compiled, items, exc) from None
    finally:
        if not preserved:
            con.execute("SET preserve_insertion_order = false")
    results = []
    for i, item in enumerate(compiled.expectations):
        if isinstance(item.rule, RowRule):
            results.append(_map_result(item, row, i, result_format, partial_count))
        else:
            prefix = f"a{i}_"
            observed = {k.removeprefix(prefix): v for k, v in row.items() if k.startswith(prefix)}
            success, found = item.rule.judge(observed)
            results.append(
                _observed(item.expectation, success, None if result_format == "BOOLEAN_ONLY" else found)
            )
    suite = compiled.suite
    return ValidationResult(
        suite.name,
        suite.path,
        table,
        run_id,
        tuple(results),
        seconds=time.perf_counter() - started,
        rows=int(row["n"]),
    )


def _narrowed(compiled: CompiledSuite, items: list[CompiledExpectation]) -> list[CompiledExpectation]:
    """``items`` with each uniqueness rule whose key holds another's (same domain) grouping only
    the rows whose smaller key repeats: a key that repeats repeats in each of its parts. Every
    row with a non-null smaller key in the domain is among the smaller rule's kept rows, so
    only rows with a null in it need keeping besides (3M rows: one grouping instead of two)."""
    unique = sorted(
        (item for item in items if isinstance(item.rule, RowRule) and item.rule.key),
        key=lambda item: len(item.rule.key),  # type: ignore[union-attr]
    )
    prepared: list[CompiledExpectation] = []  # each after the smaller one it reads
    for item in unique:
        rule = item.rule
        assert isinstance(rule, RowRule) and rule.scratch is not None
        smaller = next(
            (
                p
                for p in prepared
                if p.domain == item.domain and set(p.rule.key) < set(rule.key)  # type: ignore[union-attr]
            ),
            None,
        )
        if smaller is not None:
            part = smaller.rule
            assert isinstance(part, RowRule)
            nulls = " OR ".join(f"{c} IS NULL" for c in part.key)
            narrow = f"({rule.kept}) AND ({key_sql(part.key)} IN (SELECT k FROM {part.scratch}) OR {nulls})"
            rule = replace(rule, prepare=grouping(rule.key, compiled.view, narrow, rule.scratch))
            item = replace(item, rule=rule)
        prepared.append(item)
    return prepared + [item for item in items if not (isinstance(item.rule, RowRule) and item.rule.key)]


def _judged_per_value(
    con: duckdb.DuckDBPyConnection, compiled: CompiledSuite, items: list[tuple[int, CompiledExpectation]]
) -> list[tuple[int, CompiledExpectation]]:
    """``items`` with the value rules of each text column of few distinct values judged once per
    value: their ``unexpected`` becomes a test against the list of values that break them."""
    by_column: dict[str, list[int]] = {}
    for position, (_, item) in enumerate(items):
        if isinstance(item.rule, RowRule) and item.rule.per_value is not None:
            by_column.setdefault(item.rule.per_value, []).append(position)
    judged = list(items)
    for col, positions in by_column.items():
        sample = f"SELECT count(DISTINCT {col}) FROM (SELECT {col} FROM {compiled.view} LIMIT {SAMPLE})"
        (found,) = con.execute(sample).fetchone() or (0,)
        if found > FEW_VALUES:
            continue
        rules = [items[p][1].rule for p in positions]
        tests = ", ".join(
            f"coalesce({rule.unexpected}, false)" for rule in rules if isinstance(rule, RowRule)
        )
        values = con.execute(
            f"SELECT {col}, {tests} FROM (SELECT DISTINCT {col} FROM {compiled.view} WHERE {col} IS NOT NULL) "
            f"LIMIT {FEW_VALUES + 1}"
        ).fetchall()
        if len(values) > FEW_VALUES:
            continue
        for offset, position in enumerate(positions):
            index, item = items[position]
            rule = item.rule
            assert isinstance(rule, RowRule)
            breaking = [quote_literal(str(value[0])) for value in values if value[offset + 1]]
            unexpected = f"{col} IN ({', '.join(breaking)})" if breaking else "false"
            judged[position] = (index, replace(item, rule=replace(rule, unexpected=unexpected)))
    return judged


def _flags(compiled: CompiledSuite, items: list[tuple[int, CompiledExpectation]], values: bool) -> str:
    """A sub-select of the view adding, per row rule i, ``_d<i>`` (in its domain), ``_m<i>``
    (missing), ``_u<i>`` (unexpected; not for rules that count on their own unless ``values``)
    and, with ``values``, ``_v<i>`` (what results show)."""
    inner = [quote_identifier(c) for c in compiled.columns]
    if compiled.ordered:
        inner.append(ROW)
    windows: dict[str, str] = {}
    for i, item in items:
        rule = item.rule
        if not isinstance(rule, RowRule):
            continue
        inner += [f"{expr} AS {alias}" for alias, expr in rule.windows.items() if alias not in windows]
        windows |= rule.windows
        inner += [f"({item.domain}) AS _d{i}", f"({rule.missing}) AS _m{i}"]
        if rule.count is None or values:
            inner.append(f"coalesce({rule.unexpected}, false) AS _u{i}")
        if values:
            inner.append(f"{rule.value} AS _v{i}")
    return f"SELECT {', '.join(inner)} FROM {compiled.view}"


def _scan(compiled: CompiledSuite, items: list[tuple[int, CompiledExpectation]]) -> str:
    """The one query that evaluates ``items``: columns ``e<i>``/``m<i>``/``u<i>`` count the rows
    in expectation i's domain, the missing and the unexpected ones; ``a<i>_<alias>`` are aggregate
    rules' aggregates."""
    outer = ["count(*) AS n"]
    for i, item in items:
        rule = item.rule
        if isinstance(rule, RowRule):
            # count_if rather than FILTER clauses: DuckDB slices every input column for each
            # filtered aggregate, which grows with the square of the suite's size.
            unexpected = (
                "0" if rule.count is not None else f"coalesce(count_if(_d{i} AND NOT _m{i} AND _u{i}), 0)"
            )
            outer += [
                f"coalesce(count_if(_d{i}), 0) AS e{i}",
                f"coalesce(count_if(_d{i} AND _m{i}), 0) AS m{i}",
                f"{unexpected} AS u{i}",
            ]
        else:
            outer += [f"{expr} AS a{i}_{alias}" for alias, expr in rule.aggregates.items()]
    return f"SELECT {', '.join(outer)} FROM ({_flags(compiled, items, values=False)})"


def _first_unexpected(
    con: duckdb.DuckDBPyConnection, compiled: CompiledSuite, i: int, item: CompiledExpectation, keep: int
) -> list[Any]:
    """The first ``keep`` unexpected values of rule i, in the relation's order: insertion order is
    kept while validating, so DuckDB stops reading once it has them. Values are wrapped in a struct so that a
    null value still reads as a row."""
    fails = f"_d{i} AND NOT _m{i} AND _u{i}"
    order = f" ORDER BY {ROW}" if compiled.ordered else ""
    sql = f"SELECT {{'v': _v{i}}} FROM ({_flags(compiled, [(i, item)], values=True)}) WHERE {fails}{order} LIMIT {keep}"
    return [r[0] for r in con.execute(sql).fetchall()]


def _culprit(
    con: duckdb.DuckDBPyConnection,
    compiled: CompiledSuite,
    items: list[tuple[int, CompiledExpectation]],
    error: duckdb.Error,
) -> Exception:
    """The scan failed: find the expectation DuckDB cannot evaluate (a regular expression RE2 does
    not read, a strftime directive DuckDB lacks…) and name it in a :class:`SuiteError`."""
    for item in items:
        try:
            con.execute(_scan(compiled, [item])).fetchall()
            con.execute(f"SELECT count(*) FROM ({_flags(compiled, [item], values=True)})").fetchall()
            rule = item[1].rule
            if isinstance(rule, RowRule) and rule.count is not None:
                con.execute(rule.count).fetchall()
        except duckdb.Error as exc:
            e = item[1].expectation
            message = str(exc).splitlines()[0]
            return SuiteError(
                compiled.suite.path,
                f"`{e.type}` cannot run: {message}",
                index=e.index,
                hint="check its arguments against the column's type; regular expressions use RE2 syntax "
                "(no lookaround, no backreferences)",
            )
    return error


def validate(
    con: duckdb.DuckDBPyConnection,
    suite: Suite,
    relation: str,
    *,
    table: str,
    run_id: str,
    result_format: ResultFormat = "SUMMARY",
    order_by: str | None = None,
) -> ValidationResult:
    """Compile and run ``suite`` against ``relation`` (any SQL relation), then drop the view."""
    compiled = compile_suite(con, suite, relation, order_by=order_by)
    try:
        return run_compiled(con, compiled, table=table, run_id=run_id, result_format=result_format)
    finally:
        release(con, compiled)


NULL_TESTS = ("expect_column_values_to_not_be_null", "expect_column_values_to_be_null")


def _map_result(
    item: CompiledExpectation, row: dict[str, Any], i: int, result_format: ResultFormat, partial_count: int
) -> ExpectationResult:
    e = item.expectation
    n, missing, unexpected = int(row[f"e{i}"]), int(row[f"m{i}"]), int(row[f"u{i}"])
    nonmissing = n - missing
    mostly = float(e.kwargs.get("mostly", 1.0))
    success = n == 0 or nonmissing == 0 or (float(nonmissing) - unexpected) / float(nonmissing) >= mostly
    if result_format == "BOOLEAN_ONLY":
        return ExpectationResult(e, success)
    values = [plain(v["v"]) for v in row.get(f"p{i}") or []]
    if isinstance(item.rule, RowRule) and item.rule.shown == "values":  # a column pair is shown as [a, b]
        values = [list(v.values()) for v in values]
    counts = None
    if result_format in ("SUMMARY", "COMPLETE") and partial_count:
        counts = _value_counts(values, partial_count)
    if e.type in NULL_TESTS:  # Great Expectations leaves the missing counts out
        return ExpectationResult(
            e,
            success,
            element_count=n,
            unexpected_count=unexpected,
            unexpected_percent=unexpected / n * 100 if n else None,
            partial_unexpected_list=tuple(values[:partial_count]),
            partial_unexpected_counts=counts,
            unexpected_list=tuple(values) if result_format == "COMPLETE" else None,
        )
    return ExpectationResult(
        e,
        success,
        element_count=n,
        unexpected_count=unexpected,
        unexpected_percent=unexpected / nonmissing * 100 if nonmissing else None,
        missing_count=missing,
        missing_percent=missing / n * 100 if n else None,
        unexpected_percent_total=unexpected / n * 100 if n else None,
        unexpected_percent_nonmissing=unexpected / nonmissing * 100 if nonmissing else None,
        partial_unexpected_list=tuple(values[:partial_count]),
        partial_unexpected_counts=counts,
        unexpected_list=tuple(values) if result_format == "COMPLETE" else None,
    )


def _observed(e: Expectation, success: bool, found: Observation | None) -> ExpectationResult:
    """An aggregate or table rule's result (``found`` None: nothing reported but the success)."""
    if found is None:
        return ExpectationResult(e, success)
    return ExpectationResult(
        e,
        success,
        unexpected_count=found.unexpected_count,
        partial_unexpected_list=found.partial_unexpected_list,
        missing_count=found.missing_count,
        observed=True,
        observed_value=found.value,
        partial_missing_list=found.partial_missing_list,
        details=found.details,
    )


def _value_counts(values: list[Any], limit: int) -> tuple[ValueCount, ...] | None:
    """Counts of the values shown, most frequent first (ties by value, nulls first); None when the
    values cannot be ordered (mixed types), as Great Expectations leaves the key out then."""
    keys = [
        tuple(v.values()) if isinstance(v, dict) else tuple(v) if isinstance(v, list) else v for v in values
    ]
    top = Counter(keys).most_common(limit)
    try:
        ordered = sorted(top, key=lambda item: (-item[1], _order(item[0])))
    except TypeError:
        return None
    return tuple(ValueCount(list(v) if isinstance(v, tuple) else v, c) for v, c in ordered)


def _order(value: Any) -> Any:
    """Sort key that puts nulls first, also inside the tuples of pair and multi-column values."""
    if isinstance(value, tuple):
        return tuple(_order(v) for v in value)
    return (False, 0) if value is None else (True, value)
