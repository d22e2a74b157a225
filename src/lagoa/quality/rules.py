"""The building blocks of expectation rules: arguments, columns, the two rule shapes, and the SQL
helpers every rule compiles with (literals typed for a column, bounds, regular expressions).

A :class:`RowRule` judges rows: SQL booleans saying which rows are *missing* (left out, like Great
Expectations' nulls) and which of the others are *unexpected*. An :class:`AggregateRule` judges the
table as a whole: SQL aggregates, then a small Python judgement of the observed values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from lagoa.core.errors import CompileError
from lagoa.core.sql import quote_identifier, quote_literal

Kind = Literal["column", "pair", "multicolumn", "aggregate", "table"]


@dataclass(frozen=True)
class Argument:
    """What an argument accepts, checked when a suite is loaded."""

    description: str
    accepts: Callable[[Any], bool]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _bound(value: Any) -> bool:
    if isinstance(value, str):  # Great Expectations reads string bounds as dates or timestamps
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return False
        return True
    return _number(value)


def _strings(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(item, str) for item in value)


IGNORE_ROW_IF = (
    "all_values_are_missing",
    "any_value_is_missing",
    "never",
    "both_values_are_missing",
    "either_value_is_missing",
    "neither",
)

ARGUMENTS: dict[str, Argument] = {
    "column": Argument("a column name", lambda v: isinstance(v, str)),
    "column_A": Argument("a column name", lambda v: isinstance(v, str)),
    "column_B": Argument("a column name", lambda v: isinstance(v, str)),
    "column_list": Argument("a list of column names", _strings),
    "column_set": Argument("a list of column names", _strings),
    "value_set": Argument("a list of values", lambda v: isinstance(v, list | tuple)),
    "mostly": Argument("a number between 0 and 1", lambda v: _number(v) and 0 <= v <= 1),
    "min_value": Argument("a number or an ISO date/time string", _bound),
    "max_value": Argument("a number or an ISO date/time string", _bound),
    "ignore_row_if": Argument(
        "one of all_values_are_missing, any_value_is_missing, never, both_values_are_missing, "
        "either_value_is_missing, neither",
        lambda v: v in IGNORE_ROW_IF,
    ),
    "column_index": Argument("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "strict_min": Argument("true or false", lambda v: isinstance(v, bool)),
    "strict_max": Argument("true or false", lambda v: isinstance(v, bool)),
    "strictly": Argument("true or false", lambda v: isinstance(v, bool)),
    "or_equal": Argument("true or false", lambda v: isinstance(v, bool)),
    "ties_okay": Argument("true or false", lambda v: isinstance(v, bool)),
    "exact_match": Argument("true or false", lambda v: isinstance(v, bool)),
    "regex": Argument("a regular expression string", lambda v: isinstance(v, str)),
    "regex_list": Argument("a list of regular expression strings", _strings),
    "match_on": Argument('"any" or "all"', lambda v: v in ("any", "all")),
    "type_": Argument("a type name", lambda v: isinstance(v, str)),
    "type_list": Argument("a list of type names", _strings),
    "strftime_format": Argument("a strftime format string", lambda v: isinstance(v, str)),
    "value": Argument("a number", _number),
    "sum_total": Argument("a number", _number),
    "row_condition": Argument("a condition string", lambda v: isinstance(v, str | dict)),
    "condition_parser": Argument(
        '"great_expectations" or "pandas"',
        lambda v: v in ("great_expectations", "great_expectations__experimental__", "pandas"),
    ),
    "result_format": Argument(
        "BOOLEAN_ONLY, BASIC, SUMMARY, COMPLETE or an object",
        lambda v: v in ("BOOLEAN_ONLY", "BASIC", "SUMMARY", "COMPLETE") or isinstance(v, dict),
    ),
}
COMMON_ARGUMENTS = (
    "row_condition",
    "condition_parser",
    "result_format",
    "catch_exceptions",
    "meta",
    "batch_id",
)
"""Arguments every expectation takes; ``catch_exceptions``, ``meta`` and ``batch_id`` are ignored."""


@dataclass(frozen=True)
class Column:
    """A column of the validated relation: name and DuckDB type."""

    name: str
    type: str

    @property
    def sql(self) -> str:
        return quote_identifier(self.name)

    @property
    def family(self) -> str:
        """numeric, string, boolean, temporal or other: decides how literals compare."""
        upper = self.type.upper()
        if upper.startswith(("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT")):
            return "numeric"
        if upper.startswith(("UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")):
            return "numeric"
        if upper in ("VARCHAR", "STRING", "TEXT"):
            return "string"
        if upper == "BOOLEAN":
            return "boolean"
        if upper.startswith(("DATE", "TIME", "TIMESTAMP")):
            return "temporal"
        return "other"


@dataclass(frozen=True)
class Context:
    """What a rule compiles against: the relation's columns, its name, the expectation's domain."""

    columns: Mapping[str, Column]
    relation: str
    domain: str = "true"
    """SQL boolean: the rows the expectation looks at (its row_condition)."""
    scratch: str = "_lagoa_scratch"
    """A name the rule may give a temporary table of its own (see ``RowRule.prepare``)."""


@dataclass(frozen=True)
class RowRule:
    """A rule judging each row. Counts: element = rows in the domain; missing = rows left out;
    unexpected = the other rows that break it."""

    missing: str
    unexpected: str
    value: str
    windows: dict[str, str] = field(default_factory=dict)
    """Window expressions the rule reads, by alias; computed in a sub-select of the scan."""
    shown: Literal["value", "values", "record"] = "value"
    """How ``value`` reads in results: one value, a struct shown as a list, or a struct shown as
    an object (multi-column rules)."""
    prepare: str | None = None
    """SQL run once before the scan, creating the temporary table that ``unexpected`` and
    ``count`` read (uniqueness rules: the repeated keys, found by one grouping)."""
    count: str | None = None
    """A query counting the unexpected rows on its own (from the prepared table), instead of
    testing every row in the scan."""
    scratch: str | None = None
    """The temporary table ``prepare`` creates; dropped with the suite's view."""
    key: tuple[str, ...] = ()
    """A uniqueness rule's key columns (SQL); ``prepare`` groups the ``kept`` rows by them."""
    kept: str = ""
    per_value: str | None = None
    """A text column whose value alone decides ``unexpected`` (a set, a pattern, a length): on a
    column of few distinct values, the rule is judged once per value (see ``validate``)."""


