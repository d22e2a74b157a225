"""Lagoa's pipelines on real Apache Airflow: the exported DAGs load with no import error, run with
``airflow dags test`` in Airflow's own environment (built from the lock in the package), and
build the same gold as the embedded orchestrator for the same interval; a task that fails
transiently is retried by Airflow without duplicating a row; every kind of Airflow run gets the
interval the embedded scheduler would give it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from lagoa.core.errors import DeployError
from lagoa.core.time import Interval, previous_interval
from lagoa.deploy.airflow.environment import AIRFLOW_VERSION, ensure_environment
from lagoa.orchestrate.external import SchedulerRun, interval_for
from lagoa.orchestrate.project import Project
from lagoa.orchestrate.runs import default_interval
from lagoa.orchestrate.schedule import ticks
from tests.aws import REGION, moto_server, point_at
from tests.conftest import copy_example, lake_rows

BUILD = Path(__file__).parents[1] / "build"
DAG_TIMEOUT = 900


class Airflow:
    """Airflow commands in Airflow's environment, with one home (SQLite metadata) per test module."""

    def __init__(self, bin_dir: Path, home: Path) -> None:
        self.bin = bin_dir
        self.home = home

    def env(self, dags: Path) -> dict[str, str]:
        return {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "LAGOA_PYTHON": sys.executable,
        }

    def run(self, dags: Path, *args: str, timeout: float = DAG_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / "airflow"), *args],
            env=self.env(dags),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def python(self, dags: Path, code: str, *args: str) -> object:
        """Run ``code`` with Airflow's python; it prints one JSON value last."""
        done = subprocess.run(
            [str(self.bin / "python"), "-c", textwrap.dedent(code), *args],
            env=self.env(dags),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Airflow:
    try:
        bin_dir = ensure_environment(BUILD / f"airflow-{AIRFLOW_VERSION}")
    except DeployError as exc:
        pytest.fail(f"Apache Airflow {AIRFLOW_VERSION} could not be installed for this test: {exc}")
    home = tmp_path_factory.mktemp("airflow-home")
    tool = Airflow(bin_dir, home)
    migrated = tool.run(home, "db", "migrate", timeout=300)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    return tool


LOAD_DAGS = """
import json, sys
from pathlib import Path
try:  # Airflow 3 parses the DAG folder as a bundle, whose path it puts on sys.path
    from airflow.dag_processing.dagbag import BundleDagBag

    def DagBag(folder):
        return BundleDagBag(folder, bundle_path=Path(folder))
except ImportError:  # Airflow 2 puts the DAG folder on sys.path itself
    from airflow.models.dagbag import DagBag
bag = DagBag(sys.argv[1])
"""
"""Airflow's python: the DAG folder sys.argv[1] parsed as each Airflow version parses it."""

DAGBAG = (
    LOAD_DAGS
    + """
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "dags": {d: sorted(bag.dags[d].task_dict) for d in bag.dag_ids}}))
"""
)

TASK_STATES = """
import json, sys
from airflow.models import TaskInstance
from airflow.utils.session import create_session
with create_session() as session:
    found = session.query(TaskInstance).filter(TaskInstance.dag_id == sys.argv[1]).all()
    print(json.dumps({ti.task_id: [str(ti.state), ti.try_number] for ti in found}))
"""


def test_the_retail_dags_load_run_on_airflow_and_build_the_gold_of_the_embedded_run(
    airflow: Airflow, tmp_path: Path
) -> None:
    day = Interval(datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 2, tzinfo=UTC))
    embedded = Project.load(copy_example("retail_lakehouse", tmp_path / "embedded"))
    result = embedded.run(["daily"], interval=day)
    assert result.succeeded, result.outcomes
    folder = copy_example("retail_lakehouse", tmp_path / "on-airflow")
    _built_on_airflow(airflow, folder, embedded, "retail_lakehouse.daily", day)


def test_the_same_dag_files_run_on_airflow_with_the_lake_on_s3_and_glue(
    airflow: Airflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each task, a process of its own, finds the lake and catalog the project names. The starter
    project: the retail DAG's many domains are the test above; here only the lake changes."""
    import boto3

    from lagoa.cli.scaffold import scaffold

    day = Interval(datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 2, tzinfo=UTC))
    scaffold(tmp_path / "embedded", "shop")
    embedded = Project.load(tmp_path / "embedded")
    result = embedded.run(["daily"], interval=day)
    assert result.succeeded, result.outcomes
    folder = tmp_path / "on-airflow"
    scaffold(folder, "shop")
    with moto_server() as url:
        point_at(url, monkeypatch)
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket="lake", CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        config = yaml.safe_load((folder / "lagoa.yml").read_text())
        config |= {"storage": {"root": "s3://lake/shop"}, "catalog": {"uri": "glue://shop"}}
        (folder / "lagoa.yml").write_text(yaml.safe_dump(config))
        _built_on_airflow(airflow, folder, embedded, "shop.daily", day)
        assert not (folder / ".lagoa" / "lake").exists()  # nothing of the lake on local disk


