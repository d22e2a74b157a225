"""Validation shares work between expectations: a uniqueness rule whose key holds another's groups
only the rows whose smaller key repeats, and a text column of few distinct values has its value
rules judged once per value. Each result must be the one the expectation gets alone, judged row
by row."""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import duckdb
import pytest

from lagoa.quality.suite import load_suite

validation = importlib.import_module("lagoa.quality.validate")  # the package's `validate` is the function

ROWS = """
CREATE TABLE t AS SELECT * FROM (VALUES
  (1, 'a', 'placed', 'x'), (1, 'a', 'placed', 'y'), (1, 'b', 'paid', 'x'), (2, 'a', 'Shipped', 'x'),
  (2, NULL, 'placed', NULL), (2, NULL, NULL, NULL), (NULL, 'a', 'lost!', 'z'), (NULL, 'a', 'placed', 'z'),
  (NULL, NULL, 'paid', 'z'), (NULL, NULL, 'paid', 'z'), (3, 'c', 'placed', 'w'), (4, 'c', 'returned', 'w')
) AS v(id, code, status, zone)
"""

EXPECTATIONS: list[dict[str, Any]] = [
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
    {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["id", "code"]}},
    {
        "type": "expect_compound_columns_to_be_unique",
        "kwargs": {"column_list": ["id", "code"], "ignore_row_if": "any_value_is_missing"},
    },
    {
        "type": "expect_compound_columns_to_be_unique",
        "kwargs": {"column_list": ["id", "code", "zone"], "ignore_row_if": "never"},
    },
    {
        "type": "expect_compound_columns_to_be_unique",
        "kwargs": {"column_list": ["id", "code"], "row_condition": 'zone=="x"', "condition_parser": "pandas"},
    },
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "status", "value_set": ["placed", "paid"]},
    },
    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "status", "regex": "^[a-z]+$"}},
    {"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "status", "min_value": 5}},
    {"type": "expect_column_values_to_not_be_in_set", "kwargs": {"column": "code", "value_set": ["c"]}},
]


def _results(con: duckdb.DuckDBPyConnection, folder: Path, expectations: list[dict[str, Any]]) -> list[Any]:
    path = folder / f"suite-{len(list(folder.iterdir()))}.json"
    path.write_text(json.dumps({"name": "shared", "expectations": expectations}))
    result = validation.validate(
        con, load_suite(path), "SELECT * FROM t", table="t", run_id="r", result_format="COMPLETE"
    )
    return [{k: v for k, v in asdict(r).items() if k != "expectation"} for r in result.results]


def test_each_result_is_the_one_the_expectation_gets_alone_row_by_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    con = duckdb.connect()
    con.execute(ROWS)
    together = _results(con, tmp_path, EXPECTATIONS)
    monkeypatch.setattr(validation, "FEW_VALUES", 0)  # every value rule judged row by row
    alone = [_results(con, tmp_path, [expectation])[0] for expectation in EXPECTATIONS]
    for expectation, shared, single in zip(EXPECTATIONS, together, alone, strict=True):
        assert shared == single, expectation
    assert [r["success"] for r in together] == [False, False, False, False, True, False, False, False, False]
