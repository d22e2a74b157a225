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


TWO_DOMAINS = """\
name: two
sources:
  orders:
    format: csv
    path: samples/orders*.csv
    primary_key: [order_id]
    columns: {order_id: long, amount: double}
  leads:
    format: csv
    path: samples/leads*.csv
    primary_key: [lead_id]
    columns: {lead_id: long, channel: string}
  visits:
    format: csv
    path: samples/visits*.csv
    primary_key: [visit_id]
    columns: {visit_id: long}
domains:
  sales: {sources: [orders]}
  marketing: {sources: [leads]}
  web: {sources: [visits]}
pipelines:
  daily: {domains: [sales, marketing, web]}
"""
TWO_DOMAIN_MODELS = {
    "stg_orders.sql": "{{ config(tags=['sales']) }} select * from {{ source('silver', 'orders') }}",
    "stg_leads.sql": "{{ config(tags=['marketing']) }} select * from {{ source('silver', 'leads') }}",
    "stg_visits.sql": "{{ config(tags=['web']) }} select * from {{ source('silver', 'visits') }}",
    # sales reads marketing's model: new leads rebuild it too, new visits do not.
    "sales_by_lead.sql": (
        "{{ config(tags=['sales'], materialized='table') }} select count(*) as n, sum(amount) as amount, "
        "(select count(*) from {{ ref('stg_leads') }}) as leads from {{ ref('stg_orders') }}"
    ),
}


def test_a_domain_is_rebuilt_only_when_a_table_its_models_read_changed(tmp_path: Path) -> None:
    folder = tmp_path / "two"
    (folder / "samples").mkdir(parents=True)
    (folder / "lagoa.yml").write_text(TWO_DOMAINS)
    (folder / "samples" / "orders.csv").write_text("order_id,amount\n1,10\n2,5\n")
    (folder / "samples" / "leads.csv").write_text("lead_id,channel\n1,ads\n")
    (folder / "samples" / "visits.csv").write_text("visit_id\n1\n")
    models = folder / "dbt" / "models"
    models.mkdir(parents=True)
    (folder / "dbt" / "dbt_project.yml").write_text(
        'name: two\nversion: "1.0"\nconfig-version: 2\nprofile: two\n'
    )
    for name, sql in TWO_DOMAIN_MODELS.items():
        (models / name).write_text(sql + "\n")
    project = Project.load(folder)

    def rebuilt() -> set[str]:
        done = summaries(project)
        return {
            t.removeprefix("transform_")
            for t, s in done.items()
            if t.startswith("transform_") and s != SKIPPED
        }

    assert rebuilt() == {"sales", "marketing", "web"}
    assert rebuilt() == set()
    (folder / "samples" / "orders_2.csv").write_text("order_id,amount\n3,1\n")
    assert rebuilt() == {"sales"}
    (folder / "samples" / "visits_2.csv").write_text("visit_id\n2\n")
    assert rebuilt() == {"web"}
    (folder / "samples" / "leads_2.csv").write_text("lead_id,channel\n2,mail\n")
    assert rebuilt() == {"marketing", "sales"}  # sales_by_lead reads stg_leads
    assert project.query("select * from main.sales_by_lead")[1] == [(3, 16.0, 2)]
    assert rebuilt() == set()