def _built_on_airflow(airflow: Airflow, folder: Path, embedded: Project, dag_id: str, day: Interval) -> None:
    """The project's DAGs load; ``dag_id`` run for ``day`` by ``airflow dags test`` builds the
    silver and gold of the ``embedded`` run of that day."""
    dags = folder / "dags"
    Project.load(folder).airflow_export(dags)
    bag = airflow.python(dags, DAGBAG, str(dags))
    assert isinstance(bag, dict)
    assert bag["errors"] == {}
    graph = Project.load(folder).graph(["daily"])
    assert bag["dags"] == {dag_id: sorted(graph.tasks)}

    done = airflow.run(dags, "dags", "test", dag_id, day.end.date().isoformat())
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    states = airflow.python(dags, TASK_STATES, dag_id)
    assert states == {task: ["success", 1] for task in graph.tasks}

    project = Project.load(folder)
    (run,) = [r for r in project.state.runs() if r.pipeline == "daily"]
    assert (run.state, run.interval_start, run.interval_end) == ("succeeded", day.start, day.end)
    record = project.state.run(run.run_id)
    assert record is not None
    assert sorted(a.task for a in record.attempts if a.state == "succeeded") == sorted(graph.tasks)

    gold = sorted(t.identifier for t in embedded.tables() if t.identifier.startswith("gold."))
    assert gold, "the embedded run published no gold table"
    assert sorted(t.identifier for t in project.tables() if t.identifier.startswith("gold.")) == gold
    silver = sorted(t.identifier for t in embedded.tables() if t.identifier.startswith("silver."))
    for table in gold + silver:
        assert lake_rows(project, table) == lake_rows(embedded, table), table
    # Every commit of the Airflow run carries its Lagoa run id, as the embedded run's do.
    for table in silver:
        assert project.lake.latest(project.lake.table(table), "lagoa.run-id") == run.run_id, table


FLAKY_FEED = '''
from pathlib import Path

MARK = Path(__file__).parent / "feed-was-called"


def rates(context):
    """The rates API drops the connection the first time it is called."""
    if not MARK.exists():
        MARK.write_text("once")
        raise ConnectionError("the rates API reset the connection")
    yield from ({"id": i, "rate": 1 + i / 100} for i in range(1, 51))
'''

FLAKY_PROJECT = """
name: flaky
sources:
  orders:
    format: csv
    path: data/orders.csv
    primary_key: [id]
    columns: {id: long, amount: double}
  rates:
    kind: python
    function: feed.py:rates
    primary_key: [id]
domains:
  sales:
    sources: [orders, rates]
pipelines:
  daily:
    domains: [sales]
    schedule: "0 2 * * *"
"""


def test_a_task_that_fails_transiently_is_retried_by_airflow_without_duplicating_a_row(
    airflow: Airflow, tmp_path: Path
) -> None:
    (tmp_path / "lagoa.yml").write_text(FLAKY_PROJECT)
    (tmp_path / "feed.py").write_text(FLAKY_FEED)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "orders.csv").write_text(
        "id,amount\n" + "".join(f"{i},{i * 1.5}\n" for i in range(1, 301))
    )
    dags = tmp_path / "dags"
    Project.load(tmp_path).airflow_export(dags)

    done = airflow.run(dags, "dags", "test", "flaky.daily", "2024-06-02")
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    states = airflow.python(dags, TASK_STATES, "flaky.daily")
    # The first attempt committed `orders` and failed on `rates`; Airflow's retry finished it.
    assert states == {"ingest_sales": ["success", 2], "validate_sales": ["success", 1]}

    project = Project.load(tmp_path)
    (run,) = project.state.runs()
    record = project.state.run(run.run_id)
    assert record is not None and record.state == "succeeded"
    ingest = [(a.attempt, a.state) for a in record.attempts if a.task == "ingest_sales"]
    assert ingest == [(1, "retrying"), (2, "succeeded")]
    assert "reset the connection" in (next(a.error for a in record.attempts if a.state == "retrying") or "")
    for table, rows in (
        ("bronze.orders", 300),
        ("silver.orders", 300),
        ("bronze.rates", 50),
        ("silver.rates", 50),
    ):
        assert project.query(f"select count(*), count(distinct id) from {table}")[1] == [(rows, rows)], table
    bronze = project.lake.table("bronze.orders")
    assert bronze is not None
    assert len(bronze.snapshots()) == 1, "the retry committed the orders file again"


TIMETABLE = (
    LOAD_DAGS
    + """
import pendulum
from airflow.timetables.base import TimeRestriction

found = {}
for dag_id, dag in sorted(bag.dags.items()):
    timetable = dag.timetable
    start = pendulum.datetime(2024, 6, 1, 0, 30, tz="UTC")
    restriction = TimeRestriction(earliest=start, latest=None, catchup=True)
    scheduled, last = [], None
    for _ in range(3):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        scheduled.append([info.run_after.isoformat(), info.data_interval.end.isoformat()])
        last = info.data_interval
    manual_at = pendulum.datetime(2024, 6, 5, 13, 37, tz="UTC")
    manual = timetable.infer_manual_data_interval(run_after=manual_at)
    found[dag_id] = {"scheduled": scheduled, "manual": [manual_at.isoformat(), manual.end.isoformat()]}
print(json.dumps(found))
"""
)