@dataclass(frozen=True)
class Observation:
    """What an aggregate or table rule reports: Great Expectations' ``observed_value`` and, for the
    value-set rules, the values found outside the set or missing from it (the first 20 shown)."""

    value: Any
    unexpected_count: int | None = None
    partial_unexpected_list: tuple[Any, ...] | None = None
    missing_count: int | None = None
    partial_missing_list: tuple[Any, ...] | None = None
    details: Mapping[str, Any] | None = None


Judge = Callable[[dict[str, Any]], tuple[bool, Observation | None]]
"""Observed aggregates → (success, what the result reports; None: nothing but the success)."""


@dataclass(frozen=True)
class AggregateRule:
    """A rule judging the table: ``aggregates`` (alias → SQL) are evaluated over the domain, then
    ``judge`` turns them into the success and what the result reports."""

    aggregates: dict[str, str]
    judge: Judge


Rule = RowRule | AggregateRule
Compile = Callable[[dict[str, Any], Context], Rule]


# --- SQL helpers -------------------------------------------------------------------------------


def column(kwargs: dict[str, Any], ctx: Context, key: str = "column") -> Column:
    name = kwargs[key]
    found = ctx.columns.get(name)
    if found is None:
        raise CompileError(f"column `{name}` does not exist")
    return found


def literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | Decimal):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, datetime):
        return f"TIMESTAMP {quote_literal(value.isoformat(sep=' '))}"
    if isinstance(value, date):
        return f"DATE {quote_literal(value.isoformat())}"
    return quote_literal(str(value))


def typed_literal(value: Any, col: Column) -> str | None:
    """``value`` as a literal comparable with ``col``, or None when it can never equal a value of
    the column (pandas compares 1 and "1" as different, and so does Lagoa)."""
    family = col.family
    if value is None:
        return None
    if family == "numeric":  # as in Python, True equals 1 and False equals 0
        if isinstance(value, bool):
            return literal(int(value))
        return literal(value) if _number(value) else None
    if family == "string":
        return literal(value) if isinstance(value, str) else None
    if family == "boolean":
        if isinstance(value, bool) or (_number(value) and value in (0, 1)):
            return literal(bool(value))
        return None
    if family == "temporal" and isinstance(value, str | date):
        return f"TRY_CAST({literal(value)} AS {col.type})"
    return literal(value)


def in_set(col: Column, values: list[Any]) -> str:
    literals = [text for text in (typed_literal(v, col) for v in values) if text is not None]
    return f"{col.sql} IN ({', '.join(literals)})" if literals else "false"


def bound(value: Any, col: Column | None) -> str:
    if col is not None and col.family == "temporal" and isinstance(value, str):
        return f"CAST({literal(value)} AS {col.type})"
    return literal(value)


def check_bounds(kwargs: dict[str, Any], col: Column | None) -> None:
    """Bounds must fit what they bound (``col``, or a count or length when None): numbers for
    numbers, ISO strings for dates and times, with a UTC offset exactly when the column has a time
    zone, and no time of day for a DATE. Great Expectations raises on the other combinations."""
    family = "numeric" if col is None else col.family
    for key in ("min_value", "max_value"):
        value = kwargs.get(key)
        if value is None:
            continue
        if col is None or family in ("numeric", "boolean"):
            wanted = None if _number(value) else "a number"
        elif family == "temporal":
            wanted = _temporal_bound(value, col.type.upper())
        else:
            raise CompileError(f"column `{col.name}` is {col.type}: bounds apply to numbers, dates and times")
        if wanted:
            name = f"column `{col.name}` ({col.type})" if col is not None else "a count or a length"
            raise CompileError(f"{key} {value!r} does not fit {name}; it takes {wanted}")


