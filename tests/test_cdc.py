"""Postgres CDC against a real PostgreSQL 15 (wal_level=logical) started by the test: after random
concurrent transactions (inserts, updates, key changes, deletes, truncates, TOASTed values),
silver equals the source table; schema changes; errors that say what to change."""

from __future__ import annotations

import contextlib
import json
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lagoa.core.errors import ConfigError, SchemaEvolutionError, SourceError
from lagoa.core.report import SilentReporter
from lagoa.orchestrate.project import Project
from lagoa.sources.cdc import Replicator, follow
from tests.postgres import postgres_server

SCHEMA = """
CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2), active boolean,
    opened_at timestamptz, notes text);
CREATE TABLE lines (order_id int, line_no int, sku text, qty int, PRIMARY KEY (order_id, line_no));
CREATE TABLE audit (k int NOT NULL, v text);
ALTER TABLE audit REPLICA IDENTITY FULL;
INSERT INTO accounts SELECT g, 'owner ' || g, g * 10.5, g % 3 = 0, '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 hour', NULL
FROM generate_series(1, 300) g;
INSERT INTO lines SELECT g / 4, g % 4, 'sku-' || g, g % 9 FROM generate_series(1, 400) g;
INSERT INTO audit SELECT g, 'a' || g FROM generate_series(1, 50) g;
"""
TABLES = {"accounts": "id", "lines": "order_id, line_no", "audit": "k"}


@pytest.fixture()
def database() -> Iterator[str]:
    with postgres_server() as uri:
        with psycopg.connect(uri, autocommit=True) as con:
            con.execute(SCHEMA)
        yield uri


def cdc_project(
    root: Path,
    dsn: str,
    tables: str = "[accounts, lines, audit]",
    keys: str = "{audit: [k]}",
    extra: str = "",
) -> Project:
    """A project replicating the test tables (``extra``: more keys of the source, as YAML lines)."""
    root.mkdir(exist_ok=True)
    (root / "lagoa.yml").write_text(
        f"""
name: replica
sources:
  app:
    kind: postgres
    mode: cdc
    dsn: "{dsn}"
    tables: {tables}
    keys: {keys}
    flush_interval: 0.2
    flush_rows: 400
{extra}
domains:
  app: {{sources: [app]}}
"""
    )
    return Project.load(root)


def replicator(project: Project) -> Replicator:
    config = project.config.sources["app"]
    assert config.kind == "postgres"
    return Replicator(project.workspace, "app", config, run_id="test", reporter=SilentReporter())


class Messages(list[str]):
    """A reporter that keeps the messages."""

    def stage(self, item: str, message: str) -> None:
        self.append(message)

    def rows(self, item: str, done: int, total: int | None) -> None:
        pass


def _plain(value: Any) -> str:
    if hasattr(value, "astimezone") and getattr(value, "tzinfo", None) is not None:
        return str(value.astimezone().isoformat())
    return "NULL" if value is None else str(value)


def assert_mirrored(project: Project, dsn: str) -> None:
    """Each silver table holds exactly the source table's rows (every column compared)."""
    with psycopg.connect(dsn) as con:
        for table, key in TABLES.items():
            source = con.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
            _, mirrored = project.query(f"SELECT * FROM silver.{table} ORDER BY {key}")
            assert [tuple(map(_plain, r)) for r in mirrored] == [tuple(map(_plain, r)) for r in source], table


