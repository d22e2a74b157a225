"""`lagoa init`: the starter goes from its sample file to gold through one `lagoa run`; `lagoa
init --dbt` puts Lagoa around an existing dbt project (no tags, no `profile:`) without changing
it, and `lagoa run` builds every one of its models."""

from __future__ import annotations

import hashlib
from pathlib import Path

from click.testing import CliRunner

from lagoa.cli import main
from lagoa.orchestrate.project import Project


def _ok(*args: str) -> str:
    done = CliRunner().invoke(main, list(args))
    assert done.exit_code == 0, done.output
    return done.output


def test_the_starter_runs_all_four_steps_into_gold(tmp_path: Path) -> None:
    folder = tmp_path / "my_lake"
    _ok("init", str(folder))
    for part in ("quality/orders.json", "dbt/dbt_project.yml", "dbt/models/marts/daily_sales.sql"):
        assert (folder / part).is_file(), part
    assert "profile: my_lake" in (folder / "dbt" / "dbt_project.yml").read_text()
    _ok("run", "daily", "-p", str(folder))

    project = Project.load(folder)
    record = project.state.run(project.state.runs(limit=1)[0].run_id)
    assert record is not None and record.state == "succeeded"
    assert [a.task for a in record.attempts if a.state == "succeeded"] == [
        "ingest_sales",
        "validate_sales",
        "transform_sales",
        "publish_sales",
    ]
    expected = project.query(
        "select cast(ordered_at as date), count(*), count(distinct customer), sum(amount) "
        "from silver.orders group by 1 order by 1"
    )[1]
    assert expected and project.query("select * from gold.daily_sales order by order_date")[1] == expected
    gold = project.lake.table("gold.daily_sales")
    assert gold is not None and [f.name for f in gold.spec().fields] == ["order_date"]
    quarantined = project.query("select count(*) from silver.orders__quarantine")[1][0][0]
    assert quarantined == 1  # the sample's one bad amount, kept with its reason
    summary = {a.task: a.summary or "" for a in record.attempts}
    assert "1 row quarantined" in summary["validate_sales"]
    assert summary["publish_sales"].endswith("to gold.daily_sales")


JAFFLE = {
    "dbt_project.yml": 'name: jaffle_shop\nversion: "1.0.0"\nconfig-version: 2\nmodel-paths: ["models"]\n',
    "seeds/raw_customers.csv": "id,first_name\n1,Ana\n2,Bruno\n3,Carla\n",
    "seeds/raw_orders.csv": "id,user_id,status\n1,1,placed\n2,1,shipped\n3,2,placed\n",
    "models/staging/stg_customers.sql": "select id as customer_id, first_name from {{ ref('raw_customers') }}\n",
    "models/staging/stg_orders.sql": "select id as order_id, user_id as customer_id, status from {{ ref('raw_orders') }}\n",
    "models/customers.sql": (
        "select c.customer_id, c.first_name, count(o.order_id) as orders\n"
        "from {{ ref('stg_customers') }} c left join {{ ref('stg_orders') }} o using (customer_id)\n"
        "group by 1, 2\n"
    ),
    "models/schema.yml": (
        "version: 2\nmodels:\n  - name: customers\n    columns:\n"
        "      - name: customer_id\n        data_tests: [unique, not_null]\n"
    ),
}


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_init_attaches_a_dbt_project_without_tags_or_profile_and_builds_all_of_it(tmp_path: Path) -> None:
    dbt = tmp_path / "jaffle_shop"
    for name, text in JAFFLE.items():
        (dbt / name).parent.mkdir(parents=True, exist_ok=True)
        (dbt / name).write_text(text)
    before = _digests(dbt)
    lake = tmp_path / "lake"
    (lake).mkdir()
    (lake / ".gitignore").write_text("notes.txt")  # kept, with no final newline
    _ok("init", str(lake), "--dbt", str(dbt))
    _ok("run", "daily", "-p", str(lake))

    project = Project.load(lake)
    assert project.query("select * from main.customers order by customer_id")[1] == [
        (1, "Ana", 2),
        (2, "Bruno", 1),
        (3, "Carla", 0),
    ]
    record = project.state.run(project.state.runs(limit=1)[0].run_id)
    assert record is not None and record.state == "succeeded"
    built = next(a.summary for a in record.attempts if a.task.startswith("transform_"))
    assert built == "2 seeds built, 3 models built, 2 tests passed"

    after = _digests(dbt)
    added = set(after) - set(before)
    assert added == {"models/_lagoa_sources.yml", ".gitignore"}, added
    assert {k: v for k, v in after.items() if k in before} == before  # nothing of dbt's changed
    assert (dbt / ".gitignore").read_text().splitlines()[-1] == "models/_lagoa_sources.yml"
    assert (lake / ".gitignore").read_text().splitlines() == [
        "notes.txt",
        "# written by Lagoa",
        ".lagoa/",
        ".env",
    ]

    again = CliRunner().invoke(main, ["init", str(lake), "--dbt", str(dbt)])
    assert again.exit_code != 0 and "already exists" in again.output


