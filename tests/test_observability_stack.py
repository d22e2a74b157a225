"""The shipped monitoring stack (``deploy/observability/``) against the real servers: a real
Prometheus scrapes a running ``lagoa scheduler`` and evaluates every PromQL expression of the
Grafana dashboard and every alerting rule; a real Pushgateway receives a one-shot ingest's
metrics; the statsd_exporter mapping names every StatsD line of a run. Grafana and statsd_exporter
are not installable here: the dashboard and the mapping are checked structurally."""

from __future__ import annotations

import json
import math
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import yaml
from prometheus_client.parser import text_string_to_metric_families

from lagoa.orchestrate.project import Project
from tests.postgres import postgres_server
from tests.test_metrics import Listener

STACK = Path(__file__).parent.parent / "deploy" / "observability"
DASHBOARD = STACK / "grafana" / "dashboards" / "lagoa.json"
DOCS = Path(__file__).parent.parent / "docs" / "observability.md"
LAGOA = [sys.executable, "-m", "lagoa.cli"]
GRAFANA_BUILTINS = {"__range", "__rate_interval", "__interval", "__all"}
HINT = "{tool} is needed: run `make system-packages` (as root: apt-get install {package})"
"""The panels reference architecture C's teams expect, by title."""
EXPECTED_PANELS = {
    "Run success rate",
    "Failed runs",
    "Run duration p50 / p95",
    "Task duration p50 / p95",
    "Rows landed per table per day",
    "Quarantine rate",
    "Expectation pass rate",
    "Freshness against SLA",
    "CDC lag",
    "Retained WAL",
    "Scheduler heartbeat",
}


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise AssertionError(HINT.format(tool=name, package=name))
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read().decode()
    except urllib.error.HTTPError as exc:  # a server still starting answers 503
        exc.close()  # the error holds the connection open until closed
        raise OSError(f"HTTP {exc.code} from {url}") from None
    return json.loads(body) if body.startswith(("{", "[")) else body


def _wait(condition: Any, what: str, timeout: float = 180, every: float = 0.25) -> Any:
    """Polls ``condition`` until it returns something truthy (errors count as not yet)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (OSError, ValueError, KeyError) as error:
            value, last = None, str(error)
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


def _panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def _metric_names(expr: str) -> set[str]:
    """The Lagoa metrics an expression reads, as documented (a histogram without ``_bucket``)."""
    return {name.removesuffix("_bucket") for name in re.findall(r"\blagoa_\w+", expr)}


def test_the_dashboard_is_well_formed_and_uses_the_provisioned_data_source() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    provisioned = yaml.safe_load((STACK / "grafana/provisioning/datasources/prometheus.yml").read_text())
    (source,) = provisioned["datasources"]
    assert source["type"] == "prometheus"
    providers = yaml.safe_load((STACK / "grafana/provisioning/dashboards/lagoa.yml").read_text())
    assert providers["apiVersion"] == 1 and providers["providers"][0]["type"] == "file"

    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    cells: set[tuple[int, int]] = set()
    documented = DOCS.read_text()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"stat", "timeseries", "bargauge", "table", "gauge"}, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, panel["title"]
        assert panel["description"], f"{panel['title']} has no description"
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"]
            used = set(re.findall(r"\$(\w+)", target["expr"]))
            assert used <= variables | GRAFANA_BUILTINS, (
                f"{panel['title']}: unknown variables {used - variables}"
            )
            names = _metric_names(target["expr"])
            assert names, f"{panel['title']}: {target['expr']} names no Lagoa metric"
            for name in names:
                assert f"`{name}`" in documented, f"{name} ({panel['title']}) is not in docs/observability.md"
    assert {panel["title"] for panel in _panels()} >= EXPECTED_PANELS


def test_the_prometheus_configuration_and_alerting_rules_are_valid() -> None:
    promtool = _tool("promtool")
    for command in (["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"]):
        checked = subprocess.run([promtool, *command], cwd=STACK, capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr


@contextmanager
def _prometheus(root: Path, scrape_port: int) -> Iterator[str]:
    """The shipped prometheus.yml and alerts.yml, scraping ``scrape_port`` every second."""
    config = yaml.safe_load((STACK / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(STACK / name) for name in config["rule_files"]]
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "lagoa"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{scrape_port}"]}]
    config["scrape_configs"] = [job]
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    log = (root / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            _tool("prometheus"),
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: process.poll() is None and "Ready" in _get(f"{url}/-/ready"), "Prometheus to be ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    answer = _get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


FEED = '''
import time
from datetime import timedelta

PACE = 1.5
"""Seconds each fetch takes, so that Prometheus (scraping every second) sees the counters rise
from one run to the next: it counts an increase only between two scrapes of a series."""


def orders(context):
    """Six orders a run, ten minutes apart in its interval: one has a negative amount, and one a
    channel outside the suite's set."""
    time.sleep(PACE)
    start = context.interval.start
    base = int(start.timestamp()) // 3600 * 10
    for i in range(6):
        yield {
            "order_id": base + i,
            "amount": -1.0 if i == 0 else 10.0 + i,
            "channel": "fax" if i == 1 else "web",
            "ordered_at": start + timedelta(minutes=10 * i),
        }


