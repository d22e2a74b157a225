"""`lagoa status`: last runs, freshness against schedule and SLA, pass rates and quarantine trends
read from a real project's history, the exit code, `--json`, and a screen of 80 columns."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lagoa.cli import main
from lagoa.core.time import previous_interval
from lagoa.orchestrate.project import Project
from lagoa.orchestrate.status import PipelineStatus, ProjectStatus, project_status
from tests.conftest import ORDERS_CONFIG, MakeProject, count

SHOP = """
domains:
  shop:
    sources: [orders]
    schedule: "0 2 * * *"
    sla: 2h
"""
CONFIG = ORDERS_CONFIG + SHOP

# Rows 2 (negative) and 5 (too large) break the range and are dropped; row 3 does not parse.
ORDERS = """\
order_id,amount,ordered_at,updated_at
1,10.5,2024-06-01 10:00:00,2024-06-01 10:00:00
2,-20.0,2024-06-01 11:00:00,2024-06-01 11:00:00
3,oops,2024-06-01 12:00:00,2024-06-01 12:00:00
5,5000.0,2024-06-01 13:00:00,2024-06-01 13:00:00
"""
CLEAN = """\
order_id,amount,ordered_at,updated_at
6,60.0,2024-06-02 12:00:00,2024-06-02 12:00:00
7,70.0,2024-06-02 13:00:00,2024-06-02 13:00:00
"""

TOO_LARGE = CLEAN.replace("70.0", "7000.0")  # breaks AT_MOST_100, whose on_fail is `fail`


def _suite(*expectations: dict[str, Any]) -> str:
    return json.dumps({"name": "orders", "expectations": list(expectations)})


AMOUNT_RANGE = {
    "type": "expect_column_values_to_be_between",
    "kwargs": {"column": "amount", "min_value": 0, "max_value": 1000},
    "meta": {"lagoa": {"on_fail": "drop"}},
}
KEY_NOT_NULL = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "order_id"}}
AT_MOST_100 = {
    "type": "expect_column_max_to_be_between",
    "kwargs": {"column": "amount", "max_value": 100},
    "meta": {"lagoa": {"on_fail": "fail"}},
}


def day(text: str) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return start, start + timedelta(days=1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def shop(status: ProjectStatus) -> PipelineStatus:
    (found,) = [p for p in status.pipelines if p.name == "shop"]
    return found


def invoke(project: Project, *args: str, columns: int = 80, color: bool = False) -> Result:
    return CliRunner().invoke(
        main, ["status", *args, "-p", str(project.root)], env={"COLUMNS": str(columns)}, color=color
    )


def quarantined_by(project: Project, run_id: str) -> int:
    return count(project, f"select count(*) from silver.orders__quarantine where _lagoa_run_id = '{run_id}'")


def test_successful_runs_show_their_history_freshness_pass_rate_and_quarantine_trend(
    make_project: MakeProject,
) -> None:
    project = make_project(
        CONFIG, {"data/orders_1.csv": ORDERS, "quality/orders.json": _suite(AMOUNT_RANGE, KEY_NOT_NULL)}
    )
    first = project.run(["shop"], interval=day("2024-06-01"))
    (project.root / "data/orders_2.csv").write_text(CLEAN)
    second = project.run(["shop"], interval=day("2024-06-02"))
    third = project.run(["shop"], interval=day("2024-06-03"))  # no new file: nothing to validate
    assert first.succeeded and second.succeeded and third.succeeded, (first, second, third)

    status = project_status(project.workspace, project.state, utc("2024-06-04T01:00"))
    found = shop(status)
    recorded = project.state.runs(pipeline="shop", limit=1)[0]
    assert found.last_run is not None
    assert (found.last_run.run_id, found.last_run.state) == (third.run_id, "succeeded")
    assert found.last_run.started_at == recorded.started_at and found.last_run.ended_at == recorded.ended_at
    assert found.next_run == utc("2024-06-04T02:00")
    # Data up to the end of 3 June; a day plus the 2h SLA later it goes stale.
    assert (found.freshness.state, found.freshness.data_until) == ("fresh", utc("2024-06-04"))
    assert found.freshness.stale_after == utc("2024-06-05T02:00")

    # The quarantine trend, oldest first, equals the rows each run wrote to the quarantine table.
    expected = [quarantined_by(project, r.run_id) for r in (first, second, third)]
    assert expected == [3, 0, 0]  # rows 2, 5 (dropped) and 3 (did not parse)
    assert [(q.run_id, q.rows) for q in found.quarantine] == list(
        zip([first.run_id, second.run_id, third.run_id], expected, strict=True)
    )
    # The third run validated nothing: the pass rate is the second run's, both expectations passed.
    assert found.quality is not None
    assert (found.quality.run_id, found.quality.passed, found.quality.evaluated) == (second.run_id, 2, 2)
    stored = project.quality_results(second.run_id)[1]
    assert sum(r.statistics.evaluated_expectations for r in stored) == 2
    assert status.ok and status.problems == []

    # Over the first run alone, the range check failed (its rows were dropped): 1 of 2 passed.
    alone = shop(project_status(project.workspace, project.state, utc("2024-06-04T01:00"), runs=1))
    assert [q.rows for q in alone.quarantine] == [0]
    two_back = project_status(project.workspace, project.state, utc("2024-06-02T01:00"))
    assert shop(two_back).freshness.state == "fresh"
    first_only = project.quality_results(first.run_id)[1]
    assert sum(r.statistics.successful_expectations for r in first_only) == 1


def test_the_command_exits_0_for_a_fresh_pipeline_and_prints_its_figures(make_project: MakeProject) -> None:
    project = make_project(
        CONFIG, {"data/orders_1.csv": ORDERS, "quality/orders.json": _suite(AMOUNT_RANGE, KEY_NOT_NULL)}
    )
    done = project.run(["shop"], interval=previous_interval(datetime.now(UTC), "daily"))
    assert done.succeeded, done.outcomes

    shown = invoke(project)
    assert shown.exit_code == 0, shown.output
    assert f"{done.run_id} succeeded" in shown.output
    assert "fresh: data up to" in shown.output
    assert "1/2 expectations passed (50%)" in shown.output
    assert "quarantine  3 rows in the last run" in shown.output
    assert "all fresh and passing" in shown.output


def test_a_failed_last_run_exits_1_and_is_named(make_project: MakeProject) -> None:
    project = make_project(
        CONFIG, {"data/orders_1.csv": TOO_LARGE, "quality/orders.json": _suite(AT_MOST_100)}
    )
    failed = project.run(["shop"], interval=previous_interval(datetime.now(UTC), "daily"))
    assert failed.state == "failed"

    shown = invoke(project)
    assert shown.exit_code == 1, shown.output
    assert f"shop: last run {failed.run_id} failed" in shown.output
    assert "validate_shop" in shown.output  # the first line of the run's error

    as_json = invoke(project, "--json")
    assert as_json.exit_code == 1
    data = json.loads(as_json.stdout)
    (entry,) = [p for p in data["pipelines"] if p["name"] == "shop"]
    assert entry["last_run"]["state"] == "failed" and entry["last_run"]["run_id"] == failed.run_id
    assert data["ok"] is False and f"shop: last run {failed.run_id} failed" in data["problems"]
    # A pipeline that never succeeded has no data: it is stale as well.
    assert entry["freshness"]["state"] == "stale" and entry["freshness"]["data_until"] is None


def test_a_pipeline_past_its_period_and_sla_is_stale(make_project: MakeProject) -> None:
    project = make_project(CONFIG, {"data/orders_1.csv": CLEAN})
    assert project.run(["shop"], interval=day("2024-06-01")).succeeded

    # Data up to 2 June 00:00 may be a day and 2h old: stale from 3 June 02:00 on.
    at_bound = shop(project_status(project.workspace, project.state, utc("2024-06-03T02:00")))
    assert at_bound.freshness.state == "fresh"
    later = project_status(project.workspace, project.state, utc("2024-06-03T05:30"))
    assert shop(later).freshness.state == "stale"
    assert shop(later).freshness.stale_seconds == 3.5 * 3600
    assert later.problems == ["shop: stale by 3h 30m"]

    shown = invoke(project)  # now is long after June 2024
    assert shown.exit_code == 1, shown.output
    assert re.search(r"freshness   stale by \d+d", shown.output), shown.output
    assert "- shop: stale by" in shown.output


def test_json_has_every_figure_of_the_history_in_utc(make_project: MakeProject) -> None:
    project = make_project(
        CONFIG, {"data/orders_1.csv": ORDERS, "quality/orders.json": _suite(AMOUNT_RANGE, KEY_NOT_NULL)}
    )
    done = project.run(["shop"], interval=day("2024-06-01"))
    shown = invoke(project, "--json")
    assert shown.exit_code == 1  # stale: June 2024 is long gone
    data = json.loads(shown.stdout)
    record = project.state.runs(pipeline="shop", limit=1)[0]
    (entry,) = [p for p in data["pipelines"] if p["name"] == "shop"]
    run = entry["last_run"]
    assert run["run_id"] == record.run_id == done.run_id
    assert datetime.fromisoformat(run["started_at"]) == record.started_at
    assert run["started_at"].endswith("+00:00") and run["interval_end"] == "2024-06-02T00:00:00+00:00"
    assert run["seconds"] == pytest.approx((record.ended_at - record.started_at).total_seconds())  # type: ignore[operator]
    assert entry["quarantine"] == [{"run_id": done.run_id, "rows": quarantined_by(project, done.run_id)}]
    assert entry["quality"] == {"run_id": done.run_id, "passed": 1, "evaluated": 2, "rate": 0.5}
    assert entry["freshness"]["stale_after"] == "2024-06-03T02:00:00+00:00"
    assert entry["next_run"].endswith("T02:00:00+00:00")
    assert data["at"].endswith("+00:00") and data["problems"] == [p for p in entry["problems"]]


def test_unscheduled_never_run_and_pending_pipelines(make_project: MakeProject) -> None:
    config = (
        ORDERS_CONFIG
        + """
