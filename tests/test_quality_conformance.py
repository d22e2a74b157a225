"""Lagoa's quality rules agree with Great Expectations.

The same suite runs on the same generated data through real Great Expectations (pandas engine,
result format SUMMARY) and through Lagoa (DuckDB). Every case must give the same success, and the
same counts, partial lists or observed values. Behaviours where Lagoa deliberately differs are
listed in docs/quality-differences.md and are not asserted here.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import random
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from lagoa.core.errors import SuiteError
from lagoa.quality.expectations import SPECS
from lagoa.quality.outcome import ge_document
from lagoa.quality.suite import parse_suite
from lagoa.quality.validate import validate

GX_VERSION = "1.24.1"
ROWS = 300

# --- the data ----------------------------------------------------------------------------------


def _columns() -> dict[str, list[Any]]:
    """Seeded columns with the edge cases the rules need: ``id`` mostly increasing with ties and
    drops; ``amount`` with nulls, zeros, negatives, huge and tiny numbers; ``name`` with nulls, empty
    and padded text, Unicode and number-like text; a low-cardinality ``category``; ``grade`` with a
    tie for the most common value; timestamps with and without a time zone, dates, date-like text
    for strftime; and ``a``/``b`` and ``x``/``y``/``z`` with nulls in every pattern for the pair and
    multi-column rules."""
    rng = random.Random(20240501)
    ids, level = [], 0
    for i in range(ROWS):
        if i % 41 == 40:
            level -= 7  # a drop: the only rows that break "increasing"
        elif i % 17 != 16:  # every 17th row repeats the previous value: a tie
            level += rng.randint(1, 5)
        ids.append(level)
    edges = [0.0, -0.0, -1.5, -1000.25, 1e15, 1e-12, -1e-12, 3.0, 123456789.125]

    def money() -> float | None:
        if rng.random() < 0.12:
            return None
        return rng.choice(edges) if rng.random() < 0.2 else round(rng.uniform(-50, 500), 2)

    amount = [money() for _ in range(ROWS)]
    words = [
        "alpha",
        "Beta",
        "",
        "ção",
        "日本語",
        "1",
        "01",
        "a b",
        " padded ",
        "e\u0301",
        "abc123",
        "ALPHA",
        "10",
        "tail\n",  # a final newline: Python's $ matches before it
        "a\u00a0b",  # a no-break space: Python's \s matches it
        "٣",  # an Arabic-Indic digit: Python's \d matches it
    ]
    name = [None if rng.random() < 0.1 else rng.choice(words) for _ in range(ROWS)]
    category = [
        None if rng.random() < 0.05 else rng.choices(["red", "green", "blue"], [5, 3, 2])[0]
        for _ in range(ROWS)
    ]
    grade = [None if i % 10 == 9 else "ABCD"[i % 4] for i in range(ROWS)]  # A and C tie for most common
    start = datetime(2024, 1, 1)
    ts = [
        None
        if rng.random() < 0.1
        else start + timedelta(minutes=rng.randint(0, 60 * 24 * 90), seconds=rng.choice([0, 30]))
        for _ in range(ROWS)
    ]
    day_texts = [
        "2024-01-05",
        "2024-1-5",
        "2024-02-30",
        "2024-02-29",
        "2023-02-29",
        " 2024-01-05",
        "2024-01-05 ",
        "2024-01-31 10:00",
        "05/01/2024",
        "",
        "24-01-05",
        "2024-12-31",
    ]
    day = [None if rng.random() < 0.08 else rng.choice(day_texts) for _ in range(ROWS)]
    flag = [rng.random() < 0.4 for _ in range(ROWS)]
    due = [
        None if t is None or rng.random() < 0.1 else t + timedelta(hours=rng.randint(-48, 240)) for t in ts
    ]
    stamped = [None if t is None else t.replace(tzinfo=UTC) + timedelta(seconds=i) for i, t in enumerate(ts)]
    dates = [None if rng.random() < 0.1 else date(2024, 1, 1) + timedelta(days=i // 3) for i in range(ROWS)]
    price = [round(rng.uniform(0, 10), 1) if rng.random() < 0.95 else None for _ in range(ROWS)]
    a: list[float | None] = []
    b: list[float | None] = []
    for i in range(ROWS):
        x = float(rng.randint(0, 20))
        pattern = i % 7
        a.append(
            None
            if pattern in (0, 1)
            else x + (1 if pattern == 4 else rng.randint(1, 9) if pattern == 6 else 0)
        )
        b.append(None if pattern in (0, 2) else x + (1 if pattern == 5 else 0))
    x_col: list[int | None] = []
    y_col: list[int | None] = []
    z_col: list[int | None] = []
    for i in range(ROWS):
        values: list[int | None] = [rng.randint(0, 3) for _ in range(3)]
        pattern = i % 9
        if pattern == 0:
            values = [None, None, None]
        elif pattern in (1, 2):
            values[pattern] = None
        elif pattern == 3:
            values[0] = values[1] = None
        elif pattern == 4:
            values = [1, 2, 3]  # repeated records, summing to 6
        x_col.append(values[0])
        y_col.append(values[1])
        z_col.append(values[2])
    return {
        "id": ids,
        "amount": amount,
        "name": name,
        "category": category,
        "grade": grade,
        "ts": ts,
        "day": day,
        "flag": flag,
        "due": due,
        "stamped": stamped,
        "dates": dates,
        "unit price": price,
        "a": a,
        "b": b,
        "x": x_col,
        "y": y_col,
        "z": z_col,
    }


COLUMNS = _columns()
TYPES = {
    "id": pa.int64(),
    "amount": pa.float64(),
    "name": pa.string(),
    "category": pa.string(),
    "grade": pa.string(),
    "ts": pa.timestamp("us"),
    "day": pa.string(),
    "flag": pa.bool_(),
    "due": pa.timestamp("us"),
    "stamped": pa.timestamp("us", tz="UTC"),
    "dates": pa.date32(),
    "unit price": pa.float64(),
    "a": pa.float64(),
    "b": pa.float64(),
    "x": pa.int64(),
    "y": pa.int64(),
    "z": pa.int64(),
}
TABLE = pa.table({name: pa.array(values, TYPES[name]) for name, values in COLUMNS.items()})


def _ratio(column: str, ok: Callable[[Any], bool]) -> float:
    """The share of non-null values of ``column`` for which ``ok`` holds, computed as Great
    Expectations computes it: a ``mostly`` right at the boundary."""
    values = [v for v in COLUMNS[column] if v is not None]
    bad = sum(1 for v in values if not ok(v))
    return (float(len(values)) - bad) / float(len(values))


def _not_null_ratio(column: str) -> float:
    values = COLUMNS[column]
    return (len(values) - values.count(None)) / len(values)


IN_COLORS = _ratio("category", lambda v: v in ("red", "green"))
AMOUNT_RANGE = _ratio("amount", lambda v: -50 <= v <= 500)
AMOUNT_PRESENT = _not_null_ratio("amount")


def _pair_ratio() -> float:
    """``mostly`` boundary of a > b, rows where both are null left out."""
    pairs = [
        (a, b) for a, b in zip(COLUMNS["a"], COLUMNS["b"], strict=True) if a is not None or b is not None
    ]
    bad = sum(1 for a, b in pairs if a is None or b is None or not a > b)
    return (float(len(pairs)) - bad) / float(len(pairs))


def _sum_ratio() -> float:
    """``mostly`` boundary of x + y + z == 6, rows where all are null left out."""
    rows = [r for r in zip(COLUMNS["x"], COLUMNS["y"], COLUMNS["z"], strict=True) if r != (None, None, None)]
    bad = sum(1 for r in rows if None in r or sum(r) != 6)
    return (float(len(rows)) - bad) / float(len(rows))


GREATER = _pair_ratio()
SUM_SIX = _sum_ratio()
FIRST_TS = next(t for t in COLUMNS["ts"] if t is not None)
PAST = 1e-9
"""Added to a boundary ``mostly``: just past it, so the expectation fails."""

# --- the cases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    type: str
    kwargs: dict[str, Any]

    def __str__(self) -> str:
        return self.name


def _cmp(column: str, operator: str, parameter: Any) -> dict[str, Any]:
    return {"type": "comparison", "column": {"name": column}, "operator": operator, "parameter": parameter}


RED = {"row_condition": _cmp("category", "==", "red")}
LEGACY_POSITIVE = {"row_condition": 'col("amount")>0', "condition_parser": "great_expectations"}
LEGACY_NOT_NULL = {"row_condition": 'col("name").notNull()', "condition_parser": "great_expectations"}
LEGACY_NOT_EQUAL = {"row_condition": 'col("category")!="red"', "condition_parser": "great_expectations"}
PANDAS_QUERY = {"row_condition": 'category != "blue" and amount > -5', "condition_parser": "pandas"}
PANDAS_IN = {"row_condition": 'grade in ["A", "B"] or id < 50', "condition_parser": "pandas"}
NOT_RED = {"row_condition": _cmp("category", "!=", "red")}
NOT_IN = {"row_condition": _cmp("category", "NOT_IN", ["red", "blue"])}
AND_OR = {
    "row_condition": {
        "type": "or",
        "conditions": [
            {"type": "and", "conditions": [_cmp("amount", ">=", 0), _cmp("flag", "==", True)]},
            {"type": "nullity", "column": {"name": "name"}, "is_null": True},
        ],
    }
}
LATE = {"row_condition": _cmp("ts", ">", "2024-02-15")}
PURPLE = {"row_condition": _cmp("category", "==", "purple")}  # no row
NULL_AMOUNT = {"row_condition": {"type": "nullity", "column": {"name": "amount"}, "is_null": True}}
PANDAS_NOT = {"row_condition": "~(amount > 0) or not (grade == 'A')", "condition_parser": "pandas"}
PANDAS_FLAG = {"row_condition": "flag & (a >= b)", "condition_parser": "pandas"}
PANDAS_COLUMNS = {"row_condition": "a != b and `unit price` < 5", "condition_parser": "pandas"}
PANDAS_CHAINED = {"row_condition": "0 < amount <= 100 and name.notnull()", "condition_parser": "pandas"}
NO_PARSER = {"row_condition": "ts > '2024-02-01'"}
LEGACY_DATE = {"row_condition": 'col("ts")>=date("2024-02-01")', "condition_parser": "great_expectations"}

_CASES: list[tuple[str, str, dict[str, Any]]] = [
    # column existence and table shape
    ("exists", "expect_column_to_exist", {"column": "amount"}),
    ("exists_missing", "expect_column_to_exist", {"column": "Amount"}),
    ("exists_index", "expect_column_to_exist", {"column": "name", "column_index": 2}),
    ("exists_wrong_index", "expect_column_to_exist", {"column": "name", "column_index": 3}),
    ("exists_negative_index", "expect_column_to_exist", {"column": "z", "column_index": -1}),
    ("exists_index_out_of_range", "expect_column_to_exist", {"column": "z", "column_index": 40}),
    ("column_count", "expect_table_column_count_to_equal", {"value": len(COLUMNS)}),
    ("column_count_wrong", "expect_table_column_count_to_equal", {"value": 3}),
    ("ordered_list", "expect_table_columns_to_match_ordered_list", {"column_list": list(COLUMNS)}),
    (
        "ordered_list_swapped",
        "expect_table_columns_to_match_ordered_list",
        {"column_list": ["amount", "id", *list(COLUMNS)[2:], "extra"]},
    ),
    ("column_set", "expect_table_columns_to_match_set", {"column_set": sorted(COLUMNS)}),
    ("column_set_subset_exact", "expect_table_columns_to_match_set", {"column_set": ["id", "name"]}),
    (
        "column_set_subset",
        "expect_table_columns_to_match_set",
        {"column_set": ["id", "name"], "exact_match": False},
    ),
    (
        "column_set_missing",
        "expect_table_columns_to_match_set",
        {"column_set": ["id", "name", "nope"], "exact_match": False},
    ),
    ("row_count_between", "expect_table_row_count_to_be_between", {"min_value": ROWS, "max_value": ROWS}),
    ("row_count_strict", "expect_table_row_count_to_be_between", {"min_value": ROWS, "strict_min": True}),
    (
        "row_count_strict_max",
        "expect_table_row_count_to_be_between",
        {"max_value": ROWS + 1, "strict_max": True},
    ),
    (
        "row_count_condition",
        "expect_table_row_count_to_be_between",
        {"min_value": 100, "max_value": 200, **RED},
    ),
    ("row_count_equal", "expect_table_row_count_to_equal", {"value": ROWS}),
    ("row_count_equal_condition", "expect_table_row_count_to_equal", {"value": ROWS, **LEGACY_NOT_EQUAL}),
    # nulls
    ("not_null", "expect_column_values_to_not_be_null", {"column": "amount"}),
    (
        "not_null_at_mostly",
        "expect_column_values_to_not_be_null",
        {"column": "amount", "mostly": AMOUNT_PRESENT},
    ),
    (
        "not_null_past_mostly",
        "expect_column_values_to_not_be_null",
        {"column": "amount", "mostly": AMOUNT_PRESENT + PAST},
    ),
    ("not_null_strings", "expect_column_values_to_not_be_null", {"column": "name"}),
    ("not_null_timestamps", "expect_column_values_to_not_be_null", {"column": "ts", "mostly": 0.5}),
    ("not_null_full", "expect_column_values_to_not_be_null", {"column": "id"}),
    ("not_null_condition", "expect_column_values_to_not_be_null", {"column": "name", **LEGACY_NOT_NULL}),
    ("be_null", "expect_column_values_to_be_null", {"column": "ts"}),
    ("be_null_mostly", "expect_column_values_to_be_null", {"column": "x", "mostly": 0.1}),
    ("be_null_condition", "expect_column_values_to_be_null", {"column": "a", **NOT_IN}),
    # unique
    ("unique_ids", "expect_column_values_to_be_unique", {"column": "id"}),
    ("unique_strings", "expect_column_values_to_be_unique", {"column": "name", "mostly": 0.01}),
    ("unique_floats", "expect_column_values_to_be_unique", {"column": "amount"}),
    ("unique_timestamps", "expect_column_values_to_be_unique", {"column": "ts"}),
    ("unique_condition", "expect_column_values_to_be_unique", {"column": "name", **PANDAS_QUERY}),
    # sets
    (
        "in_set",
        "expect_column_values_to_be_in_set",
        {"column": "category", "value_set": ["red", "green", "blue"]},
    ),
    (
        "in_set_two",
        "expect_column_values_to_be_in_set",
        {"column": "category", "value_set": ["red", "green"]},
    ),
    (
        "in_set_at_mostly",
        "expect_column_values_to_be_in_set",
        {"column": "category", "value_set": ["red", "green"], "mostly": IN_COLORS},
    ),
    (
        "in_set_past_mostly",
        "expect_column_values_to_be_in_set",
        {"column": "category", "value_set": ["red", "green"], "mostly": IN_COLORS + PAST},
    ),
    ("in_set_empty", "expect_column_values_to_be_in_set", {"column": "grade", "value_set": []}),
    (
        "in_set_number_strings",
        "expect_column_values_to_be_in_set",
        {"column": "name", "value_set": ["1", 1, 10]},
    ),
    (
        "in_set_numbers",
        "expect_column_values_to_be_in_set",
        {"column": "amount", "value_set": [0, 3, -1.5, 1e15]},
    ),
    ("in_set_ints", "expect_column_values_to_be_in_set", {"column": "x", "value_set": [0, 1.0, "2"]}),
    (
        "in_set_unicode",
        "expect_column_values_to_be_in_set",
        {"column": "name", "value_set": ["ção", "日本語", ""]},
    ),
    ("in_set_booleans", "expect_column_values_to_be_in_set", {"column": "flag", "value_set": [True]}),
    (
        "in_set_condition",
        "expect_column_values_to_be_in_set",
        {"column": "grade", "value_set": ["A"], **PANDAS_IN},
    ),
    ("not_in_set", "expect_column_values_to_not_be_in_set", {"column": "name", "value_set": ["", "01"]}),
    (
        "not_in_set_numbers",
        "expect_column_values_to_not_be_in_set",
        {"column": "amount", "value_set": [0, -1e-12]},
    ),
    ("not_in_set_empty", "expect_column_values_to_not_be_in_set", {"column": "name", "value_set": []}),
    (
        "not_in_set_timestamps",
        "expect_column_values_to_not_be_in_set",
        {"column": "ts", "value_set": [FIRST_TS.isoformat(), "2025-01-01"]},
    ),
    (
        "not_in_set_condition",
        "expect_column_values_to_not_be_in_set",
        {"column": "category", "value_set": ["blue"], **NOT_RED},
    ),
    # between
    (
        "between",
        "expect_column_values_to_be_between",
        {"column": "amount", "min_value": -50, "max_value": 500},
    ),
    (
        "between_at_mostly",
        "expect_column_values_to_be_between",
        {"column": "amount", "min_value": -50, "max_value": 500, "mostly": AMOUNT_RANGE},
    ),
    (
        "between_past_mostly",
        "expect_column_values_to_be_between",
        {"column": "amount", "min_value": -50, "max_value": 500, "mostly": AMOUNT_RANGE + PAST},
    ),
    ("between_min_only", "expect_column_values_to_be_between", {"column": "amount", "min_value": 0}),
    (
        "between_strict_min",
        "expect_column_values_to_be_between",
        {"column": "amount", "min_value": 0, "strict_min": True},
    ),
    ("between_max_only", "expect_column_values_to_be_between", {"column": "amount", "max_value": 3.0}),
    (
        "between_strict_max",
        "expect_column_values_to_be_between",
        {"column": "amount", "max_value": 3.0, "strict_max": True, "mostly": 0.5},
    ),
    (
        "between_ints_strict",
        "expect_column_values_to_be_between",
        {"column": "x", "min_value": 0, "max_value": 3, "strict_min": True, "strict_max": True},
    ),
    (
        "between_timestamps",
        "expect_column_values_to_be_between",
        {"column": "ts", "min_value": "2024-01-15T00:00:00", "max_value": "2024-03-01T12:30:00"},
    ),
    (
        "between_condition",
        "expect_column_values_to_be_between",
        {"column": "amount", "min_value": 0, "max_value": 100, **LEGACY_POSITIVE},
    ),
    # regular expressions
    ("regex", "expect_column_values_to_match_regex", {"column": "name", "regex": "^[a-z]+$"}),
    ("regex_unanchored", "expect_column_values_to_match_regex", {"column": "name", "regex": "a"}),
    ("regex_default", "expect_column_values_to_match_regex", {"column": "name"}),
    ("regex_digits", "expect_column_values_to_match_regex", {"column": "name", "regex": r"^\d+$"}),
    (
        "regex_word",
        "expect_column_values_to_match_regex",
        {"column": "name", "regex": r"^\w+$", "mostly": 0.4},
    ),
    ("regex_space", "expect_column_values_to_match_regex", {"column": "name", "regex": r"\s"}),
    ("regex_floats", "expect_column_values_to_match_regex", {"column": "amount", "regex": r"\.\d$"}),
    ("regex_ints", "expect_column_values_to_match_regex", {"column": "id", "regex": "^[1-5]"}),
    ("regex_condition", "expect_column_values_to_match_regex", {"column": "name", "regex": "^.+$", **AND_OR}),
    ("not_regex", "expect_column_values_to_not_match_regex", {"column": "name", "regex": "^0"}),
    ("not_regex_case", "expect_column_values_to_not_match_regex", {"column": "name", "regex": "(?i)alpha"}),
    ("not_regex_empty", "expect_column_values_to_not_match_regex", {"column": "name", "regex": "^$"}),
    (
        "regex_list_any",
        "expect_column_values_to_match_regex_list",
        {"column": "name", "regex_list": ["^[a-z]", r"\d$"]},
    ),
    (
        "regex_list_all",
        "expect_column_values_to_match_regex_list",
        {"column": "name", "regex_list": ["^[a-z]", r"\d$"], "match_on": "all"},
    ),
    (
        "regex_list_all_mostly",
        "expect_column_values_to_match_regex_list",
        {"column": "category", "regex_list": ["e", "^[rg]"], "match_on": "all", "mostly": 0.5},
    ),
    # types
    ("of_type_int", "expect_column_values_to_be_of_type", {"column": "id", "type_": "int64"}),
    ("of_type_float", "expect_column_values_to_be_of_type", {"column": "amount", "type_": "float64"}),
    ("of_type_str", "expect_column_values_to_be_of_type", {"column": "name", "type_": "str"}),
    ("of_type_bool", "expect_column_values_to_be_of_type", {"column": "flag", "type_": "bool"}),
    ("of_type_wrong", "expect_column_values_to_be_of_type", {"column": "amount", "type_": "int64"}),
    (
        "type_list",
        "expect_column_values_to_be_in_type_list",
        {"column": "id", "type_list": ["float64", "int64"]},
    ),
    (
        "type_list_wrong",
        "expect_column_values_to_be_in_type_list",
        {"column": "flag", "type_list": ["int64"]},
    ),
    ("type_list_none", "expect_column_values_to_be_in_type_list", {"column": "name"}),
    # lengths
    (
        "lengths",
        "expect_column_value_lengths_to_be_between",
        {"column": "name", "min_value": 1, "max_value": 5},
    ),
    ("lengths_min", "expect_column_value_lengths_to_be_between", {"column": "name", "min_value": 2}),
    (
        "lengths_strict",
        "expect_column_value_lengths_to_be_between",
        {
            "column": "name",
            "min_value": 1,
            "max_value": 5,
            "strict_min": True,
            "strict_max": True,
            "mostly": 0.2,
        },
    ),
    ("lengths_floats", "expect_column_value_lengths_to_be_between", {"column": "amount", "max_value": 6}),
    (
        "lengths_condition",
        "expect_column_value_lengths_to_be_between",
        {"column": "name", "max_value": 3, **RED},
    ),
    ("length_equal", "expect_column_value_lengths_to_equal", {"column": "name", "value": 2}),
    (
        "length_equal_ints",
        "expect_column_value_lengths_to_equal",
        {"column": "id", "value": 3, "mostly": 0.3},
    ),
    ("length_equal_grades", "expect_column_value_lengths_to_equal", {"column": "grade", "value": 1}),
    # strftime
    (
        "strftime",
        "expect_column_values_to_match_strftime_format",
        {"column": "day", "strftime_format": "%Y-%m-%d"},
    ),
    (
        "strftime_mostly",
        "expect_column_values_to_match_strftime_format",
        {"column": "day", "strftime_format": "%Y-%m-%d", "mostly": 0.3},
    ),
    (
        "strftime_slashes",
        "expect_column_values_to_match_strftime_format",
        {"column": "day", "strftime_format": "%d/%m/%Y"},
    ),
    (
        "strftime_time",
        "expect_column_values_to_match_strftime_format",
        {"column": "day", "strftime_format": "%Y-%m-%d %H:%M"},
    ),
    # order
    ("increasing", "expect_column_values_to_be_increasing", {"column": "id"}),
    ("increasing_mostly", "expect_column_values_to_be_increasing", {"column": "id", "mostly": 0.9}),
    ("increasing_strictly", "expect_column_values_to_be_increasing", {"column": "id", "strictly": True}),
    ("increasing_with_nulls", "expect_column_values_to_be_increasing", {"column": "amount", "mostly": 0.4}),
    ("increasing_timestamps", "expect_column_values_to_be_increasing", {"column": "ts"}),
    ("increasing_condition", "expect_column_values_to_be_increasing", {"column": "amount", **RED}),
    ("decreasing", "expect_column_values_to_be_decreasing", {"column": "amount"}),
    (
        "decreasing_strictly",
        "expect_column_values_to_be_decreasing",
        {"column": "x", "strictly": True, "mostly": 0.2},
    ),
    ("decreasing_condition", "expect_column_values_to_be_decreasing", {"column": "id", **PANDAS_IN}),
    # column aggregates
    ("min", "expect_column_min_to_be_between", {"column": "amount", "min_value": -1000.25}),
    (
        "min_strict",
        "expect_column_min_to_be_between",
        {"column": "amount", "min_value": -1000.25, "strict_min": True},
    ),
    ("min_ints", "expect_column_min_to_be_between", {"column": "id", "max_value": 10}),
    (
        "min_condition",
        "expect_column_min_to_be_between",
        {"column": "amount", "min_value": 0, **LEGACY_POSITIVE},
    ),
    (
        "min_timestamps",
        "expect_column_min_to_be_between",
        {"column": "ts", "min_value": "2024-01-01T00:00:00"},
    ),
    ("max", "expect_column_max_to_be_between", {"column": "amount", "max_value": 1e15}),
    (
        "max_strict",
        "expect_column_max_to_be_between",
        {"column": "amount", "max_value": 1e15, "strict_max": True},
    ),
    (
        "max_timestamps",
        "expect_column_max_to_be_between",
        {"column": "ts", "max_value": "2024-03-01T00:00:00"},
    ),
    ("max_condition", "expect_column_max_to_be_between", {"column": "id", "min_value": 0, **NOT_IN}),
    ("max_no_bounds", "expect_column_max_to_be_between", {"column": "x"}),
    ("mean", "expect_column_mean_to_be_between", {"column": "amount", "min_value": 0}),
    ("mean_ints", "expect_column_mean_to_be_between", {"column": "x", "min_value": 1, "max_value": 2}),
    ("mean_condition", "expect_column_mean_to_be_between", {"column": "a", "max_value": 10, **PANDAS_QUERY}),
    ("median", "expect_column_median_to_be_between", {"column": "amount", "min_value": 0, "max_value": 300}),
    ("median_ints", "expect_column_median_to_be_between", {"column": "id", "min_value": 300}),
    ("median_condition", "expect_column_median_to_be_between", {"column": "b", "max_value": 8, **LATE}),
    ("sum", "expect_column_sum_to_be_between", {"column": "x", "min_value": 0, "max_value": 500}),
    ("sum_floats", "expect_column_sum_to_be_between", {"column": "amount", "min_value": 0}),
    (
        "sum_empty",
        "expect_column_sum_to_be_between",
        {"column": "a", "min_value": 0, "max_value": 0, "row_condition": _cmp("category", "==", "purple")},
    ),
    ("min_strings", "expect_column_min_to_be_between", {"column": "name"}),
    ("stdev", "expect_column_stdev_to_be_between", {"column": "amount", "min_value": 1}),
    ("stdev_ints", "expect_column_stdev_to_be_between", {"column": "x", "max_value": 1, "strict_max": True}),
    ("stdev_condition", "expect_column_stdev_to_be_between", {"column": "b", "min_value": 1, **NOT_RED}),
    (
        "unique_count",
        "expect_column_unique_value_count_to_be_between",
        {"column": "category", "min_value": 3},
    ),
    (
        "unique_count_strict",
        "expect_column_unique_value_count_to_be_between",
        {"column": "category", "min_value": 3, "strict_min": True},
    ),
    (
        "unique_count_floats",
        "expect_column_unique_value_count_to_be_between",
        {"column": "amount", "max_value": 400},
    ),
    (
        "unique_count_names",
        "expect_column_unique_value_count_to_be_between",
        {"column": "name", "max_value": 20},
    ),
    (
        "unique_count_timestamps",
        "expect_column_unique_value_count_to_be_between",
        {"column": "ts", "min_value": 1},
    ),
    (
        "unique_proportion",
        "expect_column_proportion_of_unique_values_to_be_between",
        {"column": "id", "min_value": 0.9},
    ),
    (
        "unique_proportion_strings",
        "expect_column_proportion_of_unique_values_to_be_between",
        {"column": "name", "max_value": 0.1},
    ),
    (
        "unique_proportion_condition",
        "expect_column_proportion_of_unique_values_to_be_between",
        {"column": "grade", "min_value": 0.01, **PANDAS_IN},
    ),
    (
        "distinct_in_set",
        "expect_column_distinct_values_to_be_in_set",
        {"column": "category", "value_set": ["red", "green", "blue"]},
    ),
    (
        "distinct_in_set_fails",
        "expect_column_distinct_values_to_be_in_set",
        {"column": "name", "value_set": ["1"]},
    ),
    (
        "distinct_in_set_ints",
        "expect_column_distinct_values_to_be_in_set",
        {"column": "x", "value_set": [0, 1, 2]},
    ),
    (
        "distinct_in_set_condition",
        "expect_column_distinct_values_to_be_in_set",
        {"column": "grade", "value_set": ["A", "B"], **PANDAS_IN},
    ),
    (
        "distinct_contain",
        "expect_column_distinct_values_to_contain_set",
        {"column": "grade", "value_set": ["A", "D"]},
    ),
    (
        "distinct_contain_missing",
        "expect_column_distinct_values_to_contain_set",
        {"column": "grade", "value_set": ["A", "E"]},
    ),
    (
        "distinct_contain_empty",
        "expect_column_distinct_values_to_contain_set",
        {"column": "grade", "value_set": []},
    ),
    (
        "distinct_equal",
        "expect_column_distinct_values_to_equal_set",
        {"column": "category", "value_set": ["blue", "green", "red"]},
    ),
    (
        "distinct_equal_both_ways",
        "expect_column_distinct_values_to_equal_set",
        {"column": "category", "value_set": ["green", "red", "pink"]},
    ),
    (
        "distinct_equal_floats",
        "expect_column_distinct_values_to_equal_set",
        {"column": "x", "value_set": [0.0, 1.0, 2.0, 3.0]},
    ),
    ("mcv", "expect_column_most_common_value_to_be_in_set", {"column": "category", "value_set": ["red"]}),
    (
        "mcv_not_in",
        "expect_column_most_common_value_to_be_in_set",
        {"column": "category", "value_set": ["blue"]},
    ),
    ("mcv_tie", "expect_column_most_common_value_to_be_in_set", {"column": "grade", "value_set": ["A", "C"]}),
    (
        "mcv_tie_okay",
        "expect_column_most_common_value_to_be_in_set",
        {"column": "grade", "value_set": ["A"], "ties_okay": True},
    ),
    (
        "mcv_tie_okay_none",
        "expect_column_most_common_value_to_be_in_set",
        {"column": "grade", "value_set": ["B"], "ties_okay": True},
    ),
    (
        "mcv_condition",
        "expect_column_most_common_value_to_be_in_set",
        {"column": "grade", "value_set": ["A"], **PANDAS_IN},
    ),
    # column pairs
    ("greater", "expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "a", "column_B": "b"}),
    (
        "greater_or_equal",
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_A": "a", "column_B": "b", "or_equal": True},
    ),
    (
        "greater_either_missing",
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_A": "a", "column_B": "b", "or_equal": True, "ignore_row_if": "either_value_is_missing"},
    ),
    (
        "greater_neither",
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_A": "a", "column_B": "b", "ignore_row_if": "neither", "mostly": 0.1},
    ),
    (
        "greater_condition",
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_A": "a", "column_B": "b", "or_equal": True, **RED},
    ),
    ("equal", "expect_column_pair_values_to_be_equal", {"column_A": "a", "column_B": "b"}),
    (
        "equal_either_missing",
        "expect_column_pair_values_to_be_equal",
        {"column_A": "a", "column_B": "b", "ignore_row_if": "either_value_is_missing", "mostly": 0.5},
    ),
    (
        "equal_neither",
        "expect_column_pair_values_to_be_equal",
        {"column_A": "a", "column_B": "b", "ignore_row_if": "neither"},
    ),
    ("equal_strings", "expect_column_pair_values_to_be_equal", {"column_A": "name", "column_B": "category"}),
    # several columns
    ("compound_unique", "expect_compound_columns_to_be_unique", {"column_list": ["x", "y", "z"]}),
    (
        "compound_unique_any",
        "expect_compound_columns_to_be_unique",
        {"column_list": ["x", "y", "z"], "ignore_row_if": "any_value_is_missing"},
    ),
    (
        "compound_unique_never",
        "expect_compound_columns_to_be_unique",
        {"column_list": ["x", "y", "z"], "ignore_row_if": "never", "mostly": 0.05},
    ),
    (
        "compound_unique_strings",
        "expect_compound_columns_to_be_unique",
        {"column_list": ["category", "grade"], **LATE},
    ),
    ("sum_equal", "expect_multicolumn_sum_to_equal", {"column_list": ["x", "y", "z"], "sum_total": 6}),
    (
        "sum_equal_any",
        "expect_multicolumn_sum_to_equal",
        {"column_list": ["x", "y", "z"], "sum_total": 6, "ignore_row_if": "any_value_is_missing"},
    ),
    (
        "sum_equal_never",
        "expect_multicolumn_sum_to_equal",
        {"column_list": ["x", "y"], "sum_total": 3, "ignore_row_if": "never", "mostly": 0.1},
    ),
    (
        "within_record",
        "expect_select_column_values_to_be_unique_within_record",
        {"column_list": ["x", "y", "z"]},
    ),
    (
        "within_record_any",
        "expect_select_column_values_to_be_unique_within_record",
        {"column_list": ["x", "y", "z"], "ignore_row_if": "any_value_is_missing"},
    ),
    (
        "within_record_never",
        "expect_select_column_values_to_be_unique_within_record",
        {"column_list": ["x", "y", "z"], "ignore_row_if": "never", "mostly": 0.3},
    ),
    (
        "within_record_condition",
        "expect_select_column_values_to_be_unique_within_record",
        {"column_list": ["a", "b"], **AND_OR},
    ),
    (
        "within_record_mixed",
        "expect_select_column_values_to_be_unique_within_record",
        {"column_list": ["x", "a", "b", "flag"]},
    ),
    (
        "within_record_strings",
        "expect_select_column_values_to_be_unique_within_record",
        {"column_list": ["name", "category", "grade"], "ignore_row_if": "never"},
    ),
    # more row conditions
    ("condition_pandas_not", "expect_column_values_to_not_be_null", {"column": "amount", **PANDAS_NOT}),
    ("condition_pandas_flag", "expect_column_values_to_not_be_null", {"column": "amount", **PANDAS_FLAG}),
    ("condition_pandas_columns", "expect_column_values_to_be_null", {"column": "x", **PANDAS_COLUMNS}),
    (
        "condition_pandas_chained",
        "expect_column_values_to_be_in_set",
        {"column": "category", "value_set": ["red"], **PANDAS_CHAINED},
    ),
    ("condition_no_parser", "expect_column_values_to_not_be_null", {"column": "amount", **NO_PARSER}),
    ("condition_legacy_date", "expect_column_values_to_be_unique", {"column": "grade", **LEGACY_DATE}),
    (
        "condition_no_rows",
        "expect_column_values_to_be_in_set",
        {"column": "amount", "value_set": [0], **PURPLE},
    ),
    (
        "condition_only_nulls",
        "expect_column_values_to_be_in_set",
        {"column": "amount", "value_set": [0], **NULL_AMOUNT},
    ),
    (
        "condition_only_nulls_not_null",
        "expect_column_values_to_not_be_null",
        {"column": "amount", **NULL_AMOUNT},
    ),
    # booleans, dates, time zones, pairs of timestamps, and the mostly boundary of pair and multi-column rules
    ("in_set_booleans_as_numbers", "expect_column_values_to_be_in_set", {"column": "flag", "value_set": [1]}),
    ("in_set_numbers_as_booleans", "expect_column_values_to_be_in_set", {"column": "x", "value_set": [True]}),
    ("regex_booleans", "expect_column_values_to_match_regex", {"column": "flag", "regex": "^True$"}),
    ("length_equal_booleans", "expect_column_value_lengths_to_equal", {"column": "flag", "value": 4}),
    ("mean_booleans", "expect_column_mean_to_be_between", {"column": "flag", "min_value": 0.5}),
    ("sum_booleans", "expect_column_sum_to_be_between", {"column": "flag", "min_value": 100}),
    ("median_booleans", "expect_column_median_to_be_between", {"column": "flag", "max_value": 0}),
    ("stdev_booleans", "expect_column_stdev_to_be_between", {"column": "flag", "max_value": 1}),
    ("max_booleans", "expect_column_max_to_be_between", {"column": "flag"}),
    ("stdev_single_value", "expect_column_stdev_to_be_between", {"column": "a", "min_value": 0, **PURPLE}),
    (
        "mean_timestamps",
        "expect_column_mean_to_be_between",
        {"column": "ts", "min_value": "2024-02-01T00:00:00"},
    ),
    (
        "median_timestamps",
        "expect_column_median_to_be_between",
        {"column": "ts", "max_value": "2024-02-01T00:00:00"},
    ),
    ("mean_time_zone", "expect_column_mean_to_be_between", {"column": "stamped"}),
    ("median_time_zone", "expect_column_median_to_be_between", {"column": "stamped"}),
    ("min_time_zone", "expect_column_min_to_be_between", {"column": "stamped"}),
    (
        "max_time_zone",
        "expect_column_max_to_be_between",
        {"column": "stamped", "max_value": "2024-03-01T00:00:00+00:00"},
    ),
    (
        "between_time_zone",
        "expect_column_values_to_be_between",
        {"column": "stamped", "min_value": "2024-02-01T00:00:00+00:00"},
    ),
    ("increasing_dates", "expect_column_values_to_be_increasing", {"column": "dates"}),
    (
        "increasing_dates_strictly",
        "expect_column_values_to_be_increasing",
        {"column": "dates", "strictly": True, "mostly": 0.3},
    ),
    ("min_dates", "expect_column_min_to_be_between", {"column": "dates", "min_value": "2024-01-01"}),
    ("max_dates", "expect_column_max_to_be_between", {"column": "dates", "max_value": "2024-02-01"}),
    (
        "between_dates",
        "expect_column_values_to_be_between",
        {"column": "dates", "min_value": "2024-01-15", "max_value": "2024-03-01"},
    ),
    ("unique_dates", "expect_column_values_to_be_unique", {"column": "dates"}),
    ("regex_dates", "expect_column_values_to_match_regex", {"column": "dates", "regex": "-01$"}),
    ("of_type_date", "expect_column_values_to_be_of_type", {"column": "dates", "type_": "date"}),
    (
        "distinct_contain_dates",
        "expect_column_distinct_values_to_contain_set",
        {"column": "dates", "value_set": ["2024-01-01", "2025-01-01"]},
    ),
    (
        "distinct_contain_timestamps",
        "expect_column_distinct_values_to_contain_set",
        {"column": "ts", "value_set": ["2024-01-01", "2025-01-01"]},
    ),
    (
        "distinct_equal_booleans",
        "expect_column_distinct_values_to_equal_set",
        {"column": "flag", "value_set": [True, False]},
    ),
    (
        "distinct_in_set_booleans",
        "expect_column_distinct_values_to_be_in_set",
        {"column": "flag", "value_set": [1]},
    ),
    (
        "mcv_floats",
        "expect_column_most_common_value_to_be_in_set",
        {"column": "amount", "value_set": [0.0, 3.0]},
    ),
    (
        "greater_timestamps",
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_A": "due", "column_B": "ts"},
    ),
    (
        "greater_strings",
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_A": "name", "column_B": "category", "ignore_row_if": "either_value_is_missing"},
    ),
    (
        "greater_at_mostly",
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_A": "a", "column_B": "b", "mostly": GREATER},
    ),
    (
        "greater_past_mostly",
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_A": "a", "column_B": "b", "mostly": GREATER + PAST},
    ),
    (
        "equal_timestamps",
        "expect_column_pair_values_to_be_equal",
        {"column_A": "due", "column_B": "ts", "ignore_row_if": "neither"},
    ),
    ("equal_mixed_types", "expect_column_pair_values_to_be_equal", {"column_A": "x", "column_B": "name"}),
    (
        "equal_ints_floats",
        "expect_column_pair_values_to_be_equal",
        {"column_A": "x", "column_B": "a", "ignore_row_if": "either_value_is_missing"},
    ),
    (
        "sum_equal_at_mostly",
        "expect_multicolumn_sum_to_equal",
        {"column_list": ["x", "y", "z"], "sum_total": 6, "mostly": SUM_SIX},
    ),
    (
        "sum_equal_past_mostly",
        "expect_multicolumn_sum_to_equal",
        {"column_list": ["x", "y", "z"], "sum_total": 6, "mostly": SUM_SIX + PAST},
    ),
    (
        "sum_equal_floats",
        "expect_multicolumn_sum_to_equal",
        {"column_list": ["unit price", "a"], "sum_total": 10.3},
    ),
    ("compound_unique_dates", "expect_compound_columns_to_be_unique", {"column_list": ["dates", "grade"]}),
    ("not_null_mostly_zero", "expect_column_values_to_not_be_null", {"column": "x", "mostly": 0}),
]
CASES = [Case(name, kind, kwargs) for name, kind, kwargs in _CASES]

_REFUSED: list[tuple[str, str, dict[str, Any]]] = [
    ("between_text_by_number", "expect_column_values_to_be_between", {"column": "name", "min_value": 0}),
    (
        "between_number_by_date",
        "expect_column_values_to_be_between",
        {"column": "amount", "min_value": "2024-01-01"},
    ),
    (
        "between_time_zone_by_naive_time",
        "expect_column_values_to_be_between",
        {"column": "stamped", "min_value": "2024-02-01T00:00:00"},
    ),
    (
        "max_naive_by_time_zone",
        "expect_column_max_to_be_between",
        {"column": "ts", "max_value": "2024-02-01T00:00+00:00"},
    ),
    (
        "min_dates_by_time",
        "expect_column_min_to_be_between",
        {"column": "dates", "min_value": "2024-01-01T10:00:00"},
    ),
    ("min_text_by_number", "expect_column_min_to_be_between", {"column": "name", "min_value": 1}),
    ("mean_text", "expect_column_mean_to_be_between", {"column": "name"}),
    ("sum_timestamps", "expect_column_sum_to_be_between", {"column": "ts"}),
    (
        "greater_number_than_text",
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_A": "x", "column_B": "name"},
    ),
    ("missing_column", "expect_column_values_to_not_be_null", {"column": "nope"}),
]
REFUSED = [Case(name, kind, kwargs) for name, kind, kwargs in _REFUSED]
"""Great Expectations raises on these when it runs them; Lagoa refuses them with a SuiteError."""


def _suite(cases: list[Case]) -> dict[str, Any]:
    return {
        "name": "conformance",
        "expectations": [{"type": c.type, "kwargs": c.kwargs, "meta": {"case": c.name}} for c in cases],
    }


# --- running both ------------------------------------------------------------------------------

GxRun = Callable[..., dict[str, dict[str, Any]]]
"""Runs cases (on the generated table, or on the pandas frame given) through Great Expectations."""


@pytest.fixture(scope="module")
def great_expectations() -> GxRun:
    """Runs cases as one suite through Great Expectations; results by case name."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Great Expectations' own deprecation warnings
        try:
            import great_expectations as gx
        except ImportError:
            pytest.fail(
                "the conformance test needs Great Expectations: "
                f"pip install great_expectations=={GX_VERSION} (or pip install -e '.[dev]')"
            )
        if gx.__version__ != GX_VERSION:
            pytest.fail(
                f"the conformance test is written for Great Expectations {GX_VERSION}, not {gx.__version__}"
            )
        context = gx.get_context(mode="ephemeral")
        batch = (
            context.data_sources.add_pandas("pandas")
            .add_dataframe_asset("frame")
            .add_batch_definition_whole_dataframe("whole")
        )
    table_frame = TABLE.to_pandas()
    runs = itertools.count()

    def run(cases: list[Case], frame: Any = None) -> dict[str, dict[str, Any]]:
        frame = table_frame if frame is None else frame
        name = f"run-{next(runs)}"
        logger = logging.getLogger("great_expectations")
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                suite = context.suites.add(gx.ExpectationSuite(**{**_suite(cases), "name": name}))
                definition = gx.ValidationDefinition(name=name, data=batch, suite=suite)
                outcome: Any = context.validation_definitions.add(definition).run(
                    batch_parameters={"dataframe": frame}, result_format="SUMMARY"
                )
                output: dict[str, Any] = outcome.to_json_dict()
        finally:
            logger.setLevel(level)
        return {r["expectation_config"]["meta"]["case"]: r for r in output["results"]}

    return run


