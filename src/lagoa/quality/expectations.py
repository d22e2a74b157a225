"""The expectation types Lagoa supports: their arguments, and how each compiles to a rule
(:mod:`lagoa.quality.rules`) that the validator evaluates in DuckDB.

Semantics follow Great Expectations 1.x (pandas); the differences are listed in
docs/quality-differences.md.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from lagoa.core.errors import CompileError
from lagoa.core.sql import quote_literal
from lagoa.quality.rules import (
    AggregateRule,
    Column,
    Compile,
    Context,
    Kind,
    RowRule,
    Rule,
    between,
    check_bounds,
    column,
    in_set,
    literal,
    needs_bounds,
    non_empty_set,
    ordered_bounds,
    plain,
    regex_literal,
    two_columns,
    within,
)


@dataclass(frozen=True)
class Spec:
    kind: Kind
    required: tuple[str, ...]
    optional: tuple[str, ...]
    compile: Compile
    validate: Callable[[dict[str, Any]], str | None] = lambda kwargs: None

    @property
    def ordered(self) -> bool:
        """Whether the rule compares each row with the previous one (increasing, decreasing)."""
        return self.compile in _ORDERED

    @property
    def row_level(self) -> bool:
        """Whether failing rows can be told apart (and so quarantined by ``drop``)."""
        return self.kind in ("column", "pair", "multicolumn") and self.compile not in _ORDERED

    def check(self, kwargs: dict[str, Any]) -> str | None:
        for name, value in kwargs.items():
            if isinstance(value, dict) and name not in ("row_condition", "result_format", "meta"):
                return f"argument `{name}` is a suite parameter ({value}); suite parameters are not supported"
        return self.validate(kwargs)


# --- column map rules --------------------------------------------------------------------------


def _column_rule(unexpected: Callable[[Column, dict[str, Any]], str]) -> Compile:
    """A rule over one column where nulls are missing and each other value is judged alone."""

    def compile(kwargs: dict[str, Any], ctx: Context) -> Rule:
        col = column(kwargs, ctx)
        return RowRule(f"{col.sql} IS NULL", unexpected(col, kwargs), col.sql)

    return compile


def _not_null(kwargs: dict[str, Any], ctx: Context) -> Rule:
    col = column(kwargs, ctx)
    return RowRule("false", f"{col.sql} IS NULL", col.sql)


def _null(kwargs: dict[str, Any], ctx: Context) -> Rule:
    col = column(kwargs, ctx)
    return RowRule("false", f"{col.sql} IS NOT NULL", col.sql)


def _unique(kwargs: dict[str, Any], ctx: Context) -> Rule:
    col = column(kwargs, ctx)
    return _repeats([col], f"({ctx.domain}) AND {col.sql} IS NOT NULL", f"{col.sql} IS NULL", col.sql, ctx)


def _repeats(
    columns: list[Column], kept: str, missing: str, value: str, ctx: Context, **shown: Any
) -> RowRule:
    """Rows whose key (``columns``) appears more than once among the ``kept`` rows; every copy
    counts, and nulls are equal to each other, as in pandas' ``duplicated(keep=False)``. One
    grouping writes the repeated keys to a temporary table; counting, showing and dropping rows
    then read that small table instead of grouping again."""
    keys = ", ".join(c.sql for c in columns)
    key = (
        columns[0].sql
        if len(columns) == 1
        else "struct_pack(" + ", ".join(f"{c.sql} := {c.sql}" for c in columns) + ")"
    )
    prepare = (
        f"CREATE OR REPLACE TEMP TABLE {ctx.scratch} AS SELECT {key} AS k, n FROM "
        f"(SELECT {keys}, count(*) AS n FROM {ctx.relation} WHERE {kept} GROUP BY {keys} HAVING n > 1)"
    )
    return RowRule(
        missing,
        f"{key} IN (SELECT k FROM {ctx.scratch})",
        value,
        prepare=prepare,
        count=f"SELECT coalesce(sum(n), 0) FROM {ctx.scratch}",
        scratch=ctx.scratch,
        **shown,
    )


def _text(col: Column) -> str:
    """The value as Python's ``str()`` writes it, which is what Great Expectations matches and
    measures: DuckDB writes the same text, except for booleans (``True``, not ``true``)."""
    if col.family == "boolean":
        return f"CASE WHEN {col.sql} THEN 'True' ELSE 'False' END"
    return f"CAST({col.sql} AS VARCHAR)"


def _length(col: Column) -> str:
    return f"length({_text(col)})"


def _regex_any(col: Column, patterns: list[str], match_on: str) -> str:
    """Unexpected unless the value matches any (or all) of the patterns."""
    tests = [f"regexp_matches({_text(col)}, {regex_literal(p)})" for p in patterns]
    joined = (" OR " if match_on == "any" else " AND ").join(tests) or "false"
    return f"NOT ({joined})"


def _ordered(direction: Literal["increasing", "decreasing"]) -> Compile:
    def compile(kwargs: dict[str, Any], ctx: Context) -> Rule:
        col = column(kwargs, ctx)
        previous = f"lag(CASE WHEN ({ctx.domain}) THEN {col.sql} END IGNORE NULLS) OVER (ORDER BY _lagoa_row)"
        # Named after the expression, so rules reading the same previous value share one window.
        alias = f"_lagoa_prev_{hashlib.sha1(previous.encode()).hexdigest()[:16]}"
        strict = bool(kwargs.get("strictly"))
        # The operator that makes a row unexpected, given the previous value.
        op = {"increasing": "<=" if strict else "<", "decreasing": ">=" if strict else ">"}[direction]
        return RowRule(
            f"{col.sql} IS NULL", f"coalesce({col.sql} {op} {alias}, false)", col.sql, {alias: previous}
        )

    return compile


_INCREASING = _ordered("increasing")
_DECREASING = _ordered("decreasing")
_ORDERED = (_INCREASING, _DECREASING)


def _strftime(col: Column, kwargs: dict[str, Any]) -> str:
    """Unexpected unless Python's ``datetime.strptime`` would read the value. DuckDB's strptime is
    more lenient (it skips spaces, reads "24" as a %Y year), so the text must also have the shape
    Python's strptime matches, which Python's own ``_strptime`` module spells as a regex."""
    text, fmt = f"CAST({col.sql} AS VARCHAR)", kwargs["strftime_format"]
    try:
        shape = importlib.import_module("_strptime").TimeRE().pattern(fmt)
    except (KeyError, ValueError) as exc:
        raise CompileError(
            f"strftime_format {fmt!r} is not a format Python's strptime reads ({exc})"
        ) from None
    matches = f"regexp_full_match({text}, {regex_literal('(?i)' + shape)})"
    return f"NOT ({matches} AND try_strptime({text}, {quote_literal(fmt)}) IS NOT NULL)"


# --- type names --------------------------------------------------------------------------------

TYPE_ALIASES: dict[str, tuple[str, ...]] = {
    "BOOLEAN": ("bool", "boolean", "BOOLEAN", "bool_"),
    "TINYINT": ("int8", "TINYINT"),
    "SMALLINT": ("int16", "SMALLINT"),
    "INTEGER": ("int32", "INTEGER", "INT"),
    "BIGINT": ("int64", "int", "BIGINT", "INTEGER", "Int64", "long"),
    "HUGEINT": ("HUGEINT",),
    "FLOAT": ("float32", "FLOAT", "REAL"),
    "DOUBLE": ("float64", "float", "DOUBLE", "Float64", "double"),
    "VARCHAR": ("str", "string", "object", "VARCHAR", "TEXT", "STRING"),
    "DATE": ("date", "DATE"),
    "TIMESTAMP": ("datetime64[ns]", "datetime64[us]", "datetime64", "datetime", "TIMESTAMP"),
    "TIMESTAMP WITH TIME ZONE": ("datetime64[ns, UTC]", "datetime64[us, UTC]", "TIMESTAMP WITH TIME ZONE"),
}


def type_matches(col: Column, name: str) -> bool:
    """Whether ``name`` (a DuckDB, SQL or pandas/numpy type name) names the column's type."""
    duck = col.type.upper()
    if name.upper() == duck or name.upper().split("(")[0] == duck.split("(")[0]:
        return True
    if duck.startswith("DECIMAL"):
        return name in ("decimal", "Decimal", "DECIMAL", "object")
    return name in TYPE_ALIASES.get(duck, ())


