"""Ingest semantics: idempotent re-runs, new files, updates by ordering, evolution, quarantine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lagoa.core.errors import SchemaEvolutionError, SourceError
from tests.conftest import ORDERS_CONFIG, MakeProject, count

FIRST = """\
order_id,amount,ordered_at,updated_at
1,10.5,2024-06-01 10:00:00,2024-06-01 10:00:00
2,20.0,2024-06-01 11:00:00,2024-06-01 11:00:00
3,oops,2024-06-02 09:00:00,2024-06-02 09:00:00
4,40.0,2024-06-31 09:00:00,2024-06-02 09:00:00
5,50.0,2024-06-02 12:00:00,2024-06-02 12:00:00
"""


def test_rerun_adds_nothing_and_a_new_file_adds_its_rows(make_project: MakeProject) -> None:
    project = make_project(ORDERS_CONFIG, {"data/orders_1.csv": FIRST})
    first = project.ingest()
    assert first.sources[0].bronze_rows == 5
    assert count(project, "select count(*) from silver.orders") == 3
    assert count(project, "select count(*) from silver.orders__quarantine") == 2
    snapshots = {t.identifier: t.snapshots for t in project.tables()}

    again = project.ingest()
    assert again.sources[0].bronze_rows == 0
    assert again.sources[0].skipped_files == ["data/orders_1.csv: already ingested"]
    assert {t.identifier: t.snapshots for t in project.tables()} == snapshots
    assert count(project, "select count(*) from bronze.orders") == 5

    (project.root / "data/orders_2.csv").write_text(
        "order_id,amount,ordered_at,updated_at\n6,60.0,2024-06-03 10:00:00,2024-06-03 10:00:00\n"
        "7,70.0,2024-06-03 11:00:00,2024-06-03 11:00:00\n"
    )
    project.ingest()
    assert count(project, "select count(*) from bronze.orders") == 7
    assert count(project, "select count(*) from silver.orders") == 5


def test_newer_ordering_value_updates_silver_and_older_does_not(make_project: MakeProject) -> None:
    project = make_project(ORDERS_CONFIG, {"data/orders_1.csv": FIRST})
    project.ingest()
    (project.root / "data/orders_2.csv").write_text(
        "order_id,amount,ordered_at,updated_at\n"
        "1,11.0,2024-06-01 10:00:00,2024-06-05 00:00:00\n"  # newer: wins
        "2,99.0,2024-06-01 11:00:00,2024-05-01 00:00:00\n"  # older: ignored
        "5,55.0,2024-06-04 12:00:00,2024-06-05 00:00:00\n"  # newer and moves partition
    )
    project.ingest()
    _, rows = project.query("select order_id, amount, cast(ordered_at as date) from silver.orders order by 1")
    assert [(r[0], r[1]) for r in rows] == [(1, 11.0), (2, 20.0), (5, 55.0)]
    assert str(rows[2][2]) == "2024-06-04"
    assert count(project, "select count(*) from bronze.orders") == 8


def test_silver_plus_quarantine_accounts_for_every_bronze_row(make_project: MakeProject) -> None:
    project = make_project(ORDERS_CONFIG, {"data/orders_1.csv": FIRST})
    project.ingest()
    _, rows = project.query("select _lagoa_reason from silver.orders__quarantine order by 1")
    reasons = [r[0] for r in rows]
    assert reasons == [
        "amount: 'oops' is not a double",
        "ordered_at: '2024-06-31 09:00:00' is not a timestamp",
    ]
    good = count(project, "select count(*) from bronze.orders where _lagoa_error is null")
    assert good + len(reasons) == count(project, "select count(*) from bronze.orders")


def test_raw_zone_keeps_exact_bytes(make_project: MakeProject) -> None:
    project = make_project(ORDERS_CONFIG, {"data/orders_1.csv": FIRST})
    project.ingest()
    landed = list(Path(project.storage.location("raw/orders")).rglob("orders_1.csv"))
    assert len(landed) == 1
    assert landed[0].read_bytes() == (project.root / "data/orders_1.csv").read_bytes()


INFERRED = """
name: test
sources:
  events:
    format: csv
    path: data/events*.csv
"""


def test_new_column_is_added_and_old_rows_read_null(make_project: MakeProject) -> None:
    project = make_project(INFERRED, {"data/events_1.csv": "id,score\n1,5\n2,6\n"})
    project.ingest()
    (project.root / "data/events_2.csv").write_text("id,score,channel\n3,7,web\n")
    project.ingest()
    _, rows = project.query("select id, score, channel from silver.events order by id")
    assert rows == [(1, 5, None), (2, 6, None), (3, 7, "web")]


def test_declared_type_widening_is_applied(make_project: MakeProject) -> None:
    config = INFERRED + "    columns: {score: int}\n"
    project = make_project(config, {"data/events_1.csv": "id,score\n1,5\n"})
    project.ingest()
    (project.root / "lagoa.yml").write_text(INFERRED + "    columns: {score: long}\n")
    (project.root / "data/events_2.csv").write_text("id,score\n2,9000000000\n")
    reloaded = type(project).load(project.root)
    reloaded.ingest()
    _, rows = reloaded.query("select id, score from silver.events order by id")
    assert rows == [(1, 5), (2, 9_000_000_000)]
    _, described = reloaded.query(
        "select data_type from information_schema.columns where table_schema='silver' and table_name='events' and column_name='score'"
    )
    assert described[0][0] == "BIGINT"


def test_incompatible_change_is_a_clear_error(make_project: MakeProject) -> None:
    project = make_project(INFERRED, {"data/events_1.csv": "id,score\n1,5\n2,6\n"})
    project.ingest()
    (project.root / "data/events_2.csv").write_text("id,score\n3,2.5\n4,3.5\n")
    with pytest.raises(SchemaEvolutionError) as info:
        project.ingest()
    assert "column `score` is long but new data holds double values" in str(info.value)
    assert count(project, "select count(*) from bronze.events") == 2


def test_cursor_skips_rows_at_or_below_the_watermark(make_project: MakeProject) -> None:
    config = INFERRED + "    cursor: id\n"
    project = make_project(config, {"data/events_1.csv": "id,score\n1,5\n2,6\n"})
    project.ingest()
    (project.root / "data/events_1.csv").write_text("id,score\n1,5\n2,6\n3,7\n")
    project.ingest()
    _, rows = project.query("select id from bronze.events order by id")
    assert [r[0] for r in rows] == [1, 2, 3]


def test_missing_path_names_the_source_and_key(make_project: MakeProject, tmp_path: Path) -> None:
    project = make_project(ORDERS_CONFIG)
    with pytest.raises(SourceError) as info:
        project.ingest()
    assert "source `orders`: no file matches `data/orders*.csv`" in str(info.value)
    assert "sources.orders.path" in str(info.value)


STOCK_CONFIG = """
name: test
sources:
  stock:
    format: csv
    path: data/stock*.csv
    primary_key: [store_id, sku]
    ordering: version
    columns: {store_id: long, sku: string, version: long, qty: long}
