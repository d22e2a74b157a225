"""`lagoa run` in real processes: one run of a pipeline at a time, waiting or refused, and a
killed run's lease taken over once it goes stale."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lagoa.orchestrate.project import Project
from lagoa.state import StateStore

GENERATOR = Path(__file__).parents[1] / "examples" / "retail_lakehouse" / "generate.py"
LAGOA = [sys.executable, "-m", "lagoa.cli"]
ORDERS = """\
sources:
  erp_orders:
    format: csv
    path: samples/erp_orders*.csv
    primary_key: [order_id]
    ordering: updated_at
    columns: {{order_id: long, quantity: long, order_ts: timestamp, updated_at: timestamp}}
domains:
  orders: {{sources: [erp_orders]}}
"""
CONFIG = "name: runs\norchestration: {{when_busy: {when_busy}, lease_timeout: 10s}}\n" + ORDERS
"""A lease timeout short enough that the tests of a dead lease wait little, long enough that a
live run's heartbeat (six a timeout) keeps its lease on a heavily loaded machine."""


def wait_for_lease(root: Path, timeout: float = 60) -> None:
    store = StateStore.open("sqlite:///.lagoa/state.db", root)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if store.leases("all"):
                return
            time.sleep(0.05)
    finally:
        store.close()
    raise AssertionError("the first run never took its lease")


def generate_orders(folder: Path) -> None:
    """300,000 orders: enough that a run's ingest takes a moment."""
    subprocess.run(
        [
            sys.executable,
            str(GENERATOR),
            "--rows",
            "300000",
            "--only",
            "erp_orders",
            "--out",
            str(folder / "samples"),
        ],
        check=True,
        capture_output=True,
    )