def _type_rule(names: Callable[[dict[str, Any]], list[str] | None]) -> Compile:
    def compile(kwargs: dict[str, Any], ctx: Context) -> Rule:
        col = column(kwargs, ctx)
        wanted = names(kwargs)

        def judge(observed: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
            ok = wanted is None or any(type_matches(col, name) for name in wanted)
            return ok, {"observed_value": col.type}

        return AggregateRule({}, judge)

    return compile


# --- aggregate rules ---------------------------------------------------------------------------


def _scalar(template: str, numeric: bool = False, temporal: str | None = None) -> Compile:
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

        def judge(observed: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
            value = plain(observed["v"])
            return within(value, kwargs), {"observed_value": value}

        return AggregateRule({"v": sql}, judge)

    return compile


def _distinct(kwargs: dict[str, Any], ctx: Context, test: Literal["in", "contain", "equal"]) -> Rule:
    """The distinct non-null values against ``value_set``; the lists shown hold at most 20 values."""
    col = column(kwargs, ctx)

    def judge(observed: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        found = {plain(v) for v in observed["v"] or []}
        wanted = {_comparable(v, col) for v in kwargs.get("value_set") or []}
        unexpected, missing = _sorted(found - wanted), _sorted(wanted - found)
        result: dict[str, Any] = {"observed_value": None}
        if test in ("in", "equal"):
            result |= {"unexpected_count": len(unexpected), "partial_unexpected_list": unexpected[:20]}
        if test in ("contain", "equal"):
            result |= {"missing_count": len(missing), "partial_missing_list": missing[:20]}
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


def _most_common(kwargs: dict[str, Any], ctx: Context) -> Rule:
    col = column(kwargs, ctx)
    counts = (
        f"SELECT {col.sql} AS v, count(*) AS n FROM {ctx.relation} "
        f"WHERE ({ctx.domain}) AND {col.sql} IS NOT NULL GROUP BY ALL"
    )
    modes = f"(SELECT list(v ORDER BY v) FROM ({counts}) WHERE n = (SELECT max(n) FROM ({counts})))"
    wanted = {_comparable(v, col) for v in kwargs["value_set"]}

    def judge(observed: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        found = [plain(v) for v in observed["v"] or []]
        if kwargs.get("ties_okay"):
            ok = any(v in wanted for v in found)
        else:  # any tie fails, as in Great Expectations
            ok = len(found) == 1 and found[0] in wanted
        return ok, {"observed_value": found}

    return AggregateRule({"v": modes}, judge)


def _unique_count(proportion: bool) -> Compile:
    def compile(kwargs: dict[str, Any], ctx: Context) -> Rule:
        col = column(kwargs, ctx)
        where = f"FILTER (WHERE ({ctx.domain}) AND {col.sql} IS NOT NULL)"
        check_bounds(kwargs, None)

        def judge(observed: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
            value: Any = observed["distinct"]
            if proportion:
                value = value / observed["n"] if observed["n"] else 0
            return within(value, kwargs), {"observed_value": value}

        return AggregateRule(
            {"distinct": f"count(DISTINCT {col.sql}) {where}", "n": f"count({col.sql}) {where}"}, judge
        )

    return compile


# --- table rules -------------------------------------------------------------------------------


def _row_count(kwargs: dict[str, Any], ctx: Context) -> Rule:
    check_bounds(kwargs, None)

    def judge(observed: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        n = observed["n"]
        ok = n == kwargs["value"] if "value" in kwargs else within(n, kwargs)
        return ok, {"observed_value": n}

    return AggregateRule({"n": f"count(*) FILTER (WHERE {ctx.domain})"}, judge)


def _business(ctx: Context) -> list[str]:
    """The relation's columns without Lagoa's own (``_lagoa_*``)."""
    return [name for name in ctx.columns if not name.startswith("_lagoa_")]


def _column_count(kwargs: dict[str, Any], ctx: Context) -> Rule:
    count = len(_business(ctx))
    return AggregateRule({}, lambda observed: (count == kwargs["value"], {"observed_value": count}))


def _ordered_list(kwargs: dict[str, Any], ctx: Context) -> Rule:
    found = _business(ctx)
    wanted = list(kwargs.get("column_list") or [])

    def judge(observed: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        if not wanted or found == wanted:
            return True, {"observed_value": found}
        mismatched = [
            {"Expected Column Position": i, "Expected": w, "Found": f}
            for i, (w, f) in enumerate(_zip_longest(wanted, found))
            if w != f
        ]
        return False, {"observed_value": found, "details": {"mismatched": mismatched}}

    return AggregateRule({}, judge)


def _zip_longest(a: list[str], b: list[str]) -> list[tuple[str | None, str | None]]:
    n = max(len(a), len(b))
    return [(a[i] if i < len(a) else None, b[i] if i < len(b) else None) for i in range(n)]


def _column_set(kwargs: dict[str, Any], ctx: Context) -> Rule:
    found = _business(ctx)
    wanted = set(kwargs.get("column_set") or [])
    exact = kwargs.get("exact_match", True) is True

    def judge(observed: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        unexpected = sorted(set(found) - wanted)
        missing = sorted(wanted - set(found))
        if not unexpected and not missing:
            return True, {"observed_value": sorted(found)}
        ok = not exact and not missing
        mismatched = {"unexpected": unexpected} if unexpected else {}
        mismatched |= {"missing": missing} if missing else {}
        return ok, {"observed_value": sorted(found), "details": {"mismatched": mismatched}}

    return AggregateRule({}, judge)


def _column_exists(kwargs: dict[str, Any], ctx: Context) -> Rule:
    names = _business(ctx)
    exists = kwargs["column"] in names
    index = kwargs.get("column_index")

    def judge(observed: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        ok = exists and (
            index is None or (-len(names) <= index < len(names) and names[index] == kwargs["column"])
        )
        return ok, {}

    return AggregateRule({}, judge)


# --- pair and multi-column rules ---------------------------------------------------------------


def _ignore(columns: list[Column], rule: str) -> str:
    nulls = [f"{c.sql} IS NULL" for c in columns]
    if rule in ("both_values_are_missing", "all_values_are_missing"):
        return " AND ".join(nulls)
    if rule in ("either_value_is_missing", "any_value_is_missing"):
        return " OR ".join(nulls)
    return "false"


def _pair(test: Callable[[Column, Column, dict[str, Any]], str]) -> Compile:
    def compile(kwargs: dict[str, Any], ctx: Context) -> Rule:
        a, b = column(kwargs, ctx, "column_A"), column(kwargs, ctx, "column_B")
        missing = _ignore([a, b], kwargs.get("ignore_row_if") or "both_values_are_missing")
        value = f"struct_pack(a := {a.sql}, b := {b.sql})"
        return RowRule(missing, f"coalesce(NOT ({test(a, b, kwargs)}), true)", value, shown="values")

    return compile


def _multicolumn(test: Callable[[list[Column], dict[str, Any], Context], str]) -> Compile:
    def compile(kwargs: dict[str, Any], ctx: Context) -> Rule:
        columns = [column({"c": name}, ctx, "c") for name in kwargs["column_list"]]
        missing = _ignore(columns, kwargs.get("ignore_row_if") or "all_values_are_missing")
        value = "struct_pack(" + ", ".join(f"{c.sql} := {c.sql}" for c in columns) + ")"
        return RowRule(missing, test(columns, kwargs, ctx), value, shown="record")

    return compile


def _compound_unique(kwargs: dict[str, Any], ctx: Context) -> Rule:
    columns = [column({"c": name}, ctx, "c") for name in kwargs["column_list"]]
    missing = _ignore(columns, kwargs.get("ignore_row_if") or "all_values_are_missing")
    value = "struct_pack(" + ", ".join(f"{c.sql} := {c.sql}" for c in columns) + ")"
    kept = f"({ctx.domain}) AND NOT ({missing})"
    return _repeats(columns, kept, missing, value, ctx, shown="record")


def _sum_equal(columns: list[Column], kwargs: dict[str, Any], ctx: Context) -> str:
    total = " + ".join(f"CAST({c.sql} AS DOUBLE)" for c in columns)
    return f"coalesce(({total}) <> {literal(float(kwargs['sum_total']))}, true)"


def _unique_within_record(columns: list[Column], kwargs: dict[str, Any], ctx: Context) -> str:
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


def _greater(a: Column, b: Column, kwargs: dict[str, Any]) -> str:
    if not _same_kind(a, b):
        raise CompileError(f"cannot compare `{a.name}` ({a.type}) with `{b.name}` ({b.type})")
    return f"{a.sql} {'>=' if kwargs.get('or_equal') else '>'} {b.sql}"


def _equal(a: Column, b: Column, kwargs: dict[str, Any]) -> str:
    return f"{a.sql} = {b.sql}" if _same_kind(a, b) else "false"


# --- the registry ------------------------------------------------------------------------------

_MOSTLY = ("mostly",)
_BOUNDS = ("min_value", "max_value", "strict_min", "strict_max")


def _between_values(col: Column, kwargs: dict[str, Any]) -> str:
    return between(col.sql, kwargs, col)


def _lengths_between(col: Column, kwargs: dict[str, Any]) -> str:
    return between(_length(col), kwargs, None)


SPECS: dict[str, Spec] = {
    "expect_column_to_exist": Spec("table", ("column",), ("column_index",), _column_exists),
    "expect_column_values_to_not_be_null": Spec("column", ("column",), _MOSTLY, _not_null),
    "expect_column_values_to_be_null": Spec("column", ("column",), _MOSTLY, _null),
    "expect_column_values_to_be_unique": Spec("column", ("column",), _MOSTLY, _unique),
    "expect_column_values_to_be_in_set": Spec(
        "column",
        ("column", "value_set"),
        _MOSTLY,
        _column_rule(lambda c, k: f"NOT ({in_set(c, k['value_set'])})"),
    ),
    "expect_column_values_to_not_be_in_set": Spec(
        "column", ("column", "value_set"), _MOSTLY, _column_rule(lambda c, k: in_set(c, k["value_set"]))
    ),
    "expect_column_values_to_be_between": Spec(
        "column", ("column",), (*_MOSTLY, *_BOUNDS), _column_rule(_between_values), needs_bounds
    ),
    "expect_column_values_to_match_regex": Spec(
        "column",
        ("column",),
        (*_MOSTLY, "regex"),
        _column_rule(lambda c, k: _regex_any(c, [k.get("regex", "(?s).*")], "any")),
    ),
    "expect_column_values_to_not_match_regex": Spec(
        "column",
        ("column", "regex"),
        _MOSTLY,
        _column_rule(lambda c, k: f"regexp_matches({_text(c)}, {regex_literal(k['regex'])})"),
    ),
    "expect_column_values_to_match_regex_list": Spec(
        "column",
        ("column", "regex_list"),
        (*_MOSTLY, "match_on"),
        _column_rule(lambda c, k: _regex_any(c, k["regex_list"], k.get("match_on", "any"))),
    ),
    "expect_column_values_to_be_of_type": Spec(
        "aggregate", ("column", "type_"), _MOSTLY, _type_rule(lambda k: [k["type_"]])
    ),
    "expect_column_values_to_be_in_type_list": Spec(
        "aggregate", ("column",), (*_MOSTLY, "type_list"), _type_rule(lambda k: k.get("type_list"))
    ),
    "expect_column_value_lengths_to_be_between": Spec(
        "column", ("column",), (*_MOSTLY, *_BOUNDS), _column_rule(_lengths_between), needs_bounds
    ),
    "expect_column_value_lengths_to_equal": Spec(
        "column",
        ("column", "value"),
        _MOSTLY,
        _column_rule(lambda c, k: f"{_length(c)} <> {literal(k['value'])}"),
    ),
    "expect_column_values_to_match_strftime_format": Spec(
        "column", ("column", "strftime_format"), _MOSTLY, _column_rule(_strftime)
    ),
    "expect_column_values_to_be_increasing": Spec("column", ("column",), (*_MOSTLY, "strictly"), _INCREASING),
    "expect_column_values_to_be_decreasing": Spec("column", ("column",), (*_MOSTLY, "strictly"), _DECREASING),
    "expect_column_min_to_be_between": Spec("aggregate", ("column",), _BOUNDS, _scalar("min({c}) {f}")),
    "expect_column_max_to_be_between": Spec("aggregate", ("column",), _BOUNDS, _scalar("max({c}) {f}")),
    "expect_column_mean_to_be_between": Spec(
        "aggregate",
        ("column",),
        _BOUNDS,
        _scalar("CAST(avg({c}) {f} AS DOUBLE)", numeric=True, temporal="sum({c}) {f} / count({c}) {f}"),
    ),
    "expect_column_median_to_be_between": Spec(
        "aggregate",
        ("column",),
        _BOUNDS,
        _scalar("CAST(median({c}) {f} AS DOUBLE)", numeric=True, temporal="median({c}) {f}"),
    ),
    "expect_column_sum_to_be_between": Spec(
        "aggregate", ("column",), _BOUNDS, _scalar("coalesce(sum({c}) {f}, 0)", numeric=True)
    ),
    "expect_column_stdev_to_be_between": Spec(
        "aggregate", ("column",), _BOUNDS, _scalar("stddev_samp({c}) {f}", numeric=True)
    ),
    "expect_column_unique_value_count_to_be_between": Spec(
        "aggregate", ("column",), _BOUNDS, _unique_count(proportion=False)
    ),
    "expect_column_proportion_of_unique_values_to_be_between": Spec(
        "aggregate", ("column",), _BOUNDS, _unique_count(proportion=True)
    ),
    "expect_column_distinct_values_to_be_in_set": Spec(
        "aggregate",
        ("column", "value_set"),
        (),
        lambda k, ctx: _distinct(k, ctx, "in"),
        non_empty_set,
    ),
    "expect_column_distinct_values_to_contain_set": Spec(
        "aggregate", ("column", "value_set"), (), lambda k, ctx: _distinct(k, ctx, "contain")
    ),
    "expect_column_distinct_values_to_equal_set": Spec(
        "aggregate", ("column", "value_set"), (), lambda k, ctx: _distinct(k, ctx, "equal")
    ),
    "expect_column_most_common_value_to_be_in_set": Spec(
        "aggregate", ("column", "value_set"), ("ties_okay",), _most_common
    ),
    "expect_table_row_count_to_be_between": Spec("table", (), _BOUNDS, _row_count, ordered_bounds),
    "expect_table_row_count_to_equal": Spec("table", ("value",), (), _row_count),
    "expect_table_column_count_to_equal": Spec("table", ("value",), (), _column_count),
    "expect_table_columns_to_match_ordered_list": Spec("table", (), ("column_list",), _ordered_list),
    "expect_table_columns_to_match_set": Spec("table", (), ("column_set", "exact_match"), _column_set),
    "expect_compound_columns_to_be_unique": Spec(
        "multicolumn",
        ("column_list",),
        (*_MOSTLY, "ignore_row_if"),
        _compound_unique,
        two_columns,
    ),
    "expect_column_pair_values_a_to_be_greater_than_b": Spec(
        "pair", ("column_A", "column_B"), (*_MOSTLY, "or_equal", "ignore_row_if"), _pair(_greater)
    ),
    "expect_column_pair_values_to_be_equal": Spec(
        "pair", ("column_A", "column_B"), (*_MOSTLY, "ignore_row_if"), _pair(_equal)
    ),
    "expect_multicolumn_sum_to_equal": Spec(
        "multicolumn",
        ("column_list", "sum_total"),
        (*_MOSTLY, "ignore_row_if"),
        _multicolumn(_sum_equal),
        two_columns,
    ),
    "expect_select_column_values_to_be_unique_within_record": Spec(
        "multicolumn",
        ("column_list",),
        (*_MOSTLY, "ignore_row_if"),
        _multicolumn(_unique_within_record),
        two_columns,
    ),
}