def _temporal_bound(value: Any, kind: str) -> str | None:
    if not isinstance(value, str):
        return "an ISO date or time string"
    parsed = datetime.fromisoformat(value)
    if kind == "DATE" and len(value) > 10:
        return "a date without a time of day"
    if "WITH TIME ZONE" in kind and parsed.tzinfo is None:
        return "a time with a UTC offset, such as 2024-01-01T00:00:00+00:00"
    if "WITH TIME ZONE" not in kind and parsed.tzinfo is not None:
        return "a time without a UTC offset"
    return None


def between(expression: str, kwargs: dict[str, Any], col: Column | None) -> str:
    """SQL: ``expression`` lies outside [min_value, max_value] (the bounds' strictness applied)."""
    check_bounds(kwargs, col)
    outside = []
    if kwargs.get("min_value") is not None:
        op = "<=" if kwargs.get("strict_min") else "<"
        outside.append(f"{expression} {op} {bound(kwargs['min_value'], col)}")
    if kwargs.get("max_value") is not None:
        op = ">=" if kwargs.get("strict_max") else ">"
        outside.append(f"{expression} {op} {bound(kwargs['max_value'], col)}")
    return "(" + " OR ".join(outside) + ")"


def within(observed: Any, kwargs: dict[str, Any]) -> bool:
    """Python twin of :func:`between` for an observed aggregate (True when inside the bounds)."""
    if observed is None:
        return False
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if isinstance(observed, datetime | date):
        low = _as_temporal(low, observed)
        high = _as_temporal(high, observed)
    if low is not None and (observed <= low if kwargs.get("strict_min") else observed < low):
        return False
    return not (high is not None and (observed >= high if kwargs.get("strict_max") else observed > high))


def _as_temporal(value: Any, like: date) -> Any:
    if not isinstance(value, str):
        return value
    parsed = datetime.fromisoformat(value)
    return parsed if isinstance(like, datetime) else parsed.date()


def needs_bounds(kwargs: dict[str, Any]) -> str | None:
    if kwargs.get("min_value") is None and kwargs.get("max_value") is None:
        return "give min_value, max_value or both"
    return ordered_bounds(kwargs)


def ordered_bounds(kwargs: dict[str, Any]) -> str | None:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None and high is not None and type(low) is type(high) and low > high:
        return f"min_value ({low}) is greater than max_value ({high})"
    return None


def two_columns(kwargs: dict[str, Any]) -> str | None:
    if len(kwargs.get("column_list") or []) < 2:
        return "column_list must name at least two columns"
    return None


def non_empty_set(kwargs: dict[str, Any]) -> str | None:
    return None if kwargs.get("value_set") else "value_set must not be empty"


# Python's \d, \w and \s match any Unicode digit, word character or space; RE2's only ASCII ones.
_UNICODE_CLASSES = {"d": r"\p{Nd}", "w": r"\p{L}\p{N}_", "s": r"\t-\r\x{1c}-\x{1f}\x{85}\p{Z}"}


def python_regex(pattern: str) -> str:
    """A Python regular expression (what Great Expectations runs) rewritten for DuckDB's RE2.

    ``\\d``, ``\\w`` and ``\\s`` (and their negations) match Unicode as in Python, ``$`` also matches
    before a final newline, and ``\\Z``, ``\\uXXXX`` are spelled the RE2 way. Anything else is kept."""
    out: list[str] = []
    multiline = re.search(r"\(\?[a-zA-Z]*m[a-zA-Z]*[):]", pattern) is not None
    in_class, first = False, -1  # inside [...]; where its content starts (a "]" there is literal)
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            code, i = pattern[i + 1], i + 2
            digits = pattern[i : i + {"u": 4, "U": 8}.get(code, 0)]
            if code in _UNICODE_CLASSES:
                out.append(_UNICODE_CLASSES[code] if in_class else f"[{_UNICODE_CLASSES[code]}]")
            elif code == "D":
                out.append(r"\P{Nd}")
            elif code in "WS" and not in_class:
                out.append(f"[^{_UNICODE_CLASSES[code.lower()]}]")
            elif code == "Z":
                out.append(r"\z")
            elif digits and len(digits) == (4 if code == "u" else 8) and re.fullmatch("[0-9a-fA-F]+", digits):
                out.append(f"\\x{{{digits}}}")
                i += len(digits)
            else:
                out.append("\\" + code)
            continue
        if in_class:
            in_class = not (char == "]" and i != first)
        elif char == "[":
            in_class, first = True, i + (2 if pattern[i + 1 : i + 2] == "^" else 1)
        elif char == "$" and not multiline:
            char = r"(?:\n?\z)"
        out.append(char)
        i += 1
    return "".join(out)


def regex_literal(pattern: str) -> str:
    return quote_literal(python_regex(pattern))


def plain(value: Any) -> Any:
    """Values as Great Expectations reports them: decimals as floats, NaN as None (also inside
    the structs and lists of pair and multi-column rules)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
