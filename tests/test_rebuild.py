"""A run whose models' inputs have not changed since they were built and published starts no
dbt: not for a re-run with no new data; but a new row, an edited model, another data interval or a
run whose publish failed all build again."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from lagoa.cli import main
from lagoa.core.time import interval_of
from lagoa.orchestrate.project import Project

SKIPPED = "inputs unchanged since the last build: dbt not started"


def summaries(project: Project, day: str = "2024-06-03") -> dict[str, str]:
    result = project.run(["daily"], interval=interval_of(day, "daily"))
    assert result.succeeded, result.outcomes
    return {name: o.summary or "" for name, o in result.outcomes.items()}


def gold(project: Project) -> list[tuple[object, ...]]:
    return project.query("select * from gold.daily_sales order by order_date")[1]


def test_only_changed_inputs_start_dbt(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    assert CliRunner().invoke(main, ["init", str(folder)]).exit_code == 0
    project = Project.load(folder)
    first = summaries(project)
    assert first["transform_sales"].startswith("2 models built"), first
    built = gold(project)

    again = summaries(project)  # nothing new
    assert again["transform_sales"] == SKIPPED
    assert again["publish_sales"] == "gold is up to date: no model was rebuilt"
    assert gold(project) == built

    samples = folder / "samples"
    (samples / "orders_2.csv").write_text(
        (samples / "orders.csv").read_text().splitlines()[0]
        + "\n900,zoe,12.50,2024-06-02 10:00:00,2024-06-02 10:00:00\n"
    )
    grown = summaries(project)  # a new row: silver changed
    assert grown["transform_sales"].startswith("2 models built"), grown
    assert gold(project) != built and summaries(project)["transform_sales"] == SKIPPED

    model = folder / "dbt" / "models" / "marts" / "daily_sales.sql"
    model.write_text(model.read_text().replace("sum(amount) as revenue", "sum(amount) * 1 as revenue"))
    assert summaries(project)["transform_sales"].startswith("2 models built")  # an edited model
    assert summaries(project, "2024-06-04")["transform_sales"].startswith(
        "2 models built"
    )  # another interval
    assert summaries(project, "2024-06-04")["transform_sales"] == SKIPPED


def test_a_run_whose_publish_failed_builds_again(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    assert CliRunner().invoke(main, ["init", str(folder)]).exit_code == 0
    project = Project.load(folder)
    summaries(project)
    (folder / "samples" / "orders_2.csv").write_text(
        "order_id,customer,amount,ordered_at,updated_at\n901,yan,3.00,2024-06-02 11:00:00,2024-06-02 11:00:00\n"
    )
    data = folder / ".lagoa" / "lake" / "gold" / "daily_sales" / "data"
    data.rename(data.with_name("kept"))
    data.write_text("not a folder")  # publishing cannot write gold's files (not even as root)
    try:
        failed = project.run(["daily"], interval=interval_of("2024-06-03", "daily"))
    finally:
        data.unlink()
        data.with_name("kept").rename(data)
    assert failed.outcomes["transform_sales"].state == "succeeded", failed.outcomes
    assert failed.outcomes["publish_sales"].state == "failed", failed.outcomes
    after = summaries(project)  # the models built, but gold did not get them: build and publish
    assert after["transform_sales"].startswith("2 models built"), after
    expected = project.query(
        "select sum(amount) from silver.orders where cast(ordered_at as date) = date '2024-06-02'"
    )[1][0][0]
    shown = project.query("select revenue from gold.daily_sales where order_date = date '2024-06-02'")[1]
    assert shown == [(expected,)]


def test_a_new_warehouse_a_build_by_hand_or_gold_changed_elsewhere_build_again(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    assert CliRunner().invoke(main, ["init", str(folder)]).exit_code == 0
    project = Project.load(folder)
    summaries(project)
    built = gold(project)
    assert summaries(project)["transform_sales"] == SKIPPED

    (folder / ".lagoa" / "warehouse.duckdb").unlink()  # the models are gone with it
    assert summaries(project)["transform_sales"].startswith("2 models built")
    assert summaries(project)["transform_sales"] == SKIPPED

    project.transform()  # by hand: no interval, so models see no interval vars
    assert summaries(project)["transform_sales"].startswith("2 models built")
    assert summaries(project)["transform_sales"] == SKIPPED

    table = project.lake.table("gold.daily_sales")  # gold emptied by someone else
    assert table is not None
    table.delete("order_date IS NOT NULL")
    assert gold(project) == []
    assert summaries(project)["transform_sales"].startswith("2 models built")
    assert gold(project) == built
