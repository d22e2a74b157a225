"""Postgres CDC: sustained changes applied per second, and replication lag under steady load.

    python benchmarks/postgres_cdc.py [--rows 200000] [--transactions 2000] [--rate 5000] [--seconds 30]

1. Throughput. With the replicator stopped, Postgres commits ``--transactions`` transactions of
   100 inserts, 100 updates and 20 deletes each. Lagoa then applies the whole backlog (change logs
   and mirrors, one commit per table per flush of 50,000 changes). The raw engine's figure is
   Postgres decoding the same backlog through the same slot (``pg_logical_slot_peek_binary_changes``
   counted, nothing written); the ratio is Lagoa's time over that.
2. Lag. pgbench commits single-row updates at ``--rate`` transactions per second for ``--seconds``
   (``synchronous_commit=off``: one fsync per transaction would cap this machine far lower)
   while ``lagoa cdc run --follow`` (in this process, ``flush_interval`` 0.5 s) applies them. Each
   transaction's lag is from its commit time in Postgres to the end of the Iceberg commit that made
   it visible in silver; p50/p95/max are reported.

The server is a throw-away PostgreSQL started for the run (the test suite's helper); pgbench ships
with the PostgreSQL client tools.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parents[1]))
from tests.postgres import postgres_server

sys.path.insert(0, str(Path(__file__).parent))
from common import figure

TABLE = """
CREATE TABLE events (id bigint PRIMARY KEY, account int, amount numeric(12,2), note text, updated_at timestamptz);
INSERT INTO events SELECT g, g % 1000, g % 500, 'event ' || g, now() FROM generate_series(1, {rows}) g;
"""
BACKLOG = """
DO $$
DECLARE base bigint := {rows};
BEGIN
  FOR t IN 1..{transactions} LOOP
    INSERT INTO events SELECT base + t * 100 + g, g, g, 'new', now() FROM generate_series(1, 100) g;
    UPDATE events SET amount = amount + 1, updated_at = now() WHERE id BETWEEN t * 100 AND t * 100 + 99;
    DELETE FROM events WHERE id BETWEEN t * 100 + {half} AND t * 100 + {half} + 19;
    COMMIT;
  END LOOP;
END $$;
"""
SMALL = """
DO $$
BEGIN
  FOR t IN 1..{transactions} LOOP
    INSERT INTO events VALUES ({rows} + t, t % 1000, 1, 'new', now());
    UPDATE events SET amount = amount + 1, updated_at = now() WHERE id = t;
    DELETE FROM events WHERE id = {rows} + t - 1 AND t > 1;
    COMMIT;
  END LOOP;
