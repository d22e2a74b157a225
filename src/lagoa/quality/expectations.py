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
from typing import Any, Literal

from lagoa.core.errors import CompileError
from lagoa.core.sql import quote_literal
from lagoa.quality.rules import (
    AggregateRule,
    Column,
    Compile,
    Context,
    Kind,
    Observation,
    RowRule,
    Rule,
    between,
    column,
    in_set,
    literal,
    needs_bounds,
    non_empty_set,
    ordered_bounds,
    regex_literal,
    two_columns,
)
from lagoa.quality.table_rules import (
    column_count,
    column_exists,
    column_set,
    compound_unique,
    distinct,
    equal,
    greater,
    most_common,
    multicolumn,
    ordered_list,
    pair,
    repeats,
    row_count,
    scalar,
    sum_equal,
    unique_count,
    unique_within_record,
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
        per_value = col.sql if col.family == "string" else None
        return RowRule(f"{col.sql} IS NULL", unexpected(col, kwargs), col.sql, per_value=per_value)

    return compile


def _not_null(kwargs: dict[str, Any], ctx: Context) -> Rule:
    col = column(kwargs, ctx)
    return RowRule("false", f"{col.sql} IS NULL", col.sql)


def _null(kwargs: dict[str, Any], ctx: Context) -> Rule:
    col = column(kwargs, ctx)
    return RowRule("false", f"{col.sql} IS NOT NULL", col.sql)


def _unique(kwargs: dict[str, Any], ctx: Context) -> Rule:
    col = column(kwargs, ctx)
    return repeats([col], f"({ctx.domain}) AND {col.sql} IS NOT NULL", f"{col.sql} IS NULL", col.sql, ctx)


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

        def judge(observed: dict[str, Any]) -> tuple[bool, Observation]:
            ok = wanted is None or any(type_matches(col, name) for name in wanted)
            return ok, Observation(col.type)

        return AggregateRule({}, judge)

    return compile


# --- the registry ------------------------------------------------------------------------------

_MOSTLY = ("mostly",)
_BOUNDS = ("min_value", "max_value", "strict_min", "strict_max")


def _between_values(col: Column, kwargs: dict[str, Any]) -> str:
    return between(col.sql, kwargs, col)


def _lengths_between(col: Column, kwargs: dict[str, Any]) -> str:
    return between(_length(col), kwargs, None)


SPECS: dict[str, Spec] = {
    "expect_column_to_exist": Spec("table", ("column",), ("column_index",), column_exists),
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
    "expect_column_min_to_be_between": Spec("aggregate", ("column",), _BOUNDS, scalar("min({c}) {f}")),
    "expect_column_max_to_be_between": Spec("aggregate", ("column",), _BOUNDS, scalar("max({c}) {f}")),
    "expect_column_mean_to_be_between": Spec(
        "aggregate",
        ("column",),
        _BOUNDS,
        scalar("CAST(avg({c}) {f} AS DOUBLE)", numeric=True, temporal="sum({c}) {f} / count({c}) {f}"),
    ),
    "expect_column_median_to_be_between": Spec(
        "aggregate",
        ("column",),
        _BOUNDS,
        scalar("CAST(median({c}) {f} AS DOUBLE)", numeric=True, temporal="median({c}) {f}"),
    ),
    "expect_column_sum_to_be_between": Spec(
        "aggregate", ("column",), _BOUNDS, scalar("coalesce(sum({c}) {f}, 0)", numeric=True)
    ),
    "expect_column_stdev_to_be_between": Spec(
        "aggregate", ("column",), _BOUNDS, scalar("stddev_samp({c}) {f}", numeric=True)
    ),
    "expect_column_unique_value_count_to_be_between": Spec(
        "aggregate", ("column",), _BOUNDS, unique_count(proportion=False)
    ),
    "expect_column_proportion_of_unique_values_to_be_between": Spec(
        "aggregate", ("column",), _BOUNDS, unique_count(proportion=True)
    ),
    "expect_column_distinct_values_to_be_in_set": Spec(
        "aggregate",
        ("column", "value_set"),
        (),
        lambda k, ctx: distinct(k, ctx, "in"),
        non_empty_set,
    ),
    "expect_column_distinct_values_to_contain_set": Spec(
        "aggregate", ("column", "value_set"), (), lambda k, ctx: distinct(k, ctx, "contain")
    ),
    "expect_column_distinct_values_to_equal_set": Spec(
        "aggregate", ("column", "value_set"), (), lambda k, ctx: distinct(k, ctx, "equal")
    ),
    "expect_column_most_common_value_to_be_in_set": Spec(
        "aggregate", ("column", "value_set"), ("ties_okay",), most_common
    ),
    "expect_table_row_count_to_be_between": Spec("table", (), _BOUNDS, row_count, ordered_bounds),
    "expect_table_row_count_to_equal": Spec("table", ("value",), (), row_count),
    "expect_table_column_count_to_equal": Spec("table", ("value",), (), column_count),
    "expect_table_columns_to_match_ordered_list": Spec("table", (), ("column_list",), ordered_list),
    "expect_table_columns_to_match_set": Spec("table", (), ("column_set", "exact_match"), column_set),
    "expect_compound_columns_to_be_unique": Spec(
        "multicolumn",
        ("column_list",),
        (*_MOSTLY, "ignore_row_if"),
        compound_unique,
        two_columns,
    ),
    "expect_column_pair_values_a_to_be_greater_than_b": Spec(
        "pair", ("column_A", "column_B"), (*_MOSTLY, "or_equal", "ignore_row_if"), pair(greater)
    ),
    "expect_column_pair_values_to_be_equal": Spec(
        "pair", ("column_A", "column_B"), (*_MOSTLY, "ignore_row_if"), pair(equal)
    ),
    "expect_multicolumn_sum_to_equal": Spec(
        "multicolumn",
        ("column_list", "sum_total"),
        (*_MOSTLY, "ignore_row_if"),
        multicolumn(sum_equal),
        two_columns,
    ),
    "expect_select_column_values_to_be_unique_within_record": Spec(
        "multicolumn",
        ("column_list",),
        (*_MOSTLY, "ignore_row_if"),
        multicolumn(unique_within_record),
        two_columns,
    ),
}