@pytest.fixture(scope="module")
def gx_results(great_expectations: GxRun) -> dict[str, dict[str, Any]]:
    """Every case's result from Great Expectations, run once for the whole suite."""
    return great_expectations(CASES)


@pytest.fixture(scope="module")
def connection() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    con.register("arrow_table", TABLE)
    con.execute("CREATE TABLE t AS SELECT * FROM arrow_table")
    yield con
    con.close()


def _lagoa(con: duckdb.DuckDBPyConnection, cases: list[Case]) -> dict[str, dict[str, Any]]:
    suite = parse_suite(_suite(cases), "conformance.json")
    outcome = validate(con, suite, "SELECT * FROM t", table="t", run_id="conformance")
    return {r["expectation_config"]["meta"]["case"]: r for r in ge_document(outcome)["results"]}


@pytest.fixture(scope="module")
def lagoa_results(connection: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    return _lagoa(connection, CASES)


# --- comparing ---------------------------------------------------------------------------------

COUNTS = (
    "element_count",
    "unexpected_count",
    "missing_count",
    "unexpected_percent",
    "missing_percent",
    "unexpected_percent_total",
    "unexpected_percent_nonmissing",
)
TYPE_RULES = ("expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list")
"""Only their success is compared: the observed type names differ on purpose."""


def _normal(value: Any) -> Any:
    """One shape for both sides: ISO date strings as datetimes, numbers as floats, tuples as lists."""
    if value == "NaT":  # how Great Expectations writes a null timestamp
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value) if len(value) >= 10 and value[4] == "-" else None
        except ValueError:
            parsed = None
        return value if parsed is None else parsed.replace(tzinfo=parsed.tzinfo or UTC)
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