class Writer:
    """Random transactions of a few changes across the tables. Each writer changes only rows it
    owns (so that concurrent writers never deadlock) and makes keys from its own range."""

    def __init__(self, worker: int, workers: int, seed: int) -> None:
        self.rng = random.Random(seed + worker)
        self.accounts = [i for i in range(1, 301) if i % workers == worker]
        self.orders = [i for i in range(0, 151) if i % workers == worker]
        self.audit = [i for i in range(1, 51) if i % workers == worker]
        self.next_id = 1_000_000 * (worker + 1)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def transaction(self, con: psycopg.Connection[Any]) -> None:
        rng = self.rng
        with con.transaction():
            for _ in range(rng.randint(1, 6)):
                roll = rng.random()
                if roll < 0.2 or not self.accounts:
                    self.accounts.append(self.new_id())
                    con.execute(
                        "INSERT INTO accounts VALUES (%s, %s, %s, %s, now(), NULL)",
                        (
                            self.accounts[-1],
                            f"owner {self.next_id}",
                            rng.randint(0, 10**6) / 100,
                            rng.random() < 0.5,
                        ),
                    )
                elif roll < 0.4:
                    con.execute(
                        "UPDATE accounts SET balance = balance + %s, active = NOT active WHERE id = %s",
                        (rng.randint(1, 500), rng.choice(self.accounts)),
                    )
                elif roll < 0.47:  # a value large enough to be TOASTed; later updates leave it alone
                    con.execute(
                        "UPDATE accounts SET notes = (SELECT string_agg(md5(random()::text), '') "
                        "FROM generate_series(1, 200)) WHERE id = %s",
                        (rng.choice(self.accounts),),
                    )
                elif roll < 0.55:  # the primary key changes
                    old = self.accounts.pop(rng.randrange(len(self.accounts)))
                    self.accounts.append(self.new_id())
                    con.execute("UPDATE accounts SET id = %s WHERE id = %s", (self.accounts[-1], old))
                elif roll < 0.62:
                    con.execute(
                        "DELETE FROM accounts WHERE id = %s",
                        (self.accounts.pop(rng.randrange(len(self.accounts))),),
                    )
                elif roll < 0.78:
                    con.execute(
                        "INSERT INTO lines VALUES (%s, %s, %s, %s) ON CONFLICT (order_id, line_no) "
                        "DO UPDATE SET qty = lines.qty + 1",
                        (
                            rng.choice(self.orders),
                            rng.randint(0, 5),
                            f"sku-{rng.randint(1, 99)}",
                            rng.randint(1, 9),
                        ),
                    )
                elif roll < 0.86:
                    con.execute(  # key changes: above the order's greatest line, so never a clash
                        "UPDATE lines SET line_no = line_no + (SELECT max(line_no) + 1 FROM lines l "
                        "WHERE l.order_id = lines.order_id) WHERE order_id = %s",
                        (rng.choice(self.orders),),
                    )
                elif roll < 0.93:
                    con.execute("UPDATE audit SET v = v || 'x' WHERE k = %s", (rng.choice(self.audit),))
                elif roll < 0.985:
                    self.audit.append(self.new_id())
                    con.execute("INSERT INTO audit VALUES (%s, 'new')", (self.audit[-1],))
                else:
                    con.execute("TRUNCATE lines")