END $$;
"""
PGBENCH = r"""\set id random(1, {rows})
UPDATE events SET amount = amount + 1, updated_at = now() WHERE id = :id;
"""


def project_at(root: Path, dsn: str, flush_interval: float) -> object:
    from lagoa.orchestrate.project import Project

    (root / "lagoa.yml").write_text(
        "name: bench\nsources:\n  app:\n    kind: postgres\n    mode: cdc\n"
        f'    dsn: "{dsn}"\n    tables: [events]\n    flush_interval: {flush_interval}\n'
    )
    return Project.load(root)


def check_mirror(project: object, dsn: str) -> None:
    """A benchmark of wrong results measures nothing: silver must match the source."""
    summary = "SELECT count(*), sum(amount), sum(id) FROM {}"
    with psycopg.connect(dsn) as con:
        source = con.execute(summary.format("events").encode()).fetchone()
    mirror = project.query(summary.format("silver.events"))[1][0]  # type: ignore[attr-defined]
    if tuple(source or ()) != tuple(mirror):
        raise SystemExit(f"silver differs from the source: {mirror} != {source}")


def small_transactions(dsn: str, rows: int, transactions: int) -> list[dict[str, object]]:
    """`lagoa cdc run` in a fresh process, as a scheduler starts it: once with nothing to apply
    (its start-up), then on a backlog of ``transactions`` transactions of 3 changes each."""
    with tempfile.TemporaryDirectory() as folder:
        project = project_at(Path(folder), dsn, 1.0)
        command = [sys.executable, "-m", "lagoa.cli", "cdc", "run", "-p", folder]

        def timed() -> float:
            started = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True)
            return time.perf_counter() - started

        timed()  # sets up the slot and copies the table
        start_up = statistics.median(timed() for _ in range(3))
        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute(SMALL.format(rows=rows, transactions=transactions).encode())
        seconds = timed()
        check_mirror(project, dsn)
    changes = transactions * 3 - 1
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"small transactions: {changes:,} changes in {transactions:,} transactions, `lagoa cdc run` "
        f"{seconds:.1f} s with start-up = {changes / seconds:,.0f} changes/s (target ≥ 20,000); "
        f"start-up with nothing to apply {start_up:.2f} s (target ≤ 1 s)"
    )
    return [
        figure(
            f"CDC, {transactions:,} transactions of 3 changes: changes/s incl. start-up (target ≥ 20000)",
            changes / seconds,
            "changes/s",
            peak_mb=peak,
        ),
        figure("CDC `lagoa cdc run` start-up, nothing to apply (target ≤ 1)", start_up, "s", peak_mb=peak),
    ]


def throughput(dsn: str, rows: int, transactions: int) -> None:
    from lagoa.sources.cdc import Replicator, follow

    with tempfile.TemporaryDirectory() as folder:
        project = project_at(Path(folder), dsn, 1.0)
        config = project.config.sources["app"]  # type: ignore[attr-defined]
        with Replicator(project.workspace, "app", config, run_id="bench") as replicator:  # type: ignore[attr-defined]
            replicator.setup()
            with psycopg.connect(dsn, autocommit=True) as con:
                con.execute(BACKLOG.format(rows=rows, transactions=transactions, half=50).encode())
                started = time.perf_counter()
                peek = (
                    "SELECT count(*) FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, "
                    "'proto_version', '1', 'publication_names', %s)"
                )
                (messages,) = con.execute(
                    peek.encode(), (replicator.slot, replicator.publication)
                ).fetchone() or (0,)
                raw = time.perf_counter() - started
            started = time.perf_counter()
            result = follow(replicator, threading.Event(), once=True)
            seconds = time.perf_counter() - started
        check_mirror(project, dsn)
    print(
        f"throughput: {result.changes:,} changes in {result.transactions:,} transactions applied in "
        f"{seconds:.1f} s = {result.changes / seconds:,.0f} changes/s (target ≥ 20,000); "
        f"Postgres decoding the same {messages:,} messages: {raw:.1f} s; ratio {seconds / raw:.2f}"
    )


def lag(dsn: str, rows: int, rate: int, seconds: int) -> dict[str, object]:
    from lagoa.sources.cdc import FlushResult, Replicator, follow

    if shutil.which("pgbench") is None:
        raise SystemExit("pgbench is needed for the lag measurement: install the PostgreSQL client tools")
    lags: list[float] = []

    def record(result: FlushResult) -> None:
        visible = datetime.now(UTC)
        lags.extend((visible - committed).total_seconds() for committed in result.committed_at)

    query = urllib.parse.parse_qs(urllib.parse.urlsplit(dsn).query)
    with tempfile.TemporaryDirectory() as folder:
        project = project_at(Path(folder), dsn, 0.5)
        config = project.config.sources["app"]  # type: ignore[attr-defined]
        script = Path(folder) / "update.sql"
        script.write_text(PGBENCH.format(rows=rows))
        with Replicator(project.workspace, "app", config, run_id="bench") as replicator:  # type: ignore[attr-defined]
            replicator.setup()
            follow(replicator, threading.Event(), once=True)  # start from an empty backlog
            stop = threading.Event()
            applying = threading.Thread(target=follow, args=(replicator, stop), kwargs={"on_flush": record})
            applying.start()
            load = subprocess.run(
                ["pgbench", "-n", "-h", query["host"][0], "-p", query["port"][0], "-U", "postgres",
                 "-c", "4", "-j", "2", "-R", str(rate), "-T", str(seconds), "-f", str(script), "postgres"],
                capture_output=True, text=True, check=True,
                env={**os.environ, "PGOPTIONS": "-c synchronous_commit=off"},
            )  # fmt: skip
            time.sleep(1)  # the WAL writer flushes asynchronous commits within wal_writer_delay (200 ms)
            stop.set()  # the follower's last flush is under way or next; then catch up
            applying.join()
            follow(replicator, threading.Event(), once=True, on_flush=record)
            with psycopg.connect(dsn) as con:
                (updates,) = con.execute(
                    b"SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'events'"
                ).fetchone() or (0,)
            check_mirror(project, dsn)
    achieved = next((line for line in load.stdout.splitlines() if line.startswith("tps")), "tps = ?")
    lags.sort()
    p95 = lags[int(len(lags) * 0.95)] if lags else float("nan")
    print(
        f"lag under {rate:,} tx/s for {seconds} s (pgbench: {achieved.split('(')[0].strip()}): "
        f"{len(lags):,} transactions (Postgres counted {updates:,} updates), p50 {statistics.median(lags):.2f} s, p95 {p95:.2f} s, "
        f"max {lags[-1]:.2f} s (target p95 ≤ 2 s)"
    )
    return figure(
        f"CDC p95 lag at {rate:,} tx/s on {rows:,} rows (target ≤ 2)",
        p95,
        "s",
        spread=f"p50 {statistics.median(lags):.2f}, max {lags[-1]:.2f}",
        peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--transactions", type=int, default=2_000)
    parser.add_argument("--rate", type=int, default=5_000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument(
        "--small", type=int, default=20_000, help="transactions of 3 changes for the small-transaction figure"
    )
    parser.add_argument(
        "--lag-rows", type=int, default=2_000_000, help="rows of the table under the lag load"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    with postgres_server() as dsn:
        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute(TABLE.format(rows=args.rows).encode())
        throughput(dsn, args.rows, args.transactions)
    with postgres_server() as dsn:
        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute(TABLE.format(rows=args.rows).encode())
        figures = small_transactions(dsn, args.rows, args.small)
    with postgres_server() as dsn:
        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute(TABLE.format(rows=args.lag_rows).encode())
        figures.append(lag(dsn, args.lag_rows, args.rate, args.seconds))
    if args.json:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