def test_a_domain_selecting_no_model_is_a_warning_not_a_quiet_success(tmp_path: Path) -> None:
    folder = tmp_path / "untagged"
    _ok("init", str(folder))
    for model in (folder / "dbt" / "models").rglob("*.sql"):
        model.write_text(model.read_text().replace("tags=['sales']", "tags=['elsewhere']"))
    shown = _ok("run", "daily", "-p", str(folder))
    assert "selects no dbt model" in " ".join(shown.split())
    project = Project.load(folder)
    record = project.state.run(project.state.runs(limit=1)[0].run_id)
    assert record is not None
    transform = next(a for a in record.attempts if a.task == "transform_sales")
    assert (transform.summary or "").startswith("warning: domain `sales` selects no dbt model (`tag:sales`)")
    graph = _ok("graph", "daily", "-p", str(folder))  # dbt has parsed the project: graph tells too
    assert "domain `sales` selects no dbt model (`tag:sales`)" in " ".join(graph.split())
    for model in (folder / "dbt" / "models").rglob("*.sql"):
        model.write_text(model.read_text().replace("tags=['elsewhere']", "tags=['sales']"))
    _ok("dbt", "-p", str(folder), "parse")
    assert "selects no dbt model" not in _ok("graph", "daily", "-p", str(folder))


def test_transform_is_quiet_tells_a_model_error_once_and_publishes_what_built(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    _ok("init", str(folder))
    _ok("ingest", "-p", str(folder))
    shown = _ok("transform", "-p", str(folder))
    assert "Running with dbt" not in shown and "deprecated" not in shown  # dbt's own log
    assert "success  model" in shown and "daily_sales" in shown and "2 models built, 2 tests passed" in shown
    verbose = _ok("transform", "--verbose", "-p", str(folder))
    assert "Running with dbt" in verbose

    broken = folder / "dbt" / "models" / "marts" / "broken.sql"
    broken.write_text("{{ config(tags=['sales']) }}\nselect no_such_column from {{ ref('stg_orders') }}\n")
    project = Project.load(folder)
    gold = project.lake.table("gold.daily_sales")
    assert gold is not None
    before = len(gold.metadata.snapshots)
    (folder / "samples" / "orders_2.csv").write_text(
        "order_id,customer,amount,ordered_at,updated_at\n9,eva,7.00,2024-06-04 09:00:00,2024-06-04 09:00:00\n"
    )
    _ok("ingest", "-p", str(folder))
    failed = CliRunner().invoke(main, ["transform", "-p", str(folder)])
    assert failed.exit_code != 0
    assert failed.output.count("Binder Error") == 1, failed.output  # told once, by Lagoa
    assert "model broken (models/marts/broken.sql:2):" in failed.output  # the line, in the source
    assert "line 2: select no_such_column from" in failed.output
    assert "Traceback" not in failed.output
    gold = Project.load(folder).lake.table("gold.daily_sales")
    assert gold is not None and len(gold.metadata.snapshots) > before  # the sibling still published
    assert ("2024-06-04", 1) in {
        (str(d), n)
        for d, n in Project.load(folder).query("select order_date, orders from gold.daily_sales")[1]
    }
