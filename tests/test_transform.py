"""dbt in process: generated profile and sources, the retail models, incremental runs, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lagoa.core.errors import TransformError
from lagoa.orchestrate.project import Project
from tests.conftest import copy_example

METRICS = "select * from main.fct_daily_store_metrics order by dt, store_id"


@pytest.fixture
def retail(tmp_path: Path) -> Project:
    folder = tmp_path / "retail"
    copy_example("retail_lakehouse", folder)
    project = Project.load(folder)
    project.ingest()
    return project


def test_retail_models_build_and_match_an_independent_computation(retail: Project) -> None:
    run = retail.transform()
    assert {n.name for n in run.nodes if n.kind == "model"} >= {
        "stg_erp_orders",
        "stg_crm_leads",
        "stg_web_events",
        "stg_products",
        "fct_daily_store_metrics",
    }
    assert all(n.status in ("success", "pass") for n in run.nodes)

    # The generated profile and sources: users write neither.
    profiles = yaml.safe_load((retail.root / ".lagoa/dbt/profiles.yml").read_text())
    assert profiles["retail_lakehouse"]["outputs"]["lagoa"]["path"] == str(retail.warehouse.path)
    sources = yaml.safe_load((retail.root / "dbt/models/_lagoa_sources.yml").read_text())
    silver = next(s for s in sources["sources"] if s["name"] == "silver")
    assert {t["name"] for t in silver["tables"]} >= {"erp_orders", "products", "crm_leads", "web_events"}

    _, built = retail.query(
        "select dt, store_id, orders, revenue, units, distinct_customers, leads, sessions, conversion_rate, "
        "top_category from main.fct_daily_store_metrics order by dt, store_id"
    )
    _, expected = retail.query(INDEPENDENT_METRICS)
    assert len(built) > 100
    assert [row[:9] for row in built] == [row[:9] for row in expected]
    # The top category: one with the day's greatest revenue (ties may pick either).
    assert all(b[9] in e[9] for b, e in zip(built, expected, strict=True))


# The fact table computed without dbt, straight from the silver tables.
INDEPENDENT_METRICS = """
with o as (
    select cast(order_ts as date) as dt, store_id, quantity, customer_id, product_id,
           quantity * cast(unit_price as double) as revenue
    from silver.erp_orders
),
om as (
    select dt, store_id, count(*) as orders, round(sum(revenue), 2) as revenue, sum(quantity) as units,
           count(distinct customer_id) as customers
    from o group by dt, store_id
),
l as (select cast(created_at as date) as dt, store_id, count(*) as leads from silver.crm_leads group by 1, 2),
s as (
    select cast(ts as date) as dt, store_id, count(distinct session_id) as sessions,
           count(distinct session_id) filter (where event_type = 'purchase') as purchases
    from silver.web_events group by 1, 2
),
c as (
    select o.dt, o.store_id, p.category, sum(o.revenue) as revenue
    from o join silver.products p on p.product_id = o.product_id group by 1, 2, 3
),
t as (
    select dt, store_id, list(category) filter (where revenue = top) as categories
    from (select *, max(revenue) over (partition by dt, store_id) as top from c) group by 1, 2
)
select om.dt, om.store_id, om.orders, om.revenue, om.units, om.customers, coalesce(l.leads, 0),
       coalesce(s.sessions, 0),
       case when coalesce(s.sessions, 0) = 0 then 0 else round(s.purchases / s.sessions, 4) end,
       coalesce(t.categories, [NULL])
