"""Expectation rules over a whole relation: aggregates (a mean, distinct values, the row count),
the table's columns, and rules across two or more columns. Column-by-column rules and the
registry of expectation types are in :mod:`lagoa.quality.expectations`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from lagoa.core.errors import CompileError
from lagoa.quality.rules import (
    AggregateRule,
    Column,
    Compile,
    Context,
    Observation,
    RowRule,
    Rule,
    check_bounds,
    column,
    literal,
    plain,
    within,
)


def repeats(
    columns: list[Column], kept: str, missing: str, value: str, ctx: Context, **shown: Any
) -> RowRule:
    """Rows whose key (``columns``) appears more than once among the ``kept`` rows; every copy
    counts, and nulls are equal to each other, as in pandas' ``duplicated(keep=False)``. One
    grouping writes the repeated keys to a temporary table; counting, showing and dropping rows
    then read that small table instead of grouping again."""
    sqls = tuple(c.sql for c in columns)
    return RowRule(
        missing,
        f"{key_sql(sqls)} IN (SELECT k FROM {ctx.scratch})",
        value,
        prepare=grouping(sqls, ctx.relation, kept, ctx.scratch),
        count=f"SELECT coalesce(sum(n), 0) FROM {ctx.scratch}",
        scratch=ctx.scratch,
        key=sqls,
        kept=kept,
        **shown,
    )


def key_sql(columns: tuple[str, ...]) -> str:
    """One value per row for the key ``columns`` (a struct of several)."""
    return (
        columns[0] if len(columns) == 1 else "struct_pack(" + ", ".join(f"{c} := {c}" for c in columns) + ")"
    )


def grouping(columns: tuple[str, ...], relation: str, kept: str, scratch: str) -> str:
    """SQL writing the keys that repeat among the ``kept`` rows, with their counts, to ``scratch``."""
    keys = ", ".join(columns)
    return (
        f"CREATE OR REPLACE TEMP TABLE {scratch} AS SELECT {key_sql(columns)} AS k, n FROM "
        f"(SELECT {keys}, count(*) AS n FROM {relation} WHERE {kept} GROUP BY {keys} HAVING n > 1)"
    )


# --- aggregate rules ---------------------------------------------------------------------------


def scalar(template: str, numeric: bool = False, temporal: str | None = None) -> Compile:
    """``expect_column_<stat>_to_be_between``: one aggregate over the domain's non-null values.
    ``template`` names the column ``{c}`` and the aggregate's filter clause ``{f}``. A ``numeric``
    aggregate reads booleans as 0 and 1, as pandas does. ``temporal``, when given, is the template
    for dates and times: it reads microseconds since the epoch, and its result is truncated to a
    whole microsecond as pandas does."""

    def compile(kwargs: dict[str, Any], ctx: Context) -> Rule:
        col = column(kwargs, ctx)
        f = f"FILTER (WHERE {ctx.domain})"
        if numeric and temporal and col.type.upper().startswith(("DATE", "TIMESTAMP")):
            micros = f"CAST(trunc({temporal.format(c=f'epoch_us({col.sql})', f=f)}) AS BIGINT)"
            utc = "WITH TIME ZONE" in col.type.upper()
            sql = f"timezone('UTC', make_timestamp({micros}))" if utc else f"make_timestamp({micros})"
        elif numeric and col.family not in ("numeric", "boolean"):
            needs = "numbers, dates or timestamps" if temporal else "numbers"
            raise CompileError(f"column `{col.name}` is {col.type}; this expectation needs {needs}")
        else:
            value = f"CAST({col.sql} AS INTEGER)" if numeric and col.family == "boolean" else col.sql
            sql = template.format(c=value, f=f)

        check_bounds(kwargs, col)

        def judge(observed: dict[str, Any]) -> tuple[bool, Observation]:
            value = plain(observed["v"])
            return within(value, kwargs), Observation(value)

        return AggregateRule({"v": sql}, judge)

    return compile


def distinct(kwargs: dict[str, Any], ctx: Context, test: Literal["in", "contain", "equal"]) -> Rule:
    """The distinct non-null values against ``value_set``; the lists shown hold at most 20 values."""
    col = column(kwargs, ctx)

    def judge(observed: dict[str, Any]) -> tuple[bool, Observation]:
        found = {plain(v) for v in observed["v"] or []}
        wanted = {_comparable(v, col) for v in kwargs.get("value_set") or []}
        unexpected, missing = _sorted(found - wanted), _sorted(wanted - found)
        shows_unexpected, shows_missing = test in ("in", "equal"), test in ("contain", "equal")
        result = Observation(
            None,
            unexpected_count=len(unexpected) if shows_unexpected else None,
            partial_unexpected_list=tuple(unexpected[:20]) if shows_unexpected else None,
            missing_count=len(missing) if shows_missing else None,
            partial_missing_list=tuple(missing[:20]) if shows_missing else None,
        )
        ok = (test == "contain" or not unexpected) and (test == "in" or not missing)
        return ok, result

    where = f"FILTER (WHERE ({ctx.domain}) AND {col.sql} IS NOT NULL)"
    return AggregateRule({"v": f"list(DISTINCT {col.sql}) {where}"}, judge)


def _sorted(values: set[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:  # values of mixed types
        return sorted(values, key=repr)


def _comparable(value: Any, col: Column) -> Any:
    if col.family == "temporal" and isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        return parsed.date() if col.type.upper() == "DATE" else parsed
    return value


def most_common(kwargs: dict[str, Any], ctx: Context) -> Rule:
    col = column(kwargs, ctx)
    counts = (
        f"SELECT {col.sql} AS v, count(*) AS n FROM {ctx.relation} "
        f"WHERE ({ctx.domain}) AND {col.sql} IS NOT NULL GROUP BY ALL"
    )
    modes = f"(SELECT list(v ORDER BY v) FROM ({counts}) WHERE n = (SELECT max(n) FROM ({counts})))"
    wanted = {_comparable(v, col) for v in kwargs["value_set"]}

    def judge(observed: dict[str, Any]) -> tuple[bool, Observation]:
        found = [plain(v) for v in observed["v"] or []]
        if kwargs.get("ties_okay"):
            ok = any(v in wanted for v in found)
        else:  # any tie fails, as in Great Expectations
            ok = len(found) == 1 and found[0] in wanted
        return ok, Observation(found)

    return AggregateRule({"v": modes}, judge)


def unique_count(proportion: bool) -> Compile:
    def compile(kwargs: dict[str, Any], ctx: Context) -> Rule:
        col = column(kwargs, ctx)
        where = f"FILTER (WHERE ({ctx.domain}) AND {col.sql} IS NOT NULL)"
        check_bounds(kwargs, None)

        def judge(observed: dict[str, Any]) -> tuple[bool, Observation]:
            value: Any = observed["distinct"]
            if proportion:
                value = value / observed["n"] if observed["n"] else 0
            return within(value, kwargs), Observation(value)

        return AggregateRule(
            {"distinct": f"count(DISTINCT {col.sql}) {where}", "n": f"count({col.sql}) {where}"}, judge
        )

    return compile


# --- table rules -------------------------------------------------------------------------------


def row_count(kwargs: dict[str, Any], ctx: Context) -> Rule:
    check_bounds(kwargs, None)

    def judge(observed: dict[str, Any]) -> tuple[bool, Observation]:
        n = observed["n"]
        ok = n == kwargs["value"] if "value" in kwargs else within(n, kwargs)
        return ok, Observation(n)

    return AggregateRule({"n": f"count(*) FILTER (WHERE {ctx.domain})"}, judge)


def _business(ctx: Context) -> list[str]:
    """The relation's columns without Lagoa's own (``_lagoa_*``)."""
    return [name for name in ctx.columns if not name.startswith("_lagoa_")]


def column_count(kwargs: dict[str, Any], ctx: Context) -> Rule:
    count = len(_business(ctx))
    return AggregateRule({}, lambda observed: (count == kwargs["value"], Observation(count)))


def ordered_list(kwargs: dict[str, Any], ctx: Context) -> Rule:
    found = _business(ctx)
    wanted = list(kwargs.get("column_list") or [])

    def judge(observed: dict[str, Any]) -> tuple[bool, Observation]:
        if not wanted or found == wanted:
            return True, Observation(found)
        mismatched = [
            {"Expected Column Position": i, "Expected": w, "Found": f}
            for i, (w, f) in enumerate(_zip_longest(wanted, found))
            if w != f
        ]
        return False, Observation(found, details={"mismatched": mismatched})

    return AggregateRule({}, judge)


def _zip_longest(a: list[str], b: list[str]) -> list[tuple[str | None, str | None]]:
    n = max(len(a), len(b))
    return [(a[i] if i < len(a) else None, b[i] if i < len(b) else None) for i in range(n)]


def column_set(kwargs: dict[str, Any], ctx: Context) -> Rule:
    found = _business(ctx)
    wanted = set(kwargs.get("column_set") or [])
    exact = kwargs.get("exact_match", True) is True

    def judge(observed: dict[str, Any]) -> tuple[bool, Observation]:
        unexpected = sorted(set(found) - wanted)
        missing = sorted(wanted - set(found))
        if not unexpected and not missing:
            return True, Observation(sorted(found))
        ok = not exact and not missing
        mismatched = {"unexpected": unexpected} if unexpected else {}
        mismatched |= {"missing": missing} if missing else {}
        return ok, Observation(sorted(found), details={"mismatched": mismatched})

    return AggregateRule({}, judge)


def column_exists(kwargs: dict[str, Any], ctx: Context) -> Rule:
    names = _business(ctx)
    exists = kwargs["column"] in names
    index = kwargs.get("column_index")

    def judge(observed: dict[str, Any]) -> tuple[bool, None]:
        ok = exists and (
            index is None or (-len(names) <= index < len(names) and names[index] == kwargs["column"])
        )
        return ok, None

    return AggregateRule({}, judge)


# --- pair and multi-column rules ---------------------------------------------------------------


def _ignore(columns: list[Column], rule: str) -> str:
    nulls = [f"{c.sql} IS NULL" for c in columns]
    if rule in ("both_values_are_missing", "all_values_are_missing"):
        return " AND ".join(nulls)
    if rule in ("either_value_is_missing", "any_value_is_missing"):
        return " OR ".join(nulls)
    return "false"


def pair(test: Callable[[Column, Column, dict[str, Any]], str]) -> Compile:
    def compile(kwargs: dict[str, Any], ctx: Context) -> Rule:
        a, b = column(kwargs, ctx, "column_A"), column(kwargs, ctx, "column_B")
        missing = _ignore([a, b], kwargs.get("ignore_row_if") or "both_values_are_missing")
        value = f"struct_pack(a := {a.sql}, b := {b.sql})"
        return RowRule(missing, f"coalesce(NOT ({test(a, b, kwargs)}), true)", value, shown="values")

    return compile


def multicolumn(test: Callable[[list[Column], dict[str, Any], Context], str]) -> Compile:
    def compile(kwargs: dict[str, Any], ctx: Context) -> Rule:
        columns = [column({"c": name}, ctx, "c") for name in kwargs["column_list"]]
        missing = _ignore(columns, kwargs.get("ignore_row_if") or "all_values_are_missing")
        value = "struct_pack(" + ", ".join(f"{c.sql} := {c.sql}" for c in columns) + ")"
        return RowRule(missing, test(columns, kwargs, ctx), value, shown="record")

    return compile


def compound_unique(kwargs: dict[str, Any], ctx: Context) -> Rule:
    columns = [column({"c": name}, ctx, "c") for name in kwargs["column_list"]]
    missing = _ignore(columns, kwargs.get("ignore_row_if") or "all_values_are_missing")
    value = "struct_pack(" + ", ".join(f"{c.sql} := {c.sql}" for c in columns) + ")"
    kept = f"({ctx.domain}) AND NOT ({missing})"
    return repeats(columns, kept, missing, value, ctx, shown="record")


def sum_equal(columns: list[Column], kwargs: dict[str, Any], ctx: Context) -> str:
    total = " + ".join(f"CAST({c.sql} AS DOUBLE)" for c in columns)
    return f"coalesce(({total}) <> {literal(float(kwargs['sum_total']))}, true)"


def unique_within_record(columns: list[Column], kwargs: dict[str, Any], ctx: Context) -> str:
    """A value repeats within the row; like pandas' ``nunique(dropna=False)``, two nulls repeat."""
    if all(c.family in ("numeric", "boolean") for c in columns):
        items = [f"CAST({c.sql} AS DOUBLE)" for c in columns]
    else:  # compared as text, tagged by kind so that 1 and "1" stay different
        items = [
            f"'n:' || CAST(CAST({c.sql} AS DOUBLE) AS VARCHAR)"
            if c.family in ("numeric", "boolean")
            else f"'{c.family}:' || CAST({c.sql} AS VARCHAR)"
            for c in columns
        ]
    values = "[" + ", ".join(items) + "]"
    nulls = " + ".join(f"CAST({c.sql} IS NULL AS INTEGER)" for c in columns)
    return f"len(list_distinct({values})) + least({nulls}, 1) < {len(columns)}"


def _same_kind(a: Column, b: Column) -> bool:
    """Whether values of the two columns can be compared; pandas never finds 1 equal to "1"."""
    return a.family == b.family or "other" in (a.family, b.family)


def greater(a: Column, b: Column, kwargs: dict[str, Any]) -> str:
    if not _same_kind(a, b):
        raise CompileError(f"cannot compare `{a.name}` ({a.type}) with `{b.name}` ({b.type})")
    return f"{a.sql} {'>=' if kwargs.get('or_equal') else '>'} {b.sql}"


def equal(a: Column, b: Column, kwargs: dict[str, Any]) -> str:
    return f"{a.sql} = {b.sql}" if _same_kind(a, b) else "false"