def _same(lagoa: Any, gx: Any) -> bool:
    lagoa, gx = _normal(lagoa), _normal(gx)
    if isinstance(lagoa, float) and isinstance(gx, float):
        return math.isclose(lagoa, gx, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(lagoa, list) and isinstance(gx, list):
        return len(lagoa) == len(gx) and all(_same(x, y) for x, y in zip(lagoa, gx, strict=True))
    if isinstance(lagoa, dict) and isinstance(gx, dict):
        return lagoa.keys() == gx.keys() and all(_same(lagoa[k], gx[k]) for k in lagoa)
    return bool(lagoa == gx)


def _has_null(value: Any) -> bool:
    if isinstance(value, dict):
        return _has_null(list(value.values()))
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return value is None or value == "NaT"


def _raised(result: dict[str, Any]) -> str | None:
    info = result.get("exception_info") or {}
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info["raised_exception"] else None
    return "; ".join(str(v.get("exception_message")) for v in info.values() if isinstance(v, dict)) or None


def test_every_supported_expectation_is_covered() -> None:
    assert {c.type for c in CASES} == set(SPECS)
    assert len({c.name for c in CASES}) == len(CASES)


def test_mostly_cases_sit_on_the_boundary(gx_results: dict[str, dict[str, Any]]) -> None:
    boundaries = [c.name.removesuffix("_at_mostly") for c in CASES if c.name.endswith("_at_mostly")]
    assert len(boundaries) >= 5
    for name in boundaries:
        assert gx_results[f"{name}_at_mostly"]["success"] is True, name
        assert gx_results[f"{name}_past_mostly"]["success"] is False, name


@pytest.mark.parametrize("case", CASES, ids=str)
def test_same_outcome_as_great_expectations(
    case: Case, gx_results: dict[str, dict[str, Any]], lagoa_results: dict[str, dict[str, Any]]
) -> None:
    theirs, ours = gx_results[case.name], lagoa_results[case.name]
    assert _raised(theirs) is None, f"Great Expectations raised: {_raised(theirs)}"
    expected, found = theirs["result"], ours["result"]
    assert ours["success"] is theirs["success"], f"Lagoa: {found}\nGreat Expectations: {expected}"
    if case.type in TYPE_RULES:
        return
    if SPECS[case.type].kind in ("column", "pair", "multicolumn"):
        counts = {key: expected[key] for key in COUNTS if key in expected}
        assert {key: found.get(key) for key in counts} == pytest.approx(counts, nan_ok=True)
        assert counts.keys() == {key for key in COUNTS if key in found}
        listed, gx_listed = found["partial_unexpected_list"], expected["partial_unexpected_list"]
        assert _same(listed, gx_listed), f"Lagoa: {listed}\nGreat Expectations: {gx_listed}"
        if "partial_unexpected_counts" in expected and not _has_null(gx_listed):
            # With nulls, Great Expectations counts each NaN apart and orders them arbitrarily.
            assert _same(found.get("partial_unexpected_counts"), expected["partial_unexpected_counts"])
        return
    for key, value in expected.items():
        if key == "partial_missing_list":  # in no particular order in Great Expectations
            assert sorted(map(repr, _normal(found[key]))) == sorted(map(repr, _normal(value)))
        else:
            assert _same(found.get(key), value), (
                f"{key}: Lagoa {found.get(key)!r}, Great Expectations {value!r}"
            )


@pytest.fixture(scope="module")
def gx_refused(great_expectations: GxRun) -> dict[str, dict[str, Any]]:
    return great_expectations(REFUSED)


@pytest.mark.parametrize("case", REFUSED, ids=str)
def test_refused_where_great_expectations_raises(
    case: Case, gx_refused: dict[str, dict[str, Any]], connection: duckdb.DuckDBPyConnection
) -> None:
    assert _raised(gx_refused[case.name])
    with pytest.raises(SuiteError, match=r"expectations\[0\]"):
        _lagoa(connection, [case])


INFINITE = pa.table({"v": pa.array([1.5, math.inf, None, -math.inf, 7.0, math.inf], pa.float64())})
INFINITE_CASES = [
    Case("inf_max", "expect_column_max_to_be_between", {"column": "v", "max_value": 10}),
    Case("inf_min", "expect_column_min_to_be_between", {"column": "v", "min_value": 0}),
    Case(
        "inf_outside", "expect_column_values_to_be_between", {"column": "v", "min_value": 0, "max_value": 10}
    ),
    Case("inf_set", "expect_column_distinct_values_to_be_in_set", {"column": "v", "value_set": [1.5, 7.0]}),
]


def test_stored_results_keep_infinity_as_great_expectations_does(great_expectations: GxRun) -> None:
    """Great Expectations' JSON keeps an infinite value (``Infinity``, ``-Infinity``) and writes NaN
    as null; so does the stored result, where Lagoa used to write null for both."""
    theirs = great_expectations(INFINITE_CASES, INFINITE.to_pandas())
    con = duckdb.connect()
    con.register("infinite", INFINITE)
    suite = parse_suite(_suite(INFINITE_CASES), "infinite.json")
    outcome = validate(con, suite, "SELECT * FROM infinite", table="t", run_id="infinite")
    stored = json.loads(json.dumps(ge_document(outcome)))  # as save_result writes it, read back
    ours = {r["expectation_config"]["meta"]["case"]: r for r in stored["results"]}
    assert theirs["inf_max"]["result"]["observed_value"] == math.inf
    assert theirs["inf_min"]["result"]["observed_value"] == -math.inf
    for case in INFINITE_CASES:
        expected, found = theirs[case.name]["result"], ours[case.name]["result"]
        assert ours[case.name]["success"] is theirs[case.name]["success"], case.name
        for key in ("observed_value", "partial_unexpected_list", "unexpected_count"):
            if key in expected:
                assert _infinite_same(found[key], expected[key]), (
                    f"{case.name} {key}: {found[key]} != {expected[key]}"
                )


def _infinite_same(lagoa: Any, gx: Any) -> bool:
    if isinstance(gx, list):
        return sorted(map(repr, map(_normal, lagoa))) == sorted(map(repr, map(_normal, gx)))
    return bool(_normal(lagoa) == _normal(gx))
