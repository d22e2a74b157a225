"""The state database on SQLite and on a real Postgres: runs, attempts, leases across processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lagoa.state import StateStore
from tests.postgres import postgres_server


@pytest.fixture(scope="module")
def postgres_uri() -> Iterator[str]:
    with postgres_server() as uri:
        yield uri


@pytest.fixture(params=["sqlite", "postgres"])
def state_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    uri: str = request.getfixturevalue("postgres_uri")
    # A fresh schema per test: drop what an earlier test left.
    store = StateStore.open(uri, tmp_path)
    with store.engine.begin() as con:
        for table in ("lagoa_task_attempts", "lagoa_leases", "lagoa_runs"):
            con.exec_driver_sql(f"DELETE FROM {table}")
    store.close()
    return uri


def test_runs_and_attempts_are_recorded(state_uri: str, tmp_path: Path) -> None:
    store = StateStore.open(state_uri, tmp_path)
    day = datetime(2024, 6, 1, tzinfo=UTC)
    store.start_run("run-1", "daily", (day, day + timedelta(days=1)), {"trigger": "manual"})
    store.start_attempt("run-1", "ingest_orders", 1)
    store.finish_attempt("run-1", "ingest_orders", 1, "retrying", error="busy catalog")
    store.start_attempt("run-1", "ingest_orders", 2)
    store.finish_attempt("run-1", "ingest_orders", 2, "succeeded", rows_in=10, rows_out=9, log="ok")
    store.finish_run("run-1", "succeeded")
    store.start_run("run-2", "daily")
    store.finish_run("run-2", "failed", error="boom")

    run = store.run("run-1")
    assert run is not None and run["state"] == "succeeded" and run["interval_start"] == day
    assert [(a["attempt"], a["state"], a["rows_out"]) for a in run["attempts"]] == [
        (1, "retrying", None),
        (2, "succeeded", 9),
    ]
    assert [r["run_id"] for r in store.runs(state="failed")] == ["run-2"]
    assert {r["run_id"] for r in store.runs(pipeline="daily")} == {"run-1", "run-2"}
    assert store.run("nope") is None
    store.close()


HOLDER = """
import sys, time
from pathlib import Path
from lagoa.state import StateStore
store = StateStore.open(sys.argv[1], Path(sys.argv[2]))
lease = store.acquire("daily", "run-holder")
print("held" if lease else "refused", flush=True)
while lease:
    store.heartbeat(lease)
    time.sleep(0.2)