domains:
  shop:
    sources: [orders]
    schedule: "0 * * * *"
  later:
    sources: [orders]
    schedule: "0 3 * * *"
    start: 2030-01-01
pipelines:
  manual:
    domains: [shop]
"""
    )
    project = make_project(config)
    status = project_status(project.workspace, project.state, utc("2026-01-01T10:30"))
    found = {p.name: p for p in status.pipelines}
    assert set(found) == {"manual", "shop", "later"}
    assert found["manual"].freshness.state == "unscheduled" and found["manual"].next_run is None
    # An hourly domain that never ran is stale; one whose first interval is in 2030 is not yet.
    assert found["shop"].freshness.state == "stale" and found["shop"].next_run == utc("2026-01-01T11:00")
    assert found["later"].freshness.state == "pending"
    assert status.problems == ["shop: stale, it never succeeded"]


def test_the_screen_fits_80_columns_keeps_ids_whole_and_colours_only_a_terminal(
    make_project: MakeProject,
) -> None:
    long_name = "a_domain_whose_name_is_long_enough_to_push_every_line_past_the_edge"
    config = (
        ORDERS_CONFIG
        + f"""
domains:
  {long_name}:
    sources: [orders]
    schedule: "0 2 * * *"
    sla: 2h
pipelines:
  nightly_with_a_long_name_too:
    domains: [{long_name}]
    schedule: "30 1 * * *"
