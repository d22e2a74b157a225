"""Quality in the ingest path (warn / drop / fail), suite errors, and the quality commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from lagoa.cli import main
from lagoa.core.config import ResultFormat
from lagoa.core.errors import ConditionError, ConfigError, QualityError, SuiteError
from lagoa.quality.conditions import condition_sql
from lagoa.quality.outcome import ge_document, read_document
from lagoa.quality.results import summary_line
from lagoa.quality.suite import load_suite, parse_suite
from lagoa.quality.validate import validate
from tests.conftest import ORDERS_CONFIG, MakeProject, copy_example, count

ORDERS = """\
order_id,amount,ordered_at,updated_at
1,10.5,2024-06-01 10:00:00,2024-06-01 10:00:00
2,-20.0,2024-06-01 11:00:00,2024-06-01 11:00:00
3,oops,2024-06-02 09:00:00,2024-06-02 09:00:00
4,40.0,2024-06-02 09:00:00,2024-06-01 09:00:00
5,5000.0,2024-06-02 12:00:00,2024-06-02 12:00:00
6,60.0,2024-06-03 12:00:00,2024-06-03 12:00:00
"""


def suite(*expectations: dict[str, Any], name: str = "orders") -> str:
    return json.dumps({"name": name, "expectations": list(expectations)})


def expectation(kind: str, on_fail: str | None = None, **kwargs: Any) -> dict[str, Any]:
    meta = {"lagoa": {"on_fail": on_fail}} if on_fail else {}
    return {"type": kind, "kwargs": kwargs, "meta": meta}


AMOUNT_RANGE = expectation(
    "expect_column_values_to_be_between", "drop", column="amount", min_value=0, max_value=1000
)
UPDATED_AFTER = expectation(
    "expect_column_pair_values_a_to_be_greater_than_b",
    "drop",
    column_A="updated_at",
    column_B="ordered_at",
    or_equal=True,
)


def test_drop_quarantines_failing_rows_with_reasons_and_loses_none(make_project: MakeProject) -> None:
    project = make_project(
        ORDERS_CONFIG,
        {"data/orders_1.csv": ORDERS, "quality/orders.json": suite(AMOUNT_RANGE, UPDATED_AFTER)},
    )
    run = project.ingest()
    summary = run.sources[0]
    silver = count(project, "select count(*) from silver.orders")
    quarantined = count(project, "select count(*) from silver.orders__quarantine")
    assert silver + quarantined == summary.bronze_rows == 6
    assert (silver, summary.failed_checks, summary.quarantined) == (2, 3, 4)
    _, rows = project.query(
        "select json_extract(_lagoa_raw, '$.order_id')::int, _lagoa_reason, _lagoa_run_id "
        "from silver.orders__quarantine where _lagoa_reason like 'failed expectations%' order by 1"
    )
    assert [r[0] for r in rows] == [2, 4, 5]
    assert "orders#0 expect_column_values_to_be_between(amount)" in rows[0][1]
    assert "orders#1 expect_column_pair_values_a_to_be_greater_than_b(updated_at, ordered_at)" in rows[1][1]
    assert {r[2] for r in rows} == {run.run_id}

    # Re-running is a no-op: nothing is validated, quarantined or merged twice.
    again = project.ingest().sources[0]
    assert (again.bronze_rows, again.quarantined) == (0, 0)
    assert count(project, "select count(*) from silver.orders__quarantine") == quarantined


def test_drop_counts_hold_on_a_merge_into_existing_silver(make_project: MakeProject) -> None:
    project = make_project(
        ORDERS_CONFIG, {"data/orders_1.csv": ORDERS, "quality/orders.json": suite(AMOUNT_RANGE)}
    )
    project.ingest()
    (project.root / "data/orders_2.csv").write_text(
        "order_id,amount,ordered_at,updated_at\n"
        "7,70.0,2024-06-03 10:00:00,2024-06-03 10:00:00\n"
        "8,-1.0,2024-06-03 11:00:00,2024-06-03 11:00:00\n"
        "1,11.0,2024-06-01 10:00:00,2024-06-05 00:00:00\n"
    )
    second = project.ingest().sources[0]
    assert (second.bronze_rows, second.failed_checks, second.silver_rows) == (3, 1, 2)
    _, rows = project.query("select order_id, amount from silver.orders order by 1")
    assert rows == [(1, 11.0), (4, 40.0), (6, 60.0), (7, 70.0)]


def test_fail_keeps_silver_at_its_previous_snapshot_and_the_batch_pending(make_project: MakeProject) -> None:
    project = make_project(
        ORDERS_CONFIG,
        {
            "data/orders_1.csv": "order_id,amount,ordered_at,updated_at\n"
            "1,10.0,2024-06-01 10:00:00,2024-06-01 10:00:00\n"
        },
    )
    project.ingest()
    before = {t.identifier: t.snapshots for t in project.tables()}
    strict = expectation("expect_column_max_to_be_between", "fail", column="amount", max_value=100)
    (project.root / "quality").mkdir()
    (project.root / "quality/orders.json").write_text(suite(strict))
    (project.root / "data/orders_2.csv").write_text(ORDERS.replace("oops", "30.0"))
    reloaded = type(project).load(project.root)
    with pytest.raises(QualityError, match=r"orders#0 expect_column_max_to_be_between\(amount\)") as raised:
        reloaded.ingest()
    assert raised.value.hint and ".html" in raised.value.hint
    after = {t.identifier: t.snapshots for t in reloaded.tables()}
    assert after["silver.orders"] == before["silver.orders"]
    assert after["bronze.orders"] == before["bronze.orders"] + 1  # bronze keeps the batch, unpublished
    assert after["silver.orders__quarantine"] == before["silver.orders__quarantine"]
    assert count(reloaded, "select count(*) from silver.orders") == 1

    # Relax the rule: the pending batch is validated again and published.
    (project.root / "quality/orders.json").write_text(
        suite({**strict, "meta": {"lagoa": {"on_fail": "warn"}}})
    )
    summary = type(project).load(project.root).ingest()
    assert summary.sources[0].bronze_rows == 0
    assert any(
        "expect_column_max_to_be_between(amount) failed (observed 5000.0)" in w for w in summary.warnings
    )
    assert count(reloaded, "select count(*) from silver.orders") == 6


def test_lagoa_yml_overrides_the_suite_action(make_project: MakeProject) -> None:
    config = (
        ORDERS_CONFIG
        + """