def start(root: Path, config: str, *command: str) -> subprocess.Popen[str]:
    """``lagoa run`` (or another command) on the project file ``config``, in its own process."""
    return subprocess.Popen(
        [*LAGOA, *(command or ("run", "--json")), "-p", str(root / config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def test_concurrent_runs_wait_or_are_refused_and_a_dead_lease_is_recovered(tmp_path: Path) -> None:
    generate_orders(tmp_path)
    (tmp_path / "refuse.yml").write_text(CONFIG.format(when_busy="refuse"))
    (tmp_path / "wait.yml").write_text(CONFIG.format(when_busy="wait"))

    first = start(tmp_path, "refuse.yml")
    wait_for_lease(tmp_path)
    refused = subprocess.run(
        [*LAGOA, "run", "-p", str(tmp_path / "refuse.yml")], capture_output=True, text=True
    )
    assert refused.returncode == 1 and "already going on" in refused.stderr
    waiting = start(tmp_path, "wait.yml")
    assert first.wait(timeout=300) == 0, first.communicate()[1]
    assert waiting.wait(timeout=300) == 0, waiting.communicate()[1]
    for process in (first, waiting):
        process.communicate()

    store = StateStore.open("sqlite:///.lagoa/state.db", tmp_path)
    runs = store.runs()
    assert [r["state"] for r in runs] == ["succeeded", "succeeded"]
    assert runs[0]["started_at"] >= runs[1]["ended_at"]  # the waiting run started after the first ended

    # A run killed mid-way leaves its lease; the next run takes it over once it is stale.
    while True:  # a run that ends before the kill lands (a fast machine) is tried again
        killed = start(tmp_path, "refuse.yml")
        wait_for_lease(tmp_path)
        # The lease is taken just before the run is recorded: kill it once it is recorded.
        deadline = time.monotonic() + 60
        while not any(r["state"] == "running" for r in store.runs()) and killed.poll() is None:
            assert time.monotonic() < deadline, "the run was never recorded"
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)
        killed.communicate()
        if killed.returncode == -signal.SIGKILL:
            break
    assert store.leases("all"), "the killed run's lease should still be there"
    began = time.monotonic()
    after = subprocess.run([*LAGOA, "run", "-p", str(tmp_path / "wait.yml")], capture_output=True, text=True)
    assert after.returncode == 0, after.stderr
    assert time.monotonic() - began >= 2  # it waited for the lease to go stale
    assert store.leases("all") == []
    states = [r["state"] for r in store.runs()]
    assert states[:2] == ["succeeded", "failed"]  # the killed run is marked failed when its lease is taken
    store.close()


def snapshots_of(root: Path, run_id: str) -> dict[str, int]:
    """Per table of the project's lake, the snapshots committed by ``run_id``."""
    from lagoa.core.names import RUN_ID

    lake = Project.load(root / "wait.yml").lake
    found: dict[str, int] = {}
    for identifier in lake.identifiers():
        table = lake.table(identifier)
        assert table is not None
        found[identifier] = sum(
            1
            for s in table.metadata.snapshots
            if s.summary and s.summary.additional_properties.get(RUN_ID) == run_id
        )
    return found


def writable(database: Path) -> bool:
    """True when no process holds ``database``'s SQLite write lock."""
    import sqlite3

    if not database.exists():
        return True
    con = sqlite3.connect(database, timeout=0)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.rollback()
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        con.close()


def warehouse_free(root: Path) -> bool:
    """True when no process has the warehouse open for writing."""
    import duckdb

    path = root / ".lagoa" / "warehouse.duckdb"
    if not path.exists():
        return True
    try:
        duckdb.connect(str(path), read_only=True).close()
        return True
    except duckdb.IOException:
        return False


def pause(process: subprocess.Popen[str], root: Path) -> None:
    """SIGSTOP ``process`` at a moment it holds neither the state's nor the catalog's write lock,
    nor the warehouse (another process could not write them while it is stopped)."""
    databases = [root / ".lagoa" / "state.db", root / ".lagoa" / "catalog.db"]
    while True:
        process.send_signal(signal.SIGSTOP)
        if all(writable(database) for database in databases) and warehouse_free(root):
            return
        process.send_signal(signal.SIGCONT)
        time.sleep(0.01)


def test_a_run_paused_past_its_lease_timeout_commits_nothing_once_another_run_took_over(
    tmp_path: Path,
) -> None:
    generate_orders(tmp_path)
    (tmp_path / "wait.yml").write_text(CONFIG.format(when_busy="wait"))
    store = StateStore.open("sqlite:///.lagoa/state.db", tmp_path)
    paused = start(tmp_path, "wait.yml")
    try:
        deadline = time.monotonic() + 120
        run_id = None
        while time.monotonic() < deadline:  # until its ingest is running
            runs = store.runs()
            found = store.run(runs[0].run_id) if runs else None
            if found and any(a.task == "ingest_orders" for a in found.attempts):
                run_id = found.run_id
                break
            time.sleep(0.02)
        assert run_id is not None, "the run never started its ingest"
        pause(paused, tmp_path)
        # Stopped past its lease timeout: the next run takes the lease over and does the work.
        taker = subprocess.run(
            [*LAGOA, "run", "--json", "-p", str(tmp_path / "wait.yml")],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert taker.returncode == 0, taker.stderr
        before = snapshots_of(tmp_path, run_id)
        committed = store.run(run_id)
        assert committed is not None and committed.state == "failed"  # marked so by the taker
    finally:
        paused.send_signal(signal.SIGCONT)
    _, stderr = paused.communicate(timeout=600)
    assert paused.returncode == 1, stderr
    assert f"run `{run_id}` lost its lease of `all`" in stderr and "Traceback" not in stderr
    assert snapshots_of(tmp_path, run_id) == before  # nothing more was committed once it woke
    run = store.run(run_id)
    assert run is not None and run.state == "failed" and "lost its lease" in (run.error or "")
    assert all(a.state != "running" for a in run.attempts)
    assert store.leases("all") == []
    (after,) = [r for r in store.runs() if r.run_id != run_id]
    assert after.state == "succeeded"
    project = Project.load(tmp_path / "wait.yml")
    _, rows = project.query(
        "select (select count(*) from bronze.erp_orders), (select count(*) from silver.erp_orders)"
    )
    ((bronze, silver),) = rows
    lines = sum(len(f.read_text().splitlines()) - 1 for f in (tmp_path / "samples").glob("erp_orders*.csv"))
    assert bronze == lines and silver > 0  # every file loaded once, and merged
    store.close()


def test_two_ingests_of_the_same_files_at_once_both_succeed_and_load_them_once(tmp_path: Path) -> None:
    generate_orders(tmp_path)
    (tmp_path / "lagoa.yml").write_text(CONFIG.format(when_busy="refuse"))
    both = [start(tmp_path, "lagoa.yml", "ingest", "--json") for _ in range(2)]
    results = [process.communicate(timeout=600) for process in both]
    for process, (_, stderr) in zip(both, results, strict=True):
        assert process.returncode == 0, stderr
    summaries = [json.loads(out)["sources"][0] for out, _ in results]
    assert sorted(s["bronze_rows"] > 0 for s in summaries) == [False, True]  # loaded once
    (second,) = [s for s in summaries if s["bronze_rows"] == 0]
    assert second["skipped_files"] and all("already ingested" in f for f in second["skipped_files"])
    store = StateStore.open("sqlite:///.lagoa/state.db", tmp_path)
    assert [r.state for r in store.runs(pipeline="ingest")] == ["succeeded", "succeeded"]
    store.close()
    _, rows = Project.load(tmp_path).query("select count(*) from bronze.erp_orders")
    lines = sum(len(f.read_text().splitlines()) - 1 for f in (tmp_path / "samples").glob("erp_orders*.csv"))
    assert rows == [(lines,)]


SCHEDULED = (
    "name: scheduled\n"
    + ORDERS
    + """pipelines:
  hourly: {{domains: [orders], schedule: "0 * * * *", catchup: true, start: "{start}"}}
"""
)


def test_the_scheduler_stops_on_sigterm_and_a_restart_catches_up_without_gaps(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    sample = Path(__file__).parents[1] / "examples" / "retail_lakehouse" / "samples" / "erp_orders.csv"
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "erp_orders.csv").write_bytes(sample.read_bytes())
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    first_hour = now - timedelta(hours=40)
    (tmp_path / "lagoa.yml").write_text(SCHEDULED.format(start=first_hour.isoformat()))
    expected = [first_hour + timedelta(hours=h) for h in range(40)]

    scheduler = start(tmp_path, "lagoa.yml", "scheduler")
    store = StateStore.open("sqlite:///.lagoa/state.db", tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(store.runs(state="succeeded")) < 3:
        time.sleep(0.1)
    scheduler.send_signal(signal.SIGTERM)
    _, stderr = scheduler.communicate(timeout=120)
    assert scheduler.returncode == 0, stderr
    assert "SIGTERM: stopping after the running tasks" in stderr
    first = store.runs(limit=100)
    assert first and all(r["state"] in ("succeeded", "cancelled") for r in first)
    assert len([r for r in first if r["state"] == "succeeded"]) < len(expected)  # it stopped early

    again = subprocess.run(
        [*LAGOA, "scheduler", "--once", "-p", str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stderr
    done = sorted(r["interval_start"] for r in store.runs(state="succeeded", limit=100))
    assert done == expected  # every hour once, in order, none twice
    store.close()


def test_ctrl_c_lets_the_running_task_finish_and_cancels_the_rest(tmp_path: Path) -> None:
    generate_orders(tmp_path)
    (tmp_path / "lagoa.yml").write_text(CONFIG.format(when_busy="refuse"))
    running = start(tmp_path, "lagoa.yml")
    wait_for_lease(tmp_path)
    store = StateStore.open("sqlite:///.lagoa/state.db", tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until ingest is running
        runs = store.runs()
        found = store.run(runs[0]["run_id"]) if runs else None
        if found and any(a["task"] == "ingest_orders" for a in found["attempts"]):
            break
        time.sleep(0.02)
    running.send_signal(signal.SIGINT)
    _, stderr = running.communicate(timeout=300)
    assert running.returncode == 130, stderr
    assert "SIGINT: starting no new task" in stderr
    (run,) = store.runs()
    found = store.run(run["run_id"])
    assert found is not None and found["state"] == "cancelled"
    states = {a["task"]: a["state"] for a in found["attempts"]}
    assert states == {"ingest_orders": "succeeded", "validate_orders": "cancelled"}
    assert store.leases("all") == []
    store.close()


def test_ctrl_c_stops_an_ingest_after_its_running_step_and_the_next_ingest_completes_it(
    tmp_path: Path,
) -> None:
    generate_orders(tmp_path)
    (tmp_path / "lagoa.yml").write_text(CONFIG.format(when_busy="refuse"))
    running = start(tmp_path, "lagoa.yml", "ingest")
    store = StateStore.open("sqlite:///.lagoa/state.db", tmp_path)
    deadline = time.monotonic() + 60
    found = None
    while time.monotonic() < deadline:  # until the ingest step is running
        runs = store.runs(pipeline="ingest") if (tmp_path / ".lagoa" / "state.db").exists() else []
        found = store.run(runs[0].run_id) if runs else None
        if found and any(a.task == "ingest" for a in found.attempts):
            break
        time.sleep(0.02)
    assert found is not None, "the ingest never started"
    running.send_signal(signal.SIGINT)
    _, stderr = running.communicate(timeout=300)
    assert running.returncode == 130, stderr
    assert "SIGINT: stopping after this step" in stderr
    run = store.run(found.run_id)
    assert run is not None and run.state == "cancelled" and run.interval_start is None
    assert {a.task: a.state for a in run.attempts} == {"ingest": "succeeded", "validate": "cancelled"}
    assert store.leases("ingest") == []
    again = subprocess.run(
        [*LAGOA, "ingest", "--json", "-p", str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stderr
    (source,) = json.loads(again.stdout)["sources"]
    assert source["bronze_rows"] == 0 and source["silver_total"] > 0  # bronze was committed before
    assert [r.state for r in store.runs(pipeline="ingest")] == ["succeeded", "cancelled"]
    store.close()