"""
    )
    project = make_project(
        config, {"data/orders_1.csv": TOO_LARGE, "quality/orders.json": _suite(AT_MOST_100)}
    )
    failed = project.run([long_name], interval=day("2024-06-01"))
    assert failed.state == "failed"
    for columns in (80, 200):
        shown = invoke(project, columns=columns)
        assert shown.exit_code == 1
        lines = shown.output.splitlines()
        assert max(len(line) for line in lines) <= 80, "\n".join(lines)
        assert "\x1b[" not in shown.output  # piped: no colour
        assert failed.run_id in shown.output and long_name in shown.output
    coloured = invoke(project, color=True)
    assert "\x1b[31m" in coloured.output  # red: the failure
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in coloured.output.splitlines()]
    assert max(len(line) for line in plain) <= 80


def test_an_unreachable_cdc_source_is_an_error_of_the_status_not_a_crash(make_project: MakeProject) -> None:
    config = """
name: replica
sources:
  app:
    kind: postgres
    mode: cdc
    dsn: "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"
    tables: [customers]
domains:
  app: {sources: [app]}
"""
    project = make_project(config)
    status = project_status(project.workspace, project.state, utc("2026-01-01T10:30"))
    (lag,) = status.cdc
    assert lag.source == "app" and lag.error is not None and "cannot connect" in lag.error
    (app,) = status.pipelines
    assert app.cdc == ("app",)
    assert status.problems[-1].startswith("cdc source `app`: ")

    shown = invoke(project)
    assert shown.exit_code == 1, shown.output
    assert "cdc         app: " in shown.output and "cannot connect" in shown.output
    skipped = invoke(project, "--no-cdc", "--json")
    assert skipped.exit_code == 0, skipped.output
    assert json.loads(skipped.stdout)["cdc"] == []


def test_a_cdc_source_shows_its_slot_lag_and_a_wal_bound_past_is_a_problem(make_project: MakeProject) -> None:
    import psycopg

    from lagoa.core.report import SilentReporter
    from lagoa.sources.cdc import Replicator
    from tests.postgres import postgres_server

    with postgres_server() as dsn:
        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute("CREATE TABLE customers (id bigint PRIMARY KEY, name text)")
            con.execute("INSERT INTO customers VALUES (1, 'a')")
        config = f"""