def offline(context):
    time.sleep(PACE)
    raise RuntimeError("the sensor API is unreachable")
    yield
'''
SUITE = {
    "name": "orders",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "order_id"}},
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "amount", "min_value": 0},
            "meta": {"lagoa": {"on_fail": "drop"}},
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "channel", "value_set": ["web", "shop"]},
        },
    ],
}
STACK_PROJECT = """
name: stack
sources:
  orders:
    kind: python
    function: feed.py:orders
    incremental: {{field: ordered_at}}
    primary_key: [order_id]
    ordering: ordered_at
    partition_by: ["day(ordered_at)"]
  sensors: {{kind: python, function: "feed.py:offline"}}
  app:
    kind: postgres
    mode: cdc
    dsn: "{dsn}"
    tables: [accounts]
domains:
  orders: {{sources: [orders]}}
  app: {{sources: [app]}}
  sensors: {{sources: [sensors]}}
pipelines:
  hourly: {{domains: [orders, app], schedule: "0 * * * *", catchup: true, start: "{hourly}", sla: 30m}}
  flaky: {{domains: [sensors], schedule: "0 * * * *", catchup: true, start: "{flaky}"}}
observe:
  metrics: {{port: {port}}}
"""


def test_a_real_prometheus_scrapes_the_scheduler_and_every_panel_and_rule_has_data(tmp_path: Path) -> None:
    this_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    port = _free_port()
    project_root = tmp_path / "project"
    project_root.mkdir()
    with postgres_server() as dsn, _prometheus(tmp_path, port) as prometheus:
        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute("CREATE TABLE accounts (id int PRIMARY KEY, owner text)")
            con.execute("INSERT INTO accounts SELECT g, 'owner ' || g FROM generate_series(1, 20) g")
        (project_root / "feed.py").write_text(textwrap.dedent(FEED))
        (project_root / "quality").mkdir()
        (project_root / "quality" / "orders.json").write_text(json.dumps(SUITE))
        (project_root / "lagoa.yml").write_text(
            STACK_PROJECT.format(
                dsn=dsn,
                port=port,
                hourly=(this_hour - timedelta(hours=4)).isoformat(),
                flaky=(this_hour - timedelta(hours=3)).isoformat(),
            )
        )
        started = time.time()
        scheduler = subprocess.Popen(
            [*LAGOA, "scheduler", "--poll", "1", "-p", str(project_root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        stderr: list[str] = []
        reader = threading.Thread(target=lambda: stderr.extend(scheduler.stderr or ()), daemon=True)
        reader.start()
        try:
            project = Project.load(project_root)

            def caught_up() -> bool:
                assert scheduler.poll() is None, "".join(stderr)
                runs = project.state.runs(limit=100)
                done = [run for run in runs if run["state"] != "running"]
                by_pipeline = {p: sum(run["pipeline"] == p for run in done) for p in ("hourly", "flaky")}
                if by_pipeline["hourly"] < 4 or by_pipeline["flaky"] < 3:
                    return False
                seen = _query(prometheus, "sum(lagoa_runs_total)")
                return bool(seen) and float(seen[0]["value"][1]) >= len(done)

            _wait(caught_up, "the scheduler's catch-up runs to be scraped", timeout=600)
            history = project.state.runs(limit=100)
            # Prometheus holds what the run history holds.
            counted = {
                (s["metric"]["pipeline"], s["metric"]["state"]): float(s["value"][1])
                for s in _query(prometheus, "sum by (pipeline, state) (lagoa_runs_total)")
            }
            expected: dict[tuple[str, str], float] = {}
            for run in history:
                if run["state"] != "running":
                    key = (run["pipeline"], run["state"])
                    expected[key] = expected.get(key, 0) + 1
            assert counted == expected
            assert {p for p, state in counted if state == "failed"} == {"flaky"}
            assert ("hourly", "succeeded") in counted, "".join(stderr)

            window = f"{math.ceil(time.time() - started) + 60}s"
            dashboard = json.loads(DASHBOARD.read_text())
            for variable in dashboard["templating"]["list"]:
                metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["definition"]).groups()  # type: ignore[union-attr]
                values = _get(
                    f"{prometheus}/api/v1/label/{label}/values?" + urllib.parse.urlencode({"match[]": metric})
                )["data"]
                assert values, f"variable {variable['name']} has no values"
            for panel in _panels():
                for target in panel["targets"]:
                    expr = re.sub(r"\$(pipeline|table|source)\b", ".*", target["expr"])
                    expr = re.sub(r"\$(__range|__rate_interval|__interval)\b", window, expr)
                    result = _query(prometheus, expr)
                    values = [float(sample["value"][1]) for sample in result]
                    assert any(math.isfinite(v) for v in values), (
                        f"panel {panel['title']!r}: {expr} returned {result}"
                    )

            rules = _wait(
                lambda: [
                    rule
                    for group in _get(f"{prometheus}/api/v1/rules")["data"]["groups"]
                    for rule in group["rules"]
                    if rule["lastEvaluation"] > datetime.fromtimestamp(started, UTC).isoformat()
                ],
                "the alerting rules to be evaluated",
            )
            assert {rule["health"] for rule in rules} == {"ok"}, [r for r in rules if r["health"] != "ok"]
            firing = _wait(
                lambda: (
                    {
                        (a["labels"]["alertname"], a["labels"].get("pipeline"))
                        for a in _get(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
                    }
                    >= {("LagoaRunFailed", "flaky"), ("LagoaSlaMissed", "hourly")}
                    and _get(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
                ),
                "the failed runs and the SLA misses to fire their alerts",
                timeout=60,
            )
            assert not {a["labels"]["alertname"] for a in firing} & {
                "LagoaTableStale",
                "LagoaCdcSlotUnreadable",
            }
        finally:
            scheduler.send_signal(signal.SIGTERM)
            scheduler.wait(timeout=120)
            reader.join(timeout=10)
            assert scheduler.stderr is not None
            scheduler.stderr.close()
        assert scheduler.returncode == 0, "".join(stderr)


PUSHED = """
name: pushed
sources:
  orders: {{format: csv, path: data/orders*.csv, primary_key: [order_id], columns: {{order_id: long, amount: double}}}}
domains:
  orders: {{sources: [orders]}}
observe:
  pushgateway: http://127.0.0.1:{port}
"""


def _pushed(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The Pushgateway's exposition of group job=lagoa, pipeline=ingest."""
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(_get(f"{url}/metrics")):
        for sample in family.samples:
            if sample.labels.get("job") == "lagoa" and sample.labels.get("pipeline", "ingest") == "ingest":
                labels = tuple(
                    sorted((k, v) for k, v in sample.labels.items() if k not in ("job", "instance"))
                )
                samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def test_a_one_shot_ingest_pushes_its_metrics_to_a_real_pushgateway(tmp_path: Path) -> None:
    port = _free_port()
    gateway = subprocess.Popen(
        [_tool("prometheus-pushgateway"), f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(
            lambda: gateway.poll() is None and "OK" in _get(f"{url}/-/ready"), "the Pushgateway to be ready"
        )
        (tmp_path / "lagoa.yml").write_text(PUSHED.format(port=port))
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "orders_1.csv").write_text("order_id,amount\n1,2.0\n2,abc\n3,4.5\n")
        pushes: list[float] = []
        for _ in range(2):  # the second ingest finds nothing new: its push replaces the first
            done = subprocess.run(
                [*LAGOA, "ingest", "-p", str(tmp_path)], capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, done.stderr
            samples = _pushed(url)
            assert samples["lagoa_runs_total"] == {(("pipeline", "ingest"), ("state", "succeeded")): 1.0}
            pushes.append(samples["push_time_seconds"][(("pipeline", "ingest"),)])
            assert samples["push_failure_time_seconds"][(("pipeline", "ingest"),)] == 0
            written = {dict(k)["table"]: v for k, v in samples.get("lagoa_rows_written_total", {}).items()}
            quarantined = {
                dict(k)["table"]: v for k, v in samples.get("lagoa_rows_quarantined_total", {}).items()
            }
            if len(pushes) == 1:
                assert written == {"bronze.orders": 3.0, "silver.orders": 2.0}
                assert quarantined == {"silver.orders": 1.0}
            else:
                assert written == {} and quarantined == {}
        assert pushes[1] > pushes[0]
    finally:
        gateway.terminate()
        gateway.wait(timeout=60)


def _glob(pattern: str) -> re.Pattern[str]:
    """statsd_exporter's glob: ``*`` is one dot-free part of the name."""
    return re.compile(
        "^" + r"\.".join("([^.]+)" if part == "*" else re.escape(part) for part in pattern.split(".")) + "$"
    )


def test_the_statsd_mapping_names_every_line_of_a_run(tmp_path: Path) -> None:
    mapping = yaml.safe_load((STACK / "statsd_mapping.yml").read_text())
    rules = [(_glob(rule["match"]), rule) for rule in mapping["mappings"]]
    statsd = Listener()
    try:
        (tmp_path / "lagoa.yml").write_text(
            PUSHED.replace(
                "  pushgateway: http://127.0.0.1:{port}",
                f'  statsd: {{{{address: "127.0.0.1:{statsd.port}"}}}}',
            ).format()
            + "pipelines:\n  daily: {domains: [orders]}\n"
        )
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "orders_1.csv").write_text("order_id,amount\n1,2.0\n2,abc\n3,4.5\n")
        done = subprocess.run(
            [*LAGOA, "run", "daily", "--start", "2024-06-01", "--end", "2024-06-02", "-p", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        statsd.wait_for("airflow.dagrun.duration.success.")
    finally:
        statsd.close()
    mapped: dict[str, dict[str, str]] = {}
    for line in statsd.lines:
        name = line.split(":", 1)[0]
        matched = next(((match, r) for pattern, r in rules if (match := pattern.match(name))), None)
        assert matched is not None, f"no mapping names {name}"
        match, found = matched
        labels = {
            key: match.expand(value.replace("$", "\\")) for key, value in found.get("labels", {}).items()
        }
        mapped[name] = {"__name__": found["name"], **labels}
    assert mapped["airflow.dagrun.duration.success.pushed.daily"] == {
        "__name__": "airflow_dagrun_duration",
        "dag_id": "pushed.daily",
        "state": "success",
    }
    assert mapped["airflow.ti.finish.pushed.daily.ingest_orders.success"] == {
        "__name__": "airflow_ti_finish",
        "dag_id": "pushed.daily",
        "task_id": "ingest_orders",
        "state": "success",
    }
    assert mapped["airflow.dag.pushed.daily.validate_orders.duration"]["task_id"] == "validate_orders"
    assert mapped["airflow.lagoa.rows_written.silver.orders"] == {
        "__name__": "airflow_lagoa_rows_written",
        "table": "silver.orders",
    }
