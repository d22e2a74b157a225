"""``lagoa airflow export``: the DAG files of every example, for Airflow 3 and 2.11, equal the
golden files in ``tests/golden/airflow`` and pass ruff with its default settings; no secret
reaches them.

After an intended change of the generated code, write the golden files again with
``UPDATE_GOLDEN=1 pytest tests/test_airflow_export.py`` and review the diff.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lagoa.cli import main
from lagoa.core.errors import ConfigError
from lagoa.orchestrate.project import Project
from tests.conftest import EXAMPLES, copy_example

GOLDEN = Path(__file__).parent / "golden" / "airflow"
RUFF = Path(sys.executable).parent / "ruff"
CASES = [
    (example, version, per)
    for example in sorted(p.name for p in EXAMPLES.iterdir() if (p / "lagoa.yml").is_file())
    for version in ("3", "2")
    for per in ("pipeline", "domain")
    if per == "pipeline" or example == "retail_lakehouse"
]


def _ruff(*args: str, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUFF), *args, "--isolated", "."], cwd=folder, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(("example", "version", "per"), CASES)
def test_exported_dags_equal_the_golden_files_and_pass_ruff(
    tmp_path: Path, example: str, version: str, per: str
) -> None:
    folder = copy_example(example, tmp_path / example)
    out = folder / "dags"
    written = Project.load(folder).airflow_export(out, version=version, per=per)  # type: ignore[arg-type]
    dags = sorted(p.name for p in written if p.name != "lagoa_airflow.py")
    assert dags and all(name.startswith(f"{example}.") for name in dags)

    golden = GOLDEN / example / f"airflow{version}{'-per-domain' if per == 'domain' else ''}"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.mkdir(parents=True, exist_ok=True)
        for stale in golden.glob("*.py"):
            stale.unlink()
        for name in dags:
            (golden / name).write_text((out / name).read_text())
    assert sorted(p.name for p in golden.glob("*.py")) == dags
    for name in dags:
        assert (out / name).read_text() == (golden / name).read_text(), f"{name} differs from {golden / name}"

    checked = _ruff("check", folder=out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    formatted = _ruff("format", "--check", folder=out)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_the_graph_and_settings_reach_the_dag(tmp_path: Path) -> None:
    folder = copy_example("medallion_apis", tmp_path / "medallion")
    out = folder / "dags"
    Project.load(folder).airflow_export(out)
    daily = (out / "medallion_apis.daily.py").read_text()
    hourly = (out / "medallion_apis.hourly.py").read_text()
    assert 'CronTriggerTimetable("0 2 * * *", timezone="UTC")' in daily
    assert 'CronTriggerTimetable("5 * * * *", timezone="UTC")' in hourly
    # A 3h SLA on a schedule that ticks 2h after the interval ends: an alert 1h after the tick.
    assert "deadline=deadline(PROJECT, PIPELINE, timedelta(hours=1))" in daily
    assert "deadline" not in hourly
    for domain in ("fx", "support"):
        assert f"ingest_{domain} >> validate_{domain} >> transform_{domain} >> publish_{domain}" in daily


def test_a_catch_up_without_a_start_is_refused_and_a_start_becomes_the_first_interval(tmp_path: Path) -> None:
    config = """
name: shop
sources:
  orders: {format: csv, path: data/orders.csv}
domains:
  sales: {sources: [orders]}
pipelines:
  daily: {domains: [sales], schedule: "0 2 * * *", catchup: true}
"""
    (tmp_path / "lagoa.yml").write_text(config)
    with pytest.raises(ConfigError, match="catches up but sets no `start`"):
        Project.load(tmp_path).airflow_export(tmp_path / "dags")
    (tmp_path / "lagoa.yml").write_text(config.replace("catchup: true", "catchup: true, start: 2024-06-01"))
    Project.load(tmp_path).airflow_export(tmp_path / "dags")
    text = (tmp_path / "dags" / "shop.daily.py").read_text()
    # Airflow runs the first tick on or after the start date: 2024-06-02 02:00, for 2024-06-01.
    assert 'start_date=pendulum.datetime(2024, 6, 2, 0, tz="UTC")' in text
    assert "catchup=True" in text


def test_no_secret_reaches_the_exported_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {"SLACK_HOOK": "https://hooks.example/T000/B000/s3cr3t-hook", "API_TOKEN": "tok-9f8e7d6c5b4a"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "lagoa.yml").write_text(
        """
name: shop
sources:
  rates:
    kind: http
    base_url: https://api.example
    endpoint: /v1/rates
    auth: {type: bearer, token: "${env:API_TOKEN}"}
domains:
  fx: {sources: [rates], schedule: "0 3 * * *", sla: 4h}
notifications:
  - {kind: slack, url: "${env:SLACK_HOOK}", events: [failure, retry, success, sla_miss]}
"""
    )
    for version in ("3", "2"):
        result = CliRunner().invoke(
            main,
            [
                "airflow",
                "export",
                "--airflow",
                version,
                "--out",
                str(tmp_path / f"dags{version}"),
                "-p",
                str(tmp_path),
            ],
        )
        assert result.exit_code == 0, result.output
        files = list((tmp_path / f"dags{version}").iterdir())
        assert len(files) == 2
        for path in files:
            text = path.read_text()
            for value in secrets.values():
                assert value not in text, path
                assert value not in result.output


def test_the_orders_dag_reads_as_its_architecture(tmp_path: Path) -> None:
    """Reference architecture C: land the raw file, check it, CTAS the partitioned summary. Each
    task says which of these it is, in the words of this project's settings."""
    folder = copy_example("orders_summary", tmp_path / "orders")
    (path,) = (
        p for p in Project.load(folder).airflow_export(folder / "dags") if p.name != "lagoa_airflow.py"
    )
    namespace: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if (stripped := line.strip()).startswith("task_id="):
            task = stripped.split('"')[1]
        elif stripped.startswith("doc_md="):
            namespace[task] = stripped
    assert list(namespace) == ["ingest_orders", "validate_orders", "transform_orders", "publish_orders"]
    assert "`samples/orders*.csv`" in namespace["ingest_orders"] and "raw" in namespace["ingest_orders"]
    assert "quality suites" in namespace["validate_orders"]
    assert "`silver.orders__quarantine`" in namespace["validate_orders"]
    assert "`orders_summary`" in namespace["transform_orders"]
    publish = namespace["publish_orders"]
    assert "Parquet" in publish and "partitioned by order_date" in publish and "CTAS" in publish
