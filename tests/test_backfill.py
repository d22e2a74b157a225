"""A backfill of ten days of the retail example, one daily run each, ends with the same gold as one
run over the ten days (more than the model's 7-day look-back, so that late rows of every day are
merged); and `lagoa backfill` / `lagoa run show` from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from lagoa.cli import main
from lagoa.orchestrate.project import Project
from lagoa.orchestrate.runs import backfill
from tests.conftest import copy_example

DAYS = 10
PERIOD = datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC) + timedelta(days=DAYS)
GOLD = "select * from gold.fct_daily_store_metrics order by dt, store_id"


def test_daily_runs_build_the_same_gold_as_one_run_of_their_days(tmp_path: Path) -> None:
    daily = Project.load(copy_example("retail_lakehouse", tmp_path / "daily"))
    domains = daily.config.pipelines["daily"].domains
    results = backfill(daily.workspace, daily.state, "daily", domains, *PERIOD, concurrency=2)
    assert [r.state for r in results] == ["succeeded"] * DAYS
    assert [r.interval.start.day for r in results] == list(range(1, DAYS + 1))

    whole = Project.load(copy_example("retail_lakehouse", tmp_path / "whole"))
    once = whole.run(["daily"], interval=PERIOD)
    assert once.succeeded, once.outcomes

    columns, rows = daily.query(GOLD)
    assert (columns, rows) == whole.query(GOLD)
    assert len({row[0] for row in rows}) == DAYS  # every day
    # The runs really went day by day: the first one published at most its day and the next (when
    # the second run's transform got in before its publish), and gold grew in many commits.
    first_days = [row for row in rows if str(row[0]) in ("2024-06-01", "2024-06-02")]
    assert (results[0].outcomes["publish_orders"].rows or 0) <= len(first_days)
    gold = daily.lake.table("gold.fct_daily_store_metrics")
    assert gold is not None and len(gold.metadata.snapshots) >= DAYS // 2


def test_backfill_and_run_show_from_the_command_line(tmp_path: Path) -> None:
    folder = copy_example("retail_lakehouse", tmp_path / "cli")
    cli = CliRunner()
    done = cli.invoke(
        main,
        ["backfill", "daily", "--start", "2024-06-01", "--end", "2024-06-03", "-p", str(folder), "--json"],
    )
    assert done.exit_code == 0, done.output
    runs = json.loads(done.stdout)
    assert [(r["interval start"][:10], r["state"]) for r in runs] == [
        ("2024-06-01", "succeeded"),
        ("2024-06-02", "succeeded"),
    ]
    shown = cli.invoke(main, ["run", "show", runs[1]["run"], "-p", str(folder), "--logs"])
    assert shown.exit_code == 0, shown.output
    assert "interval  2024-06-02 (UTC)" in shown.output
    assert "publish_orders" in shown.output and "--- transform_orders attempt 1 ---" in shown.output
    listed = cli.invoke(main, ["runs", "--pipeline", "daily", "-p", str(folder), "--json"])
    assert len(json.loads(listed.stdout)) == 2
    missing = cli.invoke(main, ["run", "retry", "no-such-run", "-p", str(folder)])
    assert missing.exit_code == 2 and "no run `no-such-run`" in missing.output