quality:
  on_fail: drop
  suites:
    amounts:
      table: silver.orders
      expectations:
        expect_column_values_to_be_between:amount: warn
"""
    )
    project = make_project(
        config,
        {
            "data/orders_1.csv": ORDERS,
            "quality/amounts.json": suite(
                {**AMOUNT_RANGE, "meta": {}},
                expectation(
                    "expect_column_values_to_be_in_set", column="order_id", value_set=[1, 2, 3, 4, 5]
                ),
                name="amounts",
            ),
        },
    )
    summary = project.ingest()
    assert summary.sources[0].failed_checks == 1  # order 6: not in the set (the suite default, drop)
    assert any("expect_column_values_to_be_between(amount)" in w for w in summary.warnings)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"not valid JSON"),
        (
            suite(expectation("expect_column_values_to_be_purple", column="a")),
            r"expectations\[0\].*not supported",
        ),
        (
            suite(
                expectation("expect_column_values_to_not_be_null", column="a"),
                {"type": "expect_column_values_to_be_uniqe", "kwargs": {}},
            ),
            r"expectations\[1\].*`expect_column_values_to_be_uniqe` is not supported \(did you mean `expect_column_values_to_be_unique`\?\)",
        ),
        (
            suite(expectation("expect_column_values_to_be_between", column="a", min_value="low")),
            r"expectations\[0\].*min_value",
        ),
        (
            suite(expectation("expect_column_values_to_be_in_set", column="a", value_sets=[1])),
            r"no argument `value_sets`.*did you mean `value_set`",
        ),
        (
            suite(expectation("expect_column_values_to_be_in_set", column="a")),
            r"needs the argument `value_set`",
        ),
        (
            suite(expectation("expect_column_values_to_be_between", column="a")),
            r"min_value, max_value or both",
        ),
        (
            suite(expectation("expect_column_mean_to_be_between", "drop", column="a", min_value=1)),
            r"cannot be dropped",
        ),
        (
            suite(expectation("expect_column_values_to_not_be_null", "explode", column="a")),
            r"on_fail must be one of",
        ),
        (json.dumps({"expectations": []}), r"no suite name"),
    ],
)
def test_bad_suites_name_the_file_the_index_and_the_problem(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SuiteError, match=message) as raised:
        load_suite(path)
    assert str(path) in str(raised.value)


def test_a_missing_column_is_an_error_naming_the_expectation() -> None:
    con = duckdb.connect()
    s = parse_suite(
        json.loads(
            suite(
                expectation("expect_column_values_to_not_be_null", column="a"),
                expectation("expect_column_values_to_not_be_null", column="nope"),
            )
        ),
        "orders.json",
    )
    with pytest.raises(
        SuiteError, match=r"orders.json, key `expectations\[1\]`.*column `nope` does not exist"
    ):
        validate(con, s, "select 1 as a", table="t", run_id="r")


@pytest.mark.parametrize("result_format", ["BOOLEAN_ONLY", "BASIC", "SUMMARY", "COMPLETE"])
def test_a_stored_document_reads_back_into_the_same_result(result_format: ResultFormat) -> None:
    con = duckdb.connect()
    s = parse_suite(
        json.loads(
            suite(
                expectation("expect_column_values_to_not_be_null", column="d"),
                expectation("expect_column_values_to_be_between", column="n", min_value=0, max_value=2),
                expectation("expect_column_pair_values_to_be_equal", column_A="n", column_B="m"),
                expectation("expect_column_distinct_values_to_equal_set", column="n", value_set=[1, 9]),
                expectation("expect_column_max_to_be_between", column="d", max_value="2024-01-01"),
                expectation("expect_table_columns_to_match_ordered_list", column_list=["n"]),
                expectation("expect_column_to_exist", column="n"),
            )
        ),
        "orders.json",
    )
    relation = "SELECT * FROM (VALUES (1, 1.5::DECIMAL(4,2), DATE '2024-01-02'), (3, 3, NULL)) v(n, m, d)"
    result = validate(con, s, relation, table="t", run_id="r", result_format=result_format)
    document = ge_document(result)
    stored = json.dumps(document, indent=2)
    read = read_document(json.loads(stored))
    assert json.dumps(ge_document(read), indent=2) == stored
    assert [summary_line(x) for x in read.results] == [summary_line(x) for x in result.results]
    assert read.statistics == result.statistics and read.validated_at == result.validated_at
    assert [(x.expectation, x.success, x.counted) for x in read.results] == [
        (x.expectation, x.success, x.counted) for x in result.results
    ]


@pytest.mark.parametrize(
    ("condition", "parser", "kept"),
    [
        ('col("a") > 2', "great_expectations", [3, 4]),
        ('col("s").notNull()', "great_expectations", [1, 2, 4]),
        ('col("s") != "x"', "great_expectations", [2, 3]),
        ("a > 1 and s == 'x'", "pandas", [4]),
        ("(a < 2) | (s.isnull())", "pandas", [1, 3]),
        ("a in [1, 3]", "pandas", [1, 3]),
        ("s not in ['x']", None, [2, 3]),
        (
            {
                "type": "and",
                "conditions": [
                    {"type": "comparison", "column": {"name": "a"}, "operator": ">=", "parameter": 2},
                    {"type": "nullity", "column": {"name": "s"}, "is_null": False},
                ],
            },
            None,
            [2, 4],
        ),
        (
            {"type": "comparison", "column": {"name": "s"}, "operator": "NOT_IN", "parameter": ["y"]},
            None,
            [1, 3, 4],
        ),
        ({"type": "pass_through", "pass_through_filter": "`a` <= 2"}, "pandas", [1, 2]),
    ],
)
def test_row_conditions_follow_pandas_null_semantics(
    condition: Any, parser: str | None, kept: list[int]
) -> None:
    con = duckdb.connect()
    con.execute("create table t as select * from (values (1, 'x'), (2, 'y'), (3, NULL), (4, 'x')) v(a, s)")
    rows = con.execute(f"select a from t where {condition_sql(condition, parser)} order by a").fetchall()
    assert [r[0] for r in rows] == kept


@pytest.mark.parametrize(
    "condition", ['col("a") > 2 and col("s") == "x"', "a > 1 & s == 'x'", "a.str.len() > 1", "import os"]
)
def test_untranslatable_row_conditions_are_errors(condition: str) -> None:
    parser = "great_expectations" if condition.startswith("col(") else "pandas"
    with pytest.raises(ConditionError):
        condition_sql(condition, parser)


def test_validate_init_and_report_commands(make_project: MakeProject) -> None:
    project = make_project(ORDERS_CONFIG, {"data/orders_1.csv": ORDERS})
    project.ingest()
    runner = CliRunner()
    root = str(project.root)
    result = runner.invoke(main, ["quality", "init", "orders", "-p", root])
    assert result.exit_code == 0, result.output
    written = json.loads((project.root / "quality/orders.json").read_text())
    types = {e["type"] for e in written["expectations"]}
    assert {"expect_column_values_to_be_unique", "expect_column_values_to_be_between"} <= types
    assert (
        runner.invoke(main, ["quality", "init", "orders", "-p", root]).exit_code == 2
    )  # exists: needs --force

    # The starter suite holds on the data it was profiled from.
    result = runner.invoke(main, ["validate", "-p", root, "--strict", "--json"])
    assert result.exit_code == 0, result.output
    (data,) = json.loads(result.output)
    assert data["success"] and data["statistics"]["evaluated_expectations"] == len(written["expectations"])

    failing = project.root / "failing.json"
    failing.write_text(
        suite(expectation("expect_column_values_to_be_between", "fail", column="amount", max_value=50))
    )
    result = runner.invoke(main, ["validate", "silver.orders", "--suite", str(failing), "-p", root])
    assert result.exit_code == 1
    assert "FAILED" in result.output

    report = runner.invoke(main, ["quality", "report", "-p", root])
    assert report.exit_code == 0 and "FAILED" in report.output
    html = runner.invoke(main, ["quality", "report", "--html", "-p", root])
    page = Path(html.output.strip().splitlines()[0])
    assert page.suffix == ".html" and "expect_column_values_to_be_between" in page.read_text()


def test_retail_suites_catch_the_rows_the_generator_plants(tmp_path: Path) -> None:
    project_dir = copy_example("retail_lakehouse", tmp_path / "retail", skip=("samples",))
    subprocess.run(
        [
            sys.executable,
            str(project_dir / "generate.py"),
            "--rows",
            "20000",
            "--out",
            str(project_dir / "samples"),
        ],
        check=True,
        capture_output=True,
    )
    from lagoa.orchestrate.project import Project

    project = Project.load(project_dir)
    summary = {s.source: s for s in project.ingest().sources}
    for source in ("erp_orders", "crm_leads", "web_events", "products"):
        assert summary[source].failed_checks > 0, source
    _, rows = project.query(
        "select count(*) from silver.erp_orders where quantity < 1 or status not in "
        "('placed', 'paid', 'shipped', 'delivered', 'returned')"
    )
    assert rows == [(0,)]
    assert count(project, "select count(*) from silver.web_events where event_type = 'clik'") == 0
    assert (
        count(project, "select count(*) from silver.web_events__quarantine where _lagoa_raw like '%clik%'")
        > 0
    )
    assert (
        count(project, "select count(*) from silver.crm_leads where score > 100 or email not like '%@%.%'")
        == 0
    )
    assert count(project, "select count(*) from silver.products where category = '' or category is null") == 0


def test_quality_settings_must_name_real_suites_and_expectations(make_project: MakeProject) -> None:
    from lagoa.core.errors import ConfigError

    unknown_suite = ORDERS_CONFIG + "\nquality:\n  suites:\n    order:\n      on_fail: drop\n"
    project = make_project(
        unknown_suite, {"data/orders_1.csv": ORDERS, "quality/orders.json": suite(AMOUNT_RANGE)}
    )
    with pytest.raises(ConfigError, match=r"no suite named `order`.*did you mean `orders`"):
        project.ingest()
    unknown_key = ORDERS_CONFIG + (
        "\nquality:\n  suites:\n    orders:\n      expectations:\n        expect_column_values_to_be_between:amnt: warn\n"
    )
    project = make_project(
        unknown_key, {"data/orders_1.csv": ORDERS, "quality/orders.json": suite(AMOUNT_RANGE)}
    )
    with pytest.raises(ConfigError, match="matches no expectation of suite `orders`"):
        project.ingest()


def test_a_suite_of_drop_drops_failing_rows_and_warns_on_table_expectations(
    make_project: MakeProject,
) -> None:
    """`on_fail: drop` for a whole suite quarantines the rows that break its row expectations;
    its aggregate and table expectations, which have no rows to drop, warn."""
    config = ORDERS_CONFIG + "\nquality:\n  suites:\n    orders:\n      on_fail: drop\n"
    rows = {**AMOUNT_RANGE, "meta": {}}
    mean = expectation("expect_column_mean_to_be_between", column="amount", max_value=10)
    shape = expectation("expect_table_row_count_to_be_between", max_value=2)
    project = make_project(
        config, {"data/orders_1.csv": ORDERS, "quality/orders.json": suite(rows, mean, shape)}
    )
    summary = project.ingest()
    assert [s.action for s in project.suites[0].expectations] == ["drop", "warn", "warn"]
    assert summary.sources[0].quarantined == 3  # orders 2 and 5 (out of range), 3 (did not parse)
    assert count(project, "select count(*) from silver.orders") == 3
    warned = " ".join(summary.warnings)
    assert "expect_column_mean_to_be_between(amount) failed" in warned
    assert "expect_table_row_count_to_be_between failed" in warned


BAD_SUITES = {
    "unknown type": (suite(expectation("expect_column_values_to_be_purple", column="amount")), ""),
    "bad kwargs": (
        suite(expectation("expect_column_values_to_be_between", column="amount", min_value="low")),
        "",
    ),
    "override of a missing expectation": (
        suite(AMOUNT_RANGE),
        "\nquality:\n  suites:\n    orders:\n      expectations:\n        '#3': warn\n",
    ),
}


@pytest.mark.parametrize("problem", sorted(BAD_SUITES))
def test_a_suite_problem_stops_the_ingest_before_anything_lands(
    make_project: MakeProject, problem: str
) -> None:
    content, settings = BAD_SUITES[problem]
    project = make_project(
        ORDERS_CONFIG + settings, {"data/orders_1.csv": ORDERS, "quality/orders.json": content}
    )
    with pytest.raises(ConfigError):
        project.ingest()
    assert project.lake.identifiers() == []
    assert project.storage.list("raw") == []
    assert project.state.runs() == []

    doctor = CliRunner().invoke(main, ["doctor", "-p", str(project.root)])
    assert doctor.exit_code == 1
    assert "Traceback" not in doctor.output
    suites = [line for line in doctor.output.splitlines() if "suites" in line]
    assert suites and "NO" in suites[0], doctor.output


def test_a_suite_naming_a_column_the_data_lacks_stops_the_ingest_before_anything_lands(
    make_project: MakeProject,
) -> None:
    typo = expectation("expect_column_values_to_not_be_null", column="amont")
    project = make_project(ORDERS_CONFIG, {"data/orders_1.csv": ORDERS, "quality/orders.json": suite(typo)})
    with pytest.raises(ConfigError) as info:
        project.ingest()
    message = str(info.value)
    assert "column `amont` is not in the data of source `orders`" in message
    assert "expectations[0] of" in message and "orders.json" in message
    assert "did you mean `amount`" in message or "amount" in (info.value.hint or "")
    assert project.lake.identifiers() == []
    assert project.storage.list("raw") == []


def test_a_suite_may_name_lagoa_columns_and_check_a_column_exists(make_project: MakeProject) -> None:
    """Columns a suite names must be in the data, except Lagoa's own and those a table
    expectation looks for."""
    exists = expectation("expect_column_to_exist", column="customer")
    batch = expectation("expect_column_values_to_not_be_null", column="_lagoa_batch_id")
    project = make_project(
        ORDERS_CONFIG, {"data/orders_1.csv": ORDERS, "quality/orders.json": suite(exists, batch)}
    )
    summary = project.ingest()
    assert any("expect_column_to_exist(customer) failed" in w for w in summary.warnings)