name: replica
sources:
  app:
    kind: postgres
    mode: cdc
    dsn: "{dsn}"
    tables: [customers]
domains:
  app: {{sources: [app]}}
"""
        project = make_project(config)
        source = project.config.sources["app"]
        assert source.kind == "postgres"
        with Replicator(
            project.workspace, "app", source, run_id="t", reporter=SilentReporter()
        ) as replicator:
            replicator.setup()
        with psycopg.connect(dsn, autocommit=True) as con:  # changes the slot has not applied yet
            con.execute("INSERT INTO customers SELECT g, 'n' || g FROM generate_series(2, 500) g")
        status = project_status(project.workspace, project.state)
        (lag,) = status.cdc
        with Replicator(
            project.workspace, "app", source, run_id="t", reporter=SilentReporter()
        ) as replicator:
            seen = replicator.status()
        assert lag.error is None and lag.slot == seen.slot
        assert lag.lag_bytes is not None and 0 < lag.lag_bytes <= seen.lag_bytes
        assert lag.lag_seconds is not None and lag.lag_seconds >= 0
        assert lag.retained_bound_bytes == 1024 * 2**20 and lag.problem is None
        assert status.ok, status.problems  # `app` is not scheduled: only the slot could fail it

        shown = invoke(project, "--json")
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout)["cdc"][0]["lag_bytes"] >= lag.lag_bytes

        # A bound below what the slot keeps is a problem of the status.
        (project.root / "lagoa.yml").write_text(
            project.root.joinpath("lagoa.yml")
            .read_text()
            .replace("tables: [customers]", "tables: [customers]\n    max_retained_wal_mb: 1")
        )
        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute("INSERT INTO customers SELECT g, repeat('x', 1000) FROM generate_series(501, 3000) g")
        tight = project_status(Project.load(project.root).workspace, project.state)
        assert tight.cdc[0].retained_wal_bytes is not None and tight.cdc[0].retained_wal_bytes > 2**20
        assert tight.problems and "past its bound of 1 MB" in tight.problems[-1]
        shown = invoke(project)
        assert shown.exit_code == 1 and "cdc         app: lag" in shown.output, shown.output


def test_names_choose_the_pipelines_shown_and_an_unknown_one_is_a_config_error(
    make_project: MakeProject,
) -> None:
    project = make_project(CONFIG + "pipelines:\n  nightly:\n    domains: [shop]\n")
    only = project_status(project.workspace, project.state, utc("2026-01-01T10:30"), names=["nightly"])
    assert [p.name for p in only.pipelines] == ["nightly"] and only.ok
    wrong = invoke(project, "nighty")
    assert wrong.exit_code == 2 and "no pipeline, domain or recorded run of `nighty`" in wrong.output
