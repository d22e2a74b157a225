"""Every command of `lagoa`, run in a pseudo-terminal 80 columns wide on `lagoa init`'s starter
(with a source and a domain of long names added): no line is wider than the terminal, and the run
ids, states, task and table names it shows appear whole.

Left to their own tests: `lagoa shell` (tests/test_shell.py drives it in a pseudo-terminal),
`lagoa serve` (a web server: tests/test_serve_*.py), `lagoa cdc …` (they need a Postgres server:
tests/test_cdc.py), `lagoa airflow standalone` and `lagoa deploy mwaa` (tests/test_airflow.py,
tests/test_mwaa_deploy.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from lagoa.orchestrate.build import short_run_id
from lagoa.orchestrate.project import Project
from tests.test_cli_fits import WIDTH, in_terminal

SOURCE = "customer_orders_from_the_erp_system"
DOMAIN = "erp_orders_with_a_rather_long_name"
ADDED = f"""
  {SOURCE}:
    format: csv
    path: data/erp*.csv
    primary_key: [order_id]
    columns: {{order_id: long, amount: double, note: string}}
"""
ERP = "order_id,amount,note\n" + "".join(f"{i},{i * 1.5},{'a long note ' * 6}{i}\n" for i in range(1, 61))
CUT = re.compile(r"(\S+)…")
LIVE = re.compile(r"\s*running\s")


@pytest.fixture(scope="module")
def starter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("every") / "starter"
    subprocess.run([sys.executable, "-m", "lagoa.cli", "init", str(root)], check=True, capture_output=True)
    config = (root / "lagoa.yml").read_text()
    config = config.replace("\nsources:\n", f"\nsources:{ADDED}", 1)
    config = config.replace("domains:\n", f"domains:\n  {DOMAIN}:\n    sources: [{SOURCE}]\n", 1)
    config = config.replace("domains: [sales]", f"domains: [sales, {DOMAIN}]")
    (root / "lagoa.yml").write_text(config)
    (root / "data").mkdir()
    (root / "data" / "erp_1.csv").write_text(ERP)
    return root


def fits(output: str, *whole: str, dbt: bool = False) -> None:
    """No line wider than the terminal; each of ``whole`` shown, and nothing known cut short.
    ``dbt``: the output is dbt's own (`lagoa dbt …` passes dbt's through), its lines as dbt writes them."""
    wide = [line for line in output.splitlines() if len(line) > WIDTH]
    assert dbt or not wide, "\n".join(wide)
    for name in whole:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", output), f"{name} not whole in:\n{output}"
    # A running task's line ends with its latest message, cut to the terminal: any word may be cut
    # there ("…: p…" of "pass"), and the task's name is whole on its other lines.
    told = "\n".join(line for line in output.splitlines() if not LIVE.match(line))
    for cut in CUT.findall(told):
        assert not any(name.startswith(cut) and name != cut for name in whole), f"{cut}… cut in:\n{output}"


def names(project: Project) -> dict[str, list[str]]:
    runs = project.state.runs()
    return {
        "tables": [t.identifier for t in project.tables()],
        "tasks": [task for task in project.graph(["daily"]).tasks],
        "runs": [short_run_id(r.run_id) for r in runs],
        "states": sorted({r.state for r in runs}),
    }


def test_every_command_fits_80_columns_and_shows_names_whole(starter: Path, tmp_path: Path) -> None:
    shown = in_terminal(["init", "another"], tmp_path)
    fits(shown, "lagoa.yml", "dbt/models/marts/daily_sales.sql", "cd another")
    fits(in_terminal(["doctor"], starter), "lagoa.yml")
    fits(in_terminal(["graph", "daily"], starter), f"ingest_{DOMAIN}", "transform_sales")

    ran = in_terminal(["run", "daily"], starter)
    project = Project.load(starter)
    known = names(project)
    (first,) = project.state.runs()
    assert first.state == "succeeded", ran
    fits(ran, first.run_id, *known["tasks"], "succeeded", "gold.daily_sales")

    fits(in_terminal(["runs"], starter), *known["runs"], "succeeded", "daily")
    fits(in_terminal(["run", "show", known["runs"][0]], starter), first.run_id, *known["tasks"])
    fits(in_terminal(["run", "retry", known["runs"][0]], starter), first.run_id)
    fits(in_terminal(["status"], starter), "daily", "sales", DOMAIN, first.run_id)
    fits(in_terminal(["tables"], starter), *known["tables"])
    fits(in_terminal(["query", "select * from gold.daily_sales"], starter), "order_date", "revenue")
    wide = in_terminal(["query", f"select * from silver.{SOURCE}"], starter)
    fits(wide, "order_id", "note")
    assert "-[ row 40 ]" in wide and "-[ row 41 ]" not in wide and "… 20 more rows" in wide
    fits(in_terminal(["lineage", "gold.daily_sales"], starter), "gold.daily_sales", "observe.lineage")
    fits(in_terminal(["ingest"], starter), "orders", SOURCE)
    fits(in_terminal(["validate"], starter), "silver.orders")
    fits(in_terminal(["quality", "init", f"silver.{SOURCE}", "--force"], starter), f"silver.{SOURCE}")
    fits(in_terminal(["quality", "report"], starter), "silver.orders")
    fits(in_terminal(["transform"], starter), "stg_orders", "daily_sales")
    fits(in_terminal(["publish"], starter), "gold.daily_sales")
    # `-p` after dbt's command is Lagoa's (dbt has none): run from elsewhere, it finds the project.
    fits(
        in_terminal(["dbt", "ls", "-p", starter.name], starter.parent), "starter.staging.stg_orders", dbt=True
    )
    fits(in_terminal(["optimize", "gold.daily_sales"], starter), "gold.daily_sales")
    fits(in_terminal(["expire", "gold.daily_sales", "--older-than", "1s"], starter), "gold.daily_sales")
    fits(in_terminal(["docs"], starter), "docs")
    fits(in_terminal(["airflow", "export"], starter), "dags")
    fits(in_terminal(["deploy", "terraform"], starter), "terraform.tfvars")

    days = in_terminal(["backfill", "daily", "--start", "2024-06-01", "--end", "2024-06-03"], starter)
    runs = Project.load(starter).state.runs(pipeline="daily")
    backfilled = [short_run_id(r.run_id) for r in runs if r.interval_start and r.interval_start.year == 2024]
    assert len(backfilled) == 2, days
    fits(days, "2024-06-01", "2024-06-02", *backfilled, "succeeded")
    fits(in_terminal(["scheduler", "--once"], starter), "daily")