"""


def test_a_live_lease_is_respected_and_a_dead_ones_is_recovered(state_uri: str, tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, state_uri, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        store = StateStore.open(state_uri, tmp_path)
        stale = timedelta(seconds=2)
        assert store.acquire("daily", "run-other", stale_after=stale) is None  # alive: refused
        assert store.acquire("daily", "run-other", slots=2, stale_after=stale) is not None  # a second slot
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        deadline = time.monotonic() + 10
        lease = None
        while lease is None and time.monotonic() < deadline:
            lease = store.acquire("daily", "run-next", stale_after=stale)
            time.sleep(0.2)
        assert lease is not None and lease.slot == 0  # the dead holder's slot, taken over
        assert store.heartbeat(lease)
        store.release(lease)
        assert [row["run_id"] for row in store.leases("daily")] == ["run-other"]
        store.close()
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_retries_and_schedules_read_back_what_runs_recorded(state_uri: str, tmp_path: Path) -> None:
    store = StateStore.open(state_uri, tmp_path)
    day = datetime(2024, 6, 1, tzinfo=UTC)
    tick = day + timedelta(days=1, hours=2)
    store.start_run("run-1", "daily", (day, day + timedelta(days=1)), {"tick": tick.isoformat()})
    store.start_attempt("run-1", "ingest_orders", 1)
    store.finish_attempt("run-1", "ingest_orders", 1, "succeeded", rows_out=5)
    store.start_attempt("run-1", "validate_orders", 1)
    store.finish_attempt("run-1", "validate_orders", 1, "failed", error="quality")
    store.record_unstarted("run-1", "transform_orders", "skipped")
    store.finish_run("run-1", "failed", "validate_orders: quality")
    assert store.task_states("run-1") == {
        "ingest_orders": ("succeeded", 1),
        "validate_orders": ("failed", 1),
        "transform_orders": ("skipped", 0),
    }
    assert store.last_scheduled("daily") == tick
    assert store.last_scheduled("hourly") is None

    store.reopen_run("run-1")
    run = store.run("run-1")
    assert run is not None and (run["state"], run["ended_at"], run["error"]) == ("running", None, None)
    store.start_attempt("run-1", "transform_orders", 1)
    store.finish_attempt("run-1", "transform_orders", 1, "succeeded")
    assert store.task_states("run-1")["transform_orders"] == ("succeeded", 1)

    # A cancelled scheduled run does not count: its tick runs again.
    later = tick + timedelta(days=1)
    store.start_run(
        "run-2", "daily", (day + timedelta(days=1), day + timedelta(days=2)), {"tick": later.isoformat()}
    )
    store.finish_run("run-2", "cancelled")
    assert store.last_scheduled("daily") == tick
    store.close()


def test_a_lease_not_renewed_in_time_is_lost_even_before_another_run_takes_it(
    state_uri: str, tmp_path: Path
) -> None:
    store = StateStore.open(state_uri, tmp_path)
    stale = timedelta(seconds=1)
    lease = store.acquire("daily", "run-1", stale_after=stale)
    assert lease is not None and store.heartbeat(lease)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until its heartbeat is older than the timeout
        (held,) = store.leases("daily")
        if datetime.now(UTC) - held.heartbeat_at > stale:
            break
        time.sleep(0.05)
    assert not store.heartbeat(lease)  # stale: lost, though nobody took it yet
    again = store.acquire("daily", "run-1", stale_after=stale)  # the same run, taken again
    assert again is not None and again.holder != lease.holder
    assert not store.heartbeat(lease)  # the earlier taking holds nothing any more
    store.release(lease)
    assert store.heartbeat(again) and [r.holder for r in store.leases("daily")] == [again.holder]
    store.close()


def test_a_new_sqlite_state_database_opens_while_another_process_holds_it(tmp_path: Path) -> None:
    """Two processes opening the same new database: the one that comes second must wait for the
    first, not fail (switching a new database to WAL is refused at once while it is held)."""
    path = tmp_path / "state.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "con = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "con.execute('BEGIN IMMEDIATE'); con.execute('CREATE TABLE held (x)')\n"
            "print('held', flush=True); time.sleep(1.5); con.execute('COMMIT')\n",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        store = StateStore.open(f"sqlite:///{path}", tmp_path)  # while the other holds it
        with store.engine.connect() as con:
            assert con.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        store.close()
    finally:
        holder.communicate(timeout=60)
    assert holder.returncode == 0


def test_a_retried_run_took_the_sum_of_its_passes(state_uri: str, tmp_path: Path) -> None:
    from lagoa.state.store import RUNS

    store = StateStore.open(state_uri, tmp_path)
    store.start_run("run-1", "daily")
    first = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)
    with store.engine.begin() as con:  # the first pass: 10 s, a day before its retry
        con.execute(
            RUNS.update()
            .where(RUNS.c.run_id == "run-1")
            .values(state="failed", started_at=first, ended_at=first + timedelta(seconds=10))
        )
    store.reopen_run("run-1")
    resumed = store.run("run-1")
    assert resumed is not None and resumed.seconds is None  # running again
    store.finish_run("run-1", "succeeded")
    run = store.run("run-1")
    assert run is not None and run.ended_at is not None and run.seconds is not None
    second = (run.ended_at - datetime.fromisoformat(run.detail["resumed_at"])).total_seconds()
    assert 0 <= second < 60
    assert run.seconds == pytest.approx(10 + second)
    assert (run.ended_at - run.started_at).total_seconds() > 86_400  # what `took` showed before
    store.close()