def writers(dsn: str, transactions: int, workers: int = 3, seed: int = 7, pause: float = 0.0) -> None:
    """Random transactions from several connections at once, ``pause`` seconds apart."""

    def write(worker: int) -> None:
        writer = Writer(worker, workers, seed)
        # Asynchronous commit: WAL is written before it is flushed, which CDC must not outrun.
        with psycopg.connect(dsn, autocommit=True, options="-c synchronous_commit=off") as con:
            for _ in range(transactions):
                # Two TRUNCATEs upgrading their locks at once deadlock: Postgres rolls one back.
                with contextlib.suppress(psycopg.errors.DeadlockDetected):
                    writer.transaction(con)
                time.sleep(pause)

    pool = [threading.Thread(target=write, args=(w,)) for w in range(workers)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    with psycopg.connect(dsn) as con:  # a synchronous commit flushes the WAL of all before it
        con.execute("SELECT txid_current()")


def test_random_concurrent_changes_are_mirrored_exactly(tmp_path: Path, database: str) -> None:
    project = cdc_project(tmp_path, database)
    with replicator(project) as r:
        r.setup()
        assert_mirrored(project, database)
        stop = threading.Event()
        applying = threading.Thread(target=follow, args=(r, stop))
        applying.start()  # flushes while the writers write
        try:
            writers(database, transactions=150)
        finally:
            stop.set()
            applying.join()
        follow(r, threading.Event(), once=True)
        status = r.status()
    assert_mirrored(project, database)
    assert status.lag_seconds == 0  # no committed change waits (WAL of other work may)
    assert {t.silver_lsn for t in status.tables} <= {status.confirmed_lsn, None} | {
        t.bronze_lsn for t in status.tables
    }
    ops = dict(project.query("SELECT lagoa_op, count(*) FROM bronze.accounts__changes GROUP BY 1")[1])
    assert {"r", "c", "u", "d"} <= set(ops), ops
    for table in TABLES:
        (total, distinct), *_ = project.query(
            f"SELECT count(*), count(DISTINCT (lagoa_lsn, lagoa_seq)) FROM bronze.{table}__changes"
        )[1]
        assert total == distinct, f"duplicate changes in bronze.{table}__changes"
    # TOASTed values that an update left alone are listed, NULL in the log, and intact in silver.
    (toasted,) = project.query(
        "SELECT count(*) FROM bronze.accounts__changes WHERE lagoa_unchanged = 'notes' AND notes IS NULL"
    )[1][0]
    (kept,) = project.query("SELECT count(*) FROM silver.accounts WHERE length(notes) = 6400")[1][0]
    assert toasted > 0 and kept > 0


def test_a_transaction_is_never_split(tmp_path: Path, database: str) -> None:
    project = cdc_project(tmp_path, database)
    with replicator(project) as r:
        r.setup()
        with psycopg.connect(database, autocommit=True) as con, con.transaction():
            con.execute(
                "INSERT INTO accounts SELECT g, 'bulk', 1, true, now(), NULL FROM generate_series(5001, 6000) g"
            )
        r.flush()  # flush_rows is 400: the 1,000-row transaction still arrives whole
        (count,) = project.query("SELECT count(*) FROM silver.accounts WHERE owner = 'bulk'")[1][0]
        assert count == 1000
        snapshots = project.lake.table("silver.accounts").metadata.snapshots  # type: ignore[union-attr]
        assert len(snapshots) == 2  # the copy, then one commit with the whole transaction


def test_schema_changes(tmp_path: Path, database: str) -> None:
    project = cdc_project(tmp_path, database)
    messages = Messages()
    config = project.config.sources["app"]
    assert config.kind == "postgres"
    with (
        Replicator(project.workspace, "app", config, run_id="t", reporter=messages) as r,
        psycopg.connect(database, autocommit=True) as con,
    ):
        r.setup()
        con.execute("ALTER TABLE accounts ADD COLUMN tier int")
        con.execute("UPDATE accounts SET tier = 2 WHERE id = 1")
        con.execute("UPDATE lines SET qty = 7 WHERE order_id = 1")  # in the same flush as the drop
        con.execute("ALTER TABLE lines DROP COLUMN qty")
        con.execute("INSERT INTO lines VALUES (900, 1, 'sku-x')")
        follow(r, threading.Event(), once=True)
        assert project.query("SELECT tier FROM silver.accounts WHERE id = 1")[1] == [(2,)]
        assert project.query("SELECT sku, qty FROM silver.lines WHERE order_id = 900")[1] == [("sku-x", None)]
        assert project.query("SELECT DISTINCT qty FROM silver.lines WHERE order_id = 1")[1] == [(7,)]
        assert any("`qty` was dropped" in m for m in messages)

        con.execute("ALTER TABLE audit ALTER COLUMN k TYPE text")
        con.execute("UPDATE audit SET v = 'retyped' WHERE k = '1'")
        with pytest.raises(SchemaEvolutionError, match="cannot change in place") as failure:
            r.flush()
        assert "lagoa cdc resync app audit" in str(failure.value.hint)
        r.resync(["audit"])
        follow(r, threading.Event(), once=True)
        assert project.query("SELECT v FROM silver.audit WHERE k = '1'")[1] == [("retyped",)]


def test_columns_added_with_a_default_fill_the_rows_already_mirrored(tmp_path: Path, database: str) -> None:
    """Postgres gives the rows it has a column's default (a constant, or a volatile one, row by
    row) with no change on the stream: silver gets them too, whether the column is noticed during
    a run (with or without a later change of its table) or at the next start."""
    project = cdc_project(tmp_path, database)
    messages = Messages()
    config = project.config.sources["app"]
    assert config.kind == "postgres"
    with (
        Replicator(project.workspace, "app", config, run_id="t", reporter=messages) as r,
        psycopg.connect(database, autocommit=True) as con,
    ):
        r.setup()
        con.execute("ALTER TABLE accounts ADD COLUMN tier int DEFAULT 3")  # constant: no rewrite
        con.execute("UPDATE accounts SET tier = 9 WHERE id = 1")
        con.execute("ALTER TABLE lines ADD COLUMN token text DEFAULT md5(random()::text)")  # volatile
        con.execute("ALTER TABLE audit ADD COLUMN note text")  # no default: every row NULL, no copy
        follow(r, threading.Event(), once=True)
        assert_mirrored(project, database)
        assert project.query("SELECT count(DISTINCT token) FROM silver.lines")[1] == [(400,)]
        refilled = [m for m in messages if "added with a default" in m]
        assert len(refilled) == 1 and "`tier`" in refilled[0] and "`token`" in refilled[0]
        assert "audit" not in refilled[0]
        con.execute("UPDATE lines SET sku = 'later' WHERE order_id = 2")  # changes apply as before
        follow(r, threading.Event(), once=True)
        assert_mirrored(project, database)
    assert len([m for m in messages if "added with a default" in m]) == 1
    with psycopg.connect(database, autocommit=True) as con:  # between two runs
        con.execute("ALTER TABLE audit ADD COLUMN stamp timestamptz DEFAULT clock_timestamp()")
    messages.clear()
    with Replicator(project.workspace, "app", config, run_id="t", reporter=messages) as r:
        done = r.setup()
    assert any("`stamp` to `public.audit`" in line for line in done)
    assert_mirrored(project, database)


def test_a_column_dropped_between_runs_is_reported_once(tmp_path: Path, database: str) -> None:
    project = cdc_project(tmp_path, database)
    config = project.config.sources["app"]
    assert config.kind == "postgres"
    with replicator(project) as r:
        r.setup()
    with psycopg.connect(database, autocommit=True) as con:
        con.execute("ALTER TABLE lines DROP COLUMN qty")
        con.execute("INSERT INTO lines VALUES (900, 1, 'sku-x')")
    for start in range(2):
        messages = Messages()
        with Replicator(project.workspace, "app", config, run_id="t", reporter=messages) as r:
            r.setup()
            follow(r, threading.Event(), once=True)
        dropped = [m for m in messages if "`qty` was dropped" in m]
        assert dropped == (
            [
                "column `qty` was dropped from `public.lines`: silver keeps it, NULL in rows changed from now on"
            ]
            if start == 0
            else []
        )
    assert project.query("SELECT sku, qty FROM silver.lines WHERE order_id = 900")[1] == [("sku-x", None)]
    assert project.query("SELECT qty FROM silver.lines WHERE order_id = 1 AND line_no = 1")[1] == [(5,)]


def test_bad_configuration_says_what_to_change(tmp_path: Path, database: str) -> None:
    with psycopg.connect(database, autocommit=True) as con:
        con.execute("CREATE TABLE loose (k int, v text)")
        con.execute("ALTER TABLE loose REPLICA IDENTITY FULL")
        con.execute("CREATE ROLE reader LOGIN")
        con.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader")
    project = cdc_project(tmp_path, database)
    # A table without a primary key and without a full replica identity.
    loose = cdc_project(tmp_path / "loose", database, tables="[loose]", keys="{loose: [k]}")
    with replicator(loose) as r:  # a declared key that may be NULL
        with pytest.raises(ConfigError, match="may be NULL") as failure:
            r.setup()
        assert "SET NOT NULL" in str(failure.value.hint)
    with psycopg.connect(database, autocommit=True) as con:
        con.execute("ALTER TABLE loose ALTER COLUMN k SET NOT NULL, REPLICA IDENTITY DEFAULT")
    with replicator(loose) as r:  # no primary key, and Postgres would send no old row
        with pytest.raises(ConfigError, match="no primary key") as failure:
            r.setup()
        assert "REPLICA IDENTITY FULL" in str(failure.value.hint)
    with psycopg.connect(database, autocommit=True) as con:
        con.execute("CREATE UNIQUE INDEX loose_v ON loose (v)")
        con.execute("ALTER TABLE loose ALTER COLUMN v SET NOT NULL, REPLICA IDENTITY USING INDEX loose_v")
    # An identity index that is not the key.
    with (
        replicator(loose) as r,
        pytest.raises(ConfigError, match=r"identity index \(v\) is not the key \(k\)"),
    ):
        r.setup()
    # A user without the REPLICATION attribute.
    reader = database.replace("postgresql://postgres@", "postgresql://reader@")
    with replicator(cdc_project(tmp_path / "reader", reader)) as r:
        with pytest.raises(ConfigError, match="may not use replication slots") as failure:
            r.setup()
        assert "ALTER ROLE reader WITH REPLICATION" in str(failure.value.hint)
    # The slot in use by another replicator.
    with replicator(project) as first:
        first.setup()
        with replicator(project) as second, pytest.raises(ConfigError, match="in use by another") as failure:
            second.setup()
        assert "stop the other process" in str(failure.value.hint)


def test_wal_level_must_be_logical(tmp_path: Path) -> None:
    with postgres_server(wal_level="replica") as uri:
        with psycopg.connect(uri, autocommit=True) as con:
            con.execute(SCHEMA)
        project = cdc_project(tmp_path, uri)
        with replicator(project) as r, pytest.raises(ConfigError, match="wal_level = replica") as failure:
            r.setup()
        assert "ALTER SYSTEM SET wal_level = logical" in str(failure.value.hint)
        # `lagoa doctor` fails the source's replication check, and `lagoa cdc status` fails, both
        # naming the fix.
        doctor = subprocess.run([*LAGOA, "doctor", "--json"], cwd=tmp_path, capture_output=True, text=True)
        assert doctor.returncode == 1, doctor.stdout + doctor.stderr
        failed = [c for c in json.loads(doctor.stdout) if c["ok"] == "NO"]
        assert [c["check"] for c in failed] == ["source app replication"]
        assert "wal_level = replica" in failed[0]["detail"]
        assert "ALTER SYSTEM SET wal_level = logical" in failed[0]["detail"]
        status = subprocess.run([*LAGOA, "cdc", "status"], cwd=tmp_path, capture_output=True, text=True)
        assert status.returncode != 0, status.stdout + status.stderr
        assert "ALTER SYSTEM SET wal_level = logical" in status.stdout + status.stderr
        assert "Traceback" not in status.stderr


LAGOA = [sys.executable, "-m", "lagoa.cli"]


def test_two_lakes_never_split_one_slot(tmp_path: Path, database: str) -> None:
    """Each lake gets a slot of its own; a lake given a slot another lake reads refuses it; a lake
    whose slot someone else moved on stops with the fix; a lake set up under the old default slot
    name keeps it."""
    first, second = cdc_project(tmp_path / "one", database), cdc_project(tmp_path / "two", database)
    with replicator(first) as one, replicator(second) as two:
        one.setup()
        two.setup()
        assert one.slot != two.slot and one.publication != two.publication
        with psycopg.connect(database, autocommit=True) as con:
            for i in range(20):
                con.execute("UPDATE accounts SET owner = %s WHERE id = %s", (f"moved {i}", i + 1))
        follow(two, threading.Event(), once=True)
        follow(one, threading.Event(), once=True)
    for project in (first, second):
        assert_mirrored(project, database)

    # Two lakes told to use one slot: the second refuses it rather than share it.
    shared = "    slot: lagoa_shared"
    third, fourth = (cdc_project(tmp_path / n, database, extra=shared) for n in ("three", "four"))
    with replicator(third) as r:
        r.setup()
    with replicator(fourth) as r, pytest.raises(ConfigError, match="this lake did not create it") as refused:
        r.setup()
    assert "a slot of its own" in str(refused.value.hint)

    # Another consumer reads the slot: the lake stops rather than miss its changes.
    with psycopg.connect(database, autocommit=True) as con:
        con.execute("UPDATE accounts SET owner = 'taken' WHERE id = 1")
        con.execute("SELECT pg_replication_slot_advance('lagoa_shared', pg_current_wal_lsn())")
    with replicator(third) as r, pytest.raises(SourceError, match="where this lake left it") as taken:
        r.setup()
        follow(r, threading.Event(), once=True)
    assert "a slot of its own" in str(taken.value.hint)
    _, rows = third.query("SELECT owner FROM silver.accounts WHERE id = 1")
    assert rows == [("moved 0",)]  # nothing half-applied

    # A lake set up before lakes kept a record of their slot keeps the slot it has.
    old = tmp_path / "old"
    legacy = cdc_project(old, database, extra="    slot: lagoa_app\n    publication: lagoa_app")
    with replicator(legacy) as r:
        r.setup()
    (old / ".lagoa/lake/cdc/app.json").unlink()
    legacy = cdc_project(old, database)
    with psycopg.connect(database, autocommit=True) as con:
        con.execute("UPDATE accounts SET owner = 'later' WHERE id = 2")
    with replicator(legacy) as r:
        assert r.slot == "lagoa_app"
        r.setup()
        follow(r, threading.Event(), once=True)
    assert_mirrored(legacy, database)


def test_killed_replicator_resumes_exactly_once(tmp_path: Path, database: str) -> None:
    """`lagoa cdc run --follow` is SIGKILLed at random moments while writers run; each restart
    resumes, and in the end silver equals the source and no change is logged twice."""
    cdc_project(tmp_path, database)
    setup = subprocess.run([*LAGOA, "cdc", "setup", "-p", str(tmp_path)], capture_output=True, text=True)
    assert setup.returncode == 0, setup.stderr
    writing = threading.Thread(target=writers, args=(database, 600), kwargs={"seed": 11, "pause": 0.02})
    writing.start()
    rng = random.Random(5)
    kills = 0
    try:
        while writing.is_alive() and kills < 8:
            process = subprocess.Popen(
                [*LAGOA, "cdc", "run", "--follow", "-p", str(tmp_path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(1.0, 3.0))  # about 1 s to start, then flushes every 0.2 s
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
    finally:
        writing.join()
    assert kills >= 3
    done = subprocess.run([*LAGOA, "cdc", "run", "-p", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    project = Project.load(tmp_path)
    assert_mirrored(project, database)
    for table in TABLES:
        (total, distinct), *_ = project.query(
            f"SELECT count(*), count(DISTINCT (lagoa_lsn, lagoa_seq)) FROM bronze.{table}__changes"
        )[1]
        assert total == distinct, f"duplicate changes in bronze.{table}__changes"
    status = subprocess.run(
        [*LAGOA, "cdc", "status", "--json", "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["slot"].startswith("lagoa_app_") and report["lag_seconds"] == 0
    assert {t["table"] for t in report["tables"]} == set(TABLES)
    assert all(t["silver_lsn"] == t["bronze_lsn"] is not None for t in report["tables"])


def test_every_table_of_a_schema_when_none_are_listed(tmp_path: Path, database: str) -> None:
    with psycopg.connect(database, autocommit=True) as con:
        con.execute(
            "CREATE SCHEMA crm; CREATE TABLE crm.leads (id int PRIMARY KEY, name text); "
            "CREATE TABLE crm.calls (id int PRIMARY KEY, lead_id int); INSERT INTO crm.leads VALUES (1, 'a')"
        )
    root = tmp_path / "crm"
    root.mkdir()
    (root / "lagoa.yml").write_text(
        f'name: crm\nsources:\n  crm:\n    kind: postgres\n    mode: cdc\n    dsn: "{database}"\n    schema: crm\n'
    )
    project = Project.load(root)
    config = project.config.sources["crm"]
    assert config.kind == "postgres"
    with Replicator(project.workspace, "crm", config, run_id="t", reporter=SilentReporter()) as r:
        r.setup()
        with psycopg.connect(database, autocommit=True) as con:
            con.execute("INSERT INTO crm.calls VALUES (7, 1)")
        follow(r, threading.Event(), once=True)
        assert [t.table for t in r.status().tables] == ["calls", "leads"]
    assert project.query("SELECT * FROM silver.leads")[1] == [(1, "a")]
    assert project.query("SELECT * FROM silver.calls")[1] == [(7, 1)]


def test_ingest_of_a_cdc_source_sets_up_then_applies_what_was_committed(
    tmp_path: Path, database: str
) -> None:
    """`lagoa ingest` (and so a pipeline's ingest task) replicates a CDC source once per run."""
    project = cdc_project(tmp_path, database)
    replication = [c for c in project.doctor() if c[0] == "source app replication"]
    assert replication == [("source app replication", True, replication[0][2])]
    first = project.ingest()
    assert first.sources[0].bronze_rows == 300 + 400 + 50  # the copy from the slot's snapshot
    assert_mirrored(project, database)
    with psycopg.connect(database, autocommit=True) as con:
        con.execute("UPDATE accounts SET owner = 'renamed' WHERE id <= 10")
        con.execute("DELETE FROM lines WHERE order_id = 3")
    second = project.ingest()
    assert second.sources[0].bronze_rows == 10 + 4
    assert_mirrored(project, database)


def test_follow_stops_cleanly_on_sigterm(tmp_path: Path, database: str) -> None:
    cdc_project(tmp_path, database)
    process = subprocess.Popen(
        [*LAGOA, "cdc", "run", "--follow", "-p", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:  # set up, copied, then following
        if "following slot" in line:
            break
    with psycopg.connect(database, autocommit=True) as con:
        con.execute("INSERT INTO accounts VALUES (777, 'late', 1, true, now(), NULL)")
    time.sleep(1.0)  # a flush or two
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "SIGTERM: stopping after this flush" in err
    assert "applied 1 change(s) from 1 transaction(s)" in out
    assert Project.load(tmp_path).query("SELECT owner FROM silver.accounts WHERE id = 777")[1] == [("late",)]


def test_follow_serves_the_slots_lag_and_position_as_metrics(tmp_path: Path, database: str) -> None:
    cdc_project(tmp_path, database, extra="observe:\n  metrics: {port: 0}")
    process = subprocess.Popen(
        [*LAGOA, "cdc", "run", "--follow", "-p", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = None
    try:
        for line in process.stdout:
            if "metrics at " in line:
                url = line.split("metrics at ", 1)[1].strip()
            if "following slot" in line:
                break
        assert url is not None, "no metrics address printed"
        with psycopg.connect(database, autocommit=True) as con:
            con.execute("INSERT INTO accounts VALUES (778, 'metered', 1, true, now(), NULL)")
            written = con.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
        assert written is not None
        deadline = time.monotonic() + 60
        while True:  # the slot confirms the insert once its flush committed
            with urllib.request.urlopen(url, timeout=10) as response:
                exposition = response.read().decode()
            samples = {
                s.name: s.value
                for family in text_string_to_metric_families(exposition)
                for s in family.samples
                if s.labels.get("source") == "app"
            }
            if samples.get("lagoa_cdc_confirmed_lsn", 0) >= int(written[0]):
                break
            assert time.monotonic() < deadline, f"the slot's position never passed the insert: {samples}"
            time.sleep(0.2)
        assert samples["lagoa_cdc_up"] == 1
        assert samples["lagoa_cdc_lag_bytes"] >= 0 and samples["lagoa_cdc_retained_wal_bytes"] > 0
        with psycopg.connect(database, autocommit=True) as con:
            slot = con.execute(
                "SELECT pg_current_wal_lsn() - restart_lsn FROM pg_replication_slots"  # the only slot of this server
            ).fetchone()
        assert slot is not None and samples["lagoa_cdc_retained_wal_bytes"] <= int(slot[0])
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    assert process.returncode == 0


def test_status_warns_when_the_slot_retains_too_much_wal(tmp_path: Path, database: str) -> None:
    project = cdc_project(tmp_path, database, extra="    max_retained_wal_mb: 1")
    with replicator(project) as r:
        r.setup()
        with psycopg.connect(database, autocommit=True) as con:  # WAL the slot must keep: 2 MB+
            con.execute(
                "CREATE TABLE scratch AS SELECT g, md5(g::text) AS v FROM generate_series(1, 40000) g"
            )
        status = r.status()
        warning = r.retained_warning(status)
    assert status.retained_wal_bytes > 1024 * 1024
    assert warning is not None and "bound: 1 MB" in warning and "lagoa cdc run" in warning
    shown = subprocess.run([*LAGOA, "cdc", "status", "-p", str(tmp_path)], capture_output=True, text=True)
    assert shown.returncode == 0 and f"warning: slot `{r.slot}` makes Postgres keep" in shown.stderr


def test_an_idle_slot_moves_past_other_activity(tmp_path: Path, database: str) -> None:
    """No published table changes, but other tables write WAL: a heartbeat lets the slot advance."""
    with replicator(cdc_project(tmp_path, database)) as r:
        r.setup()
        with psycopg.connect(database, autocommit=True) as con:
            con.execute(
                "CREATE TABLE scratch AS SELECT g, md5(g::text) AS v FROM generate_series(1, 40000) g"
            )
            (after,) = con.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone() or (0,)
        before = r.status().confirmed_lsn or 0
        assert int(after) - before > 1024 * 1024
        r.flush()  # nothing to apply: writes the heartbeat
        time.sleep(0.5)  # the WAL writer flushes it
        result = r.flush()
        assert result.transactions == 0
        assert (r.status().confirmed_lsn or 0) >= int(after)


def test_a_failed_first_copy_is_copied_again(tmp_path: Path, database: str) -> None:
    with psycopg.connect(database, autocommit=True) as con:
        con.execute("UPDATE accounts SET notes = 'x' || repeat('y', 10) WHERE id = 1")
        con.execute("CREATE TABLE prices (id int PRIMARY KEY, price numeric(8,2))")
        con.execute("INSERT INTO prices VALUES (1, 1.5), (2, 'NaN')")  # NaN has no decimal form
    project = cdc_project(tmp_path, database, tables="[accounts, prices]")
    with (
        replicator(project) as r,
        pytest.raises(SourceError, match=r"copying `public.prices` failed: column `price`"),
    ):
        r.setup()
    with psycopg.connect(database, autocommit=True) as con:
        con.execute("UPDATE prices SET price = 2.5 WHERE id = 2")
        con.execute("UPDATE accounts SET owner = 'after the failed copy' WHERE id = 2")
    with replicator(project) as r:
        assert any("copied accounts, prices" in line for line in r.setup())
        follow(r, threading.Event(), once=True)
    assert project.query("SELECT * FROM silver.prices ORDER BY id")[1] == [
        (1, Decimal("1.50")),
        (2, Decimal("2.50")),
    ]
    assert project.query("SELECT owner FROM silver.accounts WHERE id = 2")[1] == [("after the failed copy",)]
    assert project.query("SELECT count(*) FROM silver.accounts")[1] == [(300,)]


def test_a_failed_flush_commits_nothing_and_leaves_no_staged_folder(tmp_path: Path, database: str) -> None:
    project = cdc_project(tmp_path, database, tables="[accounts]")
    root = Path(project.storage.location("."))
    with replicator(project) as r:
        r.setup()
        staged = sorted(root.rglob("commit-*"))  # the copy's, committed
        with psycopg.connect(database, autocommit=True) as con:
            con.execute("UPDATE accounts SET balance = 'NaN' WHERE id = 1")  # no decimal form
        with pytest.raises(SourceError, match=r"`public\.accounts` failed: .*NaN") as failed:
            r.flush()
    assert "lagoa cdc resync" in str(failed.value)  # the error says what to do
    assert sorted(root.rglob("commit-*")) == staged
    assert project.query("SELECT balance FROM silver.accounts WHERE id = 1")[1] == [(Decimal("10.50"),)]


def test_changes_a_mirror_holds_are_skipped_even_when_the_slot_is_behind(
    tmp_path: Path, database: str
) -> None:
    """A second slot left behind re-reads transactions silver already holds (as after a crash
    between the commits and the slot's advance): they are skipped, and a TOASTed value an update
    left out is found under the key silver holds, not the key before those transactions."""
    project = cdc_project(tmp_path, database)
    toast = "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 200))"
    with replicator(project) as r, psycopg.connect(database, autocommit=True) as con:
        r.setup()
        con.execute("SELECT pg_create_logical_replication_slot('behind', 'pgoutput')")
        con.execute(f"UPDATE accounts SET notes = {toast} WHERE id = 5")
        r.flush()
        con.execute("UPDATE accounts SET id = 5005 WHERE id = 5")  # the key changes, notes left out
        r.flush()
        con.execute("UPDATE accounts SET balance = 1 WHERE id = 5005")  # notes left out again
    text = (tmp_path / "lagoa.yml").read_text().replace("mode: cdc", "mode: cdc\n    slot: behind")
    (tmp_path / "lagoa.yml").write_text(text)
    project = Project.load(tmp_path)
    with replicator(project) as behind:
        behind.setup()
        result = follow(behind, threading.Event(), once=True)
    assert result.tables == {"accounts": 1}  # only the last transaction was new to silver
    assert_mirrored(project, database)


def test_partitioned_tables_and_generated_columns(tmp_path: Path, database: str) -> None:
    with psycopg.connect(database, autocommit=True) as con:
        con.execute(
            "CREATE TABLE events (id int, day date, n int, twice int GENERATED ALWAYS AS (n * 2) STORED, "
            "PRIMARY KEY (id, day)) PARTITION BY RANGE (day); "
            "CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01'); "
            "INSERT INTO events (id, day, n) VALUES (1, '2024-05-01', 1)"
        )
    project = cdc_project(tmp_path, database, tables="[events]")
    with replicator(project) as r, psycopg.connect(database, autocommit=True) as con:
        r.setup()
        con.execute("INSERT INTO events (id, day, n) VALUES (2, '2024-06-01', 2)")
        con.execute("UPDATE events SET n = 10 WHERE id = 1")
        result = follow(r, threading.Event(), once=True)
    assert result.changes == 2
    # Logical replication does not send generated columns, so the mirror leaves them out.
    assert project.query("SELECT * FROM silver.events ORDER BY id")[1] == [
        (1, date(2024, 5, 1), 10),
        (2, date(2024, 6, 1), 2),
    ]


def test_every_cdc_command_fits_80_columns_and_names_tables_whole(tmp_path: Path, database: str) -> None:
    """`lagoa cdc` in a pseudo-terminal 80 columns wide (the other commands: test_cli_every_command)."""
    from tests.test_cli_every_command import fits
    from tests.test_cli_fits import in_terminal

    cdc_project(tmp_path, database)
    fits(in_terminal(["cdc", "setup"], tmp_path), *TABLES)
    with psycopg.connect(database, autocommit=True) as con:
        con.execute("UPDATE accounts SET balance = balance + 1 WHERE id < 10")
    fits(in_terminal(["cdc", "run"], tmp_path), "accounts")
    status = in_terminal(["cdc", "status"], tmp_path)
    slot = json.loads(
        subprocess.run(
            [*LAGOA, "cdc", "status", "--json", "-p", str(tmp_path)], capture_output=True, text=True
        ).stdout
    )["slot"]
    fits(status, slot, *TABLES)
    fits(in_terminal(["cdc", "resync", "app", "audit"], tmp_path), "audit")
    fits(in_terminal(["cdc", "drop"], tmp_path), slot)