from om
left join l on l.dt = om.dt and l.store_id = om.store_id
left join s on s.dt = om.dt and s.store_id = om.store_id
left join t on t.dt = om.dt and t.store_id = om.store_id
order by om.dt, om.store_id
"""


def test_an_incremental_run_equals_a_full_rebuild(retail: Project) -> None:
    retail.transform()
    # A new order and a changed one, both inside the model's 7-day look-back.
    _, recent = retail.query(
        "select order_id, store_id, customer_id, product_id, order_ts from silver.erp_orders "
        "order by order_ts desc limit 1"
    )
    order_id, store, customer, product, ordered = recent[0]
    late = retail.root / "samples" / "erp_orders_late.csv"
    late.write_text(
        "order_id,store_id,customer_id,product_id,quantity,unit_price,status,order_ts,updated_at\n"
        f"900001,{store},{customer},{product},3,10.00,paid,{ordered},{ordered}\n"
        f"{order_id},{store},{customer},{product},5,20.00,shipped,{ordered},2024-08-01 00:00:00\n"
    )
    retail.ingest()
    retail.transform()
    _, incremental = retail.query(METRICS)
    from lagoa.transform.runner import invoke

    assert invoke(retail.workspace, ["build", "--full-refresh"]).success
    _, rebuilt = retail.query(METRICS)
    assert incremental == rebuilt


def test_a_broken_model_is_an_error_naming_the_model_its_file_and_line(retail: Project) -> None:
    broken = retail.root / "dbt/models/staging/stg_products.sql"
    broken.write_text(
        "{{ config(\n    materialized='table',\n) }}\n"
        "select\n    product_id,\n    no_such_column\nfrom {{ source('silver', 'products') }}\n"
    )
    with pytest.raises(TransformError) as raised:
        retail.transform()
    message = str(raised.value)
    # Line 6 of the file; DuckDB numbers the line of the SQL it ran, compiled and wrapped.
    assert "model stg_products (models/staging/stg_products.sql:6)" in message, message
    assert "line 6:     no_such_column" in message, message
    assert message.count("no_such_column") == 2  # DuckDB's message and its quoted line, once each


def test_an_error_on_a_line_with_jinja_names_that_line() -> None:
    from lagoa.transform.runner import source_line

    raw = "{{ config(tags=['x']) }}\nselect a\nfrom {{ ref('one') }} as o\njoin {{ ref('two') }} as t using (a)\n"
    compiled = 'select a\nfrom "w"."main"."one" as o\njoin "w"."main"."two" as t using (a)\n'
    assert source_line('join "w"."main"."two" as t using (a)', raw, compiled) == 4
    assert source_line("select a", raw, compiled) == 2
    assert source_line("nowhere to be seen", raw, compiled) is None


def test_a_missing_source_names_it(retail: Project) -> None:
    broken = retail.root / "dbt/models/staging/stg_products.sql"
    broken.write_text("select * from {{ source('silver', 'no_such_table') }}")
    with pytest.raises(TransformError, match="no_such_table"):
        retail.transform()


def gold_files(project: Project, **equal: object) -> tuple[int, int]:
    """(files a point query on ``equal`` plans to read, all the table's files), from Iceberg's
    partition values and column statistics."""
    from pyiceberg.expressions import AlwaysTrue, And, EqualTo

    table = project.lake.table("gold.fct_daily_store_metrics")
    assert table is not None
    condition: Any = AlwaysTrue()
    equal_to: Any = EqualTo  # pyiceberg's __new__ reads wrongly to mypy; call it untyped
    for column, value in equal.items():
        condition = And(condition, equal_to(column, value))
    planned = len(list(table.scan(row_filter=condition).plan_files()))
    return planned, len(list(table.scan().plan_files()))


def test_transform_publishes_gold_partitioned_and_zordered(retail: Project) -> None:
    config = (retail.root / "lagoa.yml").read_text()
    # Small files, so that Z-order has files to skip inside each day.
    (retail.root / "lagoa.yml").write_text(
        config + "\npublish:\n  fct_daily_store_metrics:\n    partition_by: [dt]\n    zorder: [store_id]\n"
        "    rows_per_file: 8\n"
    )
    retail = Project.load(retail.root)
    retail.transform()
    _, model = retail.query("select * from main.fct_daily_store_metrics order by dt, store_id")
    _, gold = retail.query("select * from gold.fct_daily_store_metrics order by dt, store_id")
    assert gold == model

    _, days = retail.query("select count(distinct dt) from gold.fct_daily_store_metrics")
    day, store = model[len(model) // 2][0], model[len(model) // 2][1]
    planned, total = gold_files(retail, dt=day.isoformat(), store_id=store)
    assert total >= 3 * days[0][0]  # every day split into several files
    assert planned / total <= 0.1 and planned <= 2

    # A retry of the same run publishes nothing twice.
    snapshots = retail.lake.describe(retail.lake.table("gold.fct_daily_store_metrics")).snapshots  # type: ignore[arg-type]
    assert retail.publish(run_id="run-fixed")[0].partitions == 0  # type: ignore[union-attr]
    assert retail.publish(run_id="run-fixed")[0].skipped is False  # nothing changed, nothing committed
    assert retail.lake.describe(retail.lake.table("gold.fct_daily_store_metrics")).snapshots == snapshots  # type: ignore[arg-type]


def test_an_incremental_publish_rewrites_only_the_touched_partitions(retail: Project) -> None:
    retail.transform()
    _, recent = retail.query(
        "select order_id, store_id, customer_id, product_id, order_ts from silver.erp_orders "
        "order by order_ts desc limit 1"
    )
    order_id, store, customer, product, ordered = recent[0]
    (retail.root / "samples" / "erp_orders_late.csv").write_text(
        "order_id,store_id,customer_id,product_id,quantity,unit_price,status,order_ts,updated_at\n"
        f"{order_id},{store},{customer},{product},7,30.00,delivered,{ordered},2024-08-01 00:00:00\n"
    )
    retail.ingest()
    retail.transform()
    results = retail.publish(run_id="run-late")
    assert results == [] or results[0].partitions == 0  # type: ignore[union-attr]  # transform already published the change
    table = retail.lake.table("gold.fct_daily_store_metrics")
    assert table is not None
    latest = table.current_snapshot()
    assert latest is not None and latest.summary is not None
    summary = latest.summary.additional_properties
    assert int(summary["deleted-data-files"]) == 1 and int(summary["added-data-files"]) == 1
    _, model = retail.query("select * from main.fct_daily_store_metrics order by dt, store_id")
    _, gold = retail.query("select * from gold.fct_daily_store_metrics order by dt, store_id")
    assert gold == model


def test_a_failing_dbt_test_stops_the_publish_and_gold_keeps_its_snapshot(retail: Project) -> None:
    retail.transform()
    gold = retail.lake.table("gold.fct_daily_store_metrics")
    assert gold is not None
    before = retail.lake.describe(gold).snapshots
    schema = retail.root / "dbt/models/marts/schema.yml"
    schema.write_text(
        schema.read_text().replace(
            "      - name: store_id\n        data_tests: [not_null]",
            "      - name: store_id\n        data_tests: [not_null, {accepted_values: {arguments: {values: [1]}}}]",
        )
    )
    (retail.root / "samples" / "erp_orders_late.csv").write_text(
        "order_id,store_id,customer_id,product_id,quantity,unit_price,status,order_ts,updated_at\n"
        "900001,2,1,1,3,10.00,paid,2024-06-30 10:00:00,2024-06-30 10:00:00\n"
    )
    retail.ingest()
    with pytest.raises(TransformError, match="accepted_values_fct_daily_store_metrics_store_id"):
        retail.transform()
    gold = retail.lake.table("gold.fct_daily_store_metrics")
    assert gold is not None and retail.lake.describe(gold).snapshots == before


def test_docs_are_published_with_the_lake_and_served(retail: Project) -> None:
    import threading
    import urllib.request

    from lagoa.publish.docs import docs_server

    retail.transform()
    folder = retail.docs()
    assert folder == retail.storage.location("gold/_docs")
    catalog = (Path(folder) / "catalog.json").read_text()
    assert "fct_daily_store_metrics" in catalog and "erp_orders" in catalog
    server = docs_server(retail.workspace, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with urllib.request.urlopen(f"{base}/index.html", timeout=10) as page:
            assert page.status == 200 and b"dbt" in page.read()
        with urllib.request.urlopen(f"{base}/manifest.json", timeout=10) as manifest:
            assert b"stg_erp_orders" in manifest.read()
        with pytest.raises(urllib.error.HTTPError, match="404") as refused:
            urllib.request.urlopen(f"{base}/../../lagoa.yml", timeout=10)
        refused.value.close()  # the error holds its connection until closed
    finally:
        server.shutdown()
        server.server_close()


def test_publish_guards_partitioning_types_duplicates_and_new_columns(retail: Project) -> None:
    from lagoa.core.config import PublishSettings
    from lagoa.core.errors import LakeError, SchemaEvolutionError
    from lagoa.publish.gold import publish
    from lagoa.workspace import StageContext

    model = retail.root / "dbt/models/marts/tiny.sql"
    model.write_text("select 1 as k, 'a' as v union all select 1, 'a'")
    retail.transform()
    plain = PublishSettings()
    assert publish(StageContext(retail.workspace, "run-1"), "tiny", plain).rows == 2

    # Two identical rows changed into two other identical rows: still seen as a change.
    model.write_text("select 1 as k, 'b' as v union all select 1, 'b'")
    retail.transform()
    assert publish(StageContext(retail.workspace, "run-2"), "tiny", plain).rows == 2
    assert retail.query("select v from gold.tiny")[1] == [("b",), ("b",)]

    # A new column: the old files read it as NULL, and the table gains it.
    model.write_text("select 1 as k, 'b' as v, 7 as extra union all select 1, 'b', 7")
    retail.transform()
    publish(StageContext(retail.workspace, "run-3"), "tiny", plain)
    assert retail.query("select extra from gold.tiny")[1] == [(7,), (7,)]

    with pytest.raises(LakeError, match="partitioned by"):
        publish(StageContext(retail.workspace, "run-4"), "tiny", PublishSettings(partition_by=["k"]))
    model.write_text("select 'x' as k, 'b' as v, 7 as extra")
    retail.transform()
    with pytest.raises(SchemaEvolutionError, match="column `k` is int in gold but string"):
        publish(StageContext(retail.workspace, "run-5"), "tiny", plain)


def test_an_unpartitioned_dataset_publishes_into_a_folder(retail: Project) -> None:
    from lagoa.core.config import PublishSettings
    from lagoa.publish.dataset import dataset_view, publish_dataset
    from lagoa.workspace import StageContext

    retail.transform()
    settings = PublishSettings(format="parquet", location="exports/stores")
    result = publish_dataset(StageContext(retail.workspace, "run-1"), "stg_products", settings)
    assert result.files == 1 and result.rows > 0
    view = dataset_view(retail.workspace, settings)
    assert view is not None and "part-0.parquet" not in view


def test_dbt_clean_empties_lagoas_target_folder(retail: Project) -> None:
    project = retail
    project.dbt_sources()
    assert project.dbt(["parse"]).success
    manifest = project.workspace.dbt_manifest
    assert manifest.is_file()
    assert project.dbt(["clean"]).success
    assert not manifest.exists()
    assert (project.root / "dbt" / "dbt_project.yml").is_file()  # the dbt project is untouched
    assert project.dbt(["parse"]).success and manifest.is_file()


def test_a_new_interval_is_built_without_parsing_the_project_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In one process, the manifest of the last parse serves until a file of the project changes;
    in a new process, dbt's partial parsing holds across the intervals' different ``--vars``."""
    from datetime import UTC, datetime

    from lagoa.cli.scaffold import scaffold
    from lagoa.core.time import Interval

    scaffold(tmp_path / "shop")
    model = tmp_path / "shop/dbt/models/marts/interval_seen.sql"
    model.write_text(
        "select '{{ var(\"interval_start\") }}' as started, '{{ var(\"interval_end\") }}' as ended\n"
    )
    project = Project.load(tmp_path / "shop")
    project.ingest()
    log = project.root / ".lagoa/dbt/logs/dbt.log"

    def transformed(day: int, *, elsewhere: bool = False) -> str:
        """dbt's log of a transform of June ``day`` (in a new process when ``elsewhere``)."""
        before = log.read_text() if log.exists() else ""
        if elsewhere:
            code = (
                "import sys; from datetime import UTC, datetime; from lagoa.core.time import Interval; "
                "from lagoa.orchestrate.project import Project; "
                f"Project.load(sys.argv[1]).transform(publish=False, quiet=True, interval=Interval("
                f"datetime(2024, 6, {day}, tzinfo=UTC), datetime(2024, 6, {day + 1}, tzinfo=UTC)))"
            )
            subprocess.run([sys.executable, "-c", code, str(project.root)], check=True, capture_output=True)
        else:
            interval = Interval(datetime(2024, 6, day, tzinfo=UTC), datetime(2024, 6, day + 1, tzinfo=UTC))
            project.transform(publish=False, interval=interval, quiet=True)
        # The models compile with this run's interval, though the project was parsed without it.
        rows = project.query("select started, ended from main.interval_seen")[1]
        assert [row[:2] for row in rows] == [(f"2024-06-0{day} 00:00:00", f"2024-06-0{day + 1} 00:00:00")]
        return log.read_text()[len(before) :]

    transformed(1)
    assert "Partial parsing" not in transformed(2)  # nothing changed: no parse at all
    model.write_text(model.read_text().rstrip() + ', \'{{ env_var("SHOP_LABEL", "none") }}\' as label\n')
    told = transformed(3)  # a changed model is parsed again, and built as it is now
    assert "Partial parsing enabled: 0 files deleted, 0 files added, 1 files changed" in told
    assert project.query("select label from main.interval_seen")[1] == [("none",)]
    monkeypatch.setenv("SHOP_LABEL", "given")
    transformed(4)  # so is a project whose environment variable changed
    assert project.query("select label from main.interval_seen")[1] == [("given",)]
    told = transformed(5, elsewhere=True)
    assert "Partial parsing enabled, no changes found" in told
    assert "Unable to do partial parsing" not in told