def test_scheduled_manual_and_backfilled_airflow_runs_get_the_embedded_schedulers_intervals(
    airflow: Airflow, tmp_path: Path
) -> None:
    folder = copy_example("medallion_apis", tmp_path / "medallion")
    project = Project.load(folder)
    dags = folder / "dags"
    project.airflow_export(dags)
    found = airflow.python(dags, TIMETABLE, str(dags))
    assert isinstance(found, dict)
    assert sorted(found) == ["medallion_apis.daily", "medallion_apis.hourly"]
    workspace = project.workspace
    for dag_id, runs in found.items():
        pipeline = dag_id.split(".", 1)[1]
        unit = project.unit(pipeline)
        schedule = project.config.pipelines[pipeline].schedule
        assert schedule is not None
        # Scheduled and backfilled runs are the schedule's ticks (a backfill creates the runs the
        # schedule would have): each gets the interval the embedded scheduler gives that tick.
        expected_ticks = list(
            ticks(schedule, datetime(2024, 6, 1, 0, 30, tzinfo=UTC), datetime(2024, 6, 5, tzinfo=UTC))
        )[:3]
        for (run_after, end), tick in zip(runs["scheduled"], expected_ticks, strict=True):
            assert datetime.fromisoformat(run_after) == tick
            assert interval_for(workspace, pipeline, datetime.fromisoformat(end)) == previous_interval(
                tick, unit
            )
        # A manual run gets what `lagoa run <pipeline>` started at that moment gets.
        manual_at, end = (datetime.fromisoformat(v) for v in runs["manual"])
        assert interval_for(workspace, pipeline, end) == default_interval(workspace, pipeline, manual_at)


def test_a_lagoa_run_id_is_the_same_for_every_task_of_an_airflow_run_and_unlike_others() -> None:
    one = SchedulerRun("airflow", "shop.daily", "scheduled__2024-06-02T02:00:00+00:00")
    assert one.lagoa_run_id == SchedulerRun("airflow", "shop.daily", one.run_id).lagoa_run_id
    assert one.lagoa_run_id != SchedulerRun("airflow", "shop.hourly", one.run_id).lagoa_run_id
    assert one.lagoa_run_id != SchedulerRun("airflow", "shop.daily", "manual__2024-06-02").lagoa_run_id
    assert len(one.lagoa_run_id) <= 64


def test_airflow_standalone_serves_the_projects_dags_on_localhost(airflow: Airflow, tmp_path: Path) -> None:
    import signal
    import socket
    import time
    import urllib.request

    folder = copy_example("retail_lakehouse", tmp_path / "local")
    # The environment the module built from the same lock: `standalone` finds it up to date.
    (folder / ".lagoa" / "airflow").mkdir(parents=True)
    (folder / ".lagoa" / "airflow" / "venv").symlink_to(airflow.bin.parent)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    lagoa = Path(sys.executable).parent / "lagoa"
    process = subprocess.Popen(
        [str(lagoa), "airflow", "standalone", "--port", str(port), "-p", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 480
        dags: list[dict[str, object]] = []
        while time.monotonic() < deadline and process.poll() is None:
            passwords = folder / ".lagoa" / "airflow" / "simple_auth_manager_passwords.json.generated"
            try:
                password = json.loads(passwords.read_text())["admin"]
                request = urllib.request.Request(
                    f"{base}/auth/token",
                    data=json.dumps({"username": "admin", "password": password}).encode(),
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=10) as answer:
                    token = json.load(answer)["access_token"]
                listing = urllib.request.Request(
                    f"{base}/api/v2/dags", headers={"Authorization": f"Bearer {token}"}
                )
                with urllib.request.urlopen(listing, timeout=10) as answer:
                    dags = json.load(answer)["dags"]
            except (OSError, ValueError, KeyError):
                dags = []
            if dags:
                break
            time.sleep(2)
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert [(d["dag_id"], d["timetable_summary"], d["has_import_errors"]) for d in dags] == [
            ("retail_lakehouse.daily", "0 2 * * *", False)
        ]
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=120)[0]
    assert f"Airflow is starting: {base}" in output
    assert "log in as admin / " in output
    home = str(folder / ".lagoa" / "airflow")
    assert not _processes_of(home), "stopping `lagoa airflow standalone` left Airflow processes behind"


def _processes_of(home: str) -> list[str]:
    import psutil  # type: ignore[import-untyped]

    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if process.environ().get("AIRFLOW_HOME") == home:
                found.append(" ".join(process.info["cmdline"] or []))
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found