"""


def test_composite_key_keeps_latest_per_key_including_null_members(make_project: MakeProject) -> None:
    config = STOCK_CONFIG
    rows = "store_id,sku,version,qty\n1,a,1,10\n1,a,2,11\n1,b,1,20\n2,a,1,30\n,a,1,40\n,a,3,41\n"
    project = make_project(config, {"data/stock_1.csv": rows})
    project.ingest()
    (project.root / "data/stock_2.csv").write_text("store_id,sku,version,qty\n1,b,5,25\n2,a,0,99\n")
    project.ingest()
    _, result = project.query(
        "select store_id, sku, qty from silver.stock order by store_id nulls first, sku"
    )
    assert result == [(None, "a", 41), (1, "a", 11), (1, "b", 25), (2, "a", 30)]


def test_a_key_with_a_null_member_replaces_its_row_from_an_earlier_batch(make_project: MakeProject) -> None:
    config = STOCK_CONFIG
    first = "store_id,sku,version,qty\n1,a,1,10\n,a,1,40\n,b,1,50\n"
    project = make_project(config, {"data/stock_1.csv": first})
    project.ingest()
    (project.root / "data/stock_2.csv").write_text("store_id,sku,version,qty\n,a,3,41\n,b,0,99\n")
    project.ingest()
    _, rows = project.query("select store_id, sku, qty from silver.stock order by store_id nulls first, sku")
    assert rows == [(None, "a", 41), (None, "b", 50), (1, "a", 10)]


def test_a_json_field_that_first_appears_late_still_becomes_a_column(make_project: MakeProject) -> None:
    lines = [json.dumps({"id": i, "name": f"n{i}"}) for i in range(60_000)]
    lines.append(json.dumps({"id": 60_000, "name": "late", "extra": "kept"}))
    project = make_project(
        """
        name: late_field
        sources:
          events:
            format: jsonl
            path: data/events.jsonl
            primary_key: [id]
        """,
        {"data/events.jsonl": "\n".join(lines) + "\n"},
    )
    project.ingest()
    assert project.query("select id, extra from silver.events where extra is not null")[1] == [
        (60_000, "kept")
    ]


def test_an_ingest_is_a_recorded_run_of_its_two_steps(make_project: MakeProject) -> None:
    from lagoa.core.errors import ConfigError

    project = make_project(ORDERS_CONFIG, {"data/orders_1.csv": FIRST})
    summary = project.ingest()
    (run,) = project.state.runs(pipeline="ingest")
    assert run.run_id == summary.run_id and run.state == "succeeded"
    assert (run.interval_start, run.interval_end) == (None, None)
    recorded = project.state.run(run.run_id)
    assert recorded is not None
    assert [(a.task, a.state) for a in recorded.attempts] == [
        ("ingest", "succeeded"),
        ("validate", "succeeded"),
    ]
    assert recorded.detail == {"sources": ["orders"], "trigger": "ingest"}
    with pytest.raises(ConfigError, match="ingests are not retried"):
        project.retry(run.run_id)


def test_a_failed_ingest_raises_what_failed_and_is_recorded_as_failed(
    make_project: MakeProject, tmp_path: Path
) -> None:
    project = make_project(ORDERS_CONFIG)  # no file matches data/orders*.csv
    with pytest.raises(SourceError, match="source `orders`"):
        project.ingest()
    (run,) = project.state.runs(pipeline="ingest")
    assert run.state == "failed" and run.error is not None and "source `orders`" in run.error
    recorded = project.state.run(run.run_id)
    assert recorded is not None
    assert [(a.task, a.state) for a in recorded.attempts] == [("ingest", "failed"), ("validate", "skipped")]
    assert project.state.leases("ingest") == []


def test_no_domain_or_pipeline_may_take_the_name_of_the_ingest_runs(make_project: MakeProject) -> None:
    from lagoa.core.errors import ConfigError

    with pytest.raises(ConfigError, match="domain name `ingest` is taken"):
        make_project(ORDERS_CONFIG + "domains:\n  ingest: {sources: [orders]}\n")
    with pytest.raises(ConfigError, match="pipeline name `ingest` is taken"):
        make_project(
            ORDERS_CONFIG + "domains:\n  d: {sources: [orders]}\npipelines:\n  ingest: {domains: [d]}\n"
        )
