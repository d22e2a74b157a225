"""Postgres snapshot: an N-row table copied into bronze and silver by Lagoa, against Postgres's own
``COPY … TO STDOUT`` read to nowhere, on the same server in the same run.

    python benchmarks/postgres_snapshot.py [--rows 10000000] [--pairs 2]

The server is a throw-away PostgreSQL started for the run (the test suite's helper).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parents[1]))
from tests.postgres import postgres_server

TABLE = """
CREATE TABLE orders (
    id bigint PRIMARY KEY, customer_id bigint, amount numeric(12,2), status text, ordered_at timestamptz
);
INSERT INTO orders
SELECT g, g % 100000, round((g % 50000) / 100.0, 2), (ARRAY['placed','paid','shipped'])[g % 3 + 1],
       '2024-06-01'::timestamptz + g * interval '1 second'
FROM generate_series(1, {rows}) g;
"""


def copy_to_nowhere(dsn: str) -> float:
    started = time.perf_counter()
    with (
        psycopg.connect(dsn) as con,
        con.cursor() as cursor,
        cursor.copy("COPY (SELECT * FROM orders) TO STDOUT") as copy,
    ):
        for _ in copy:
            pass
    return time.perf_counter() - started


def lagoa_snapshot(dsn: str) -> float:
    from lagoa.orchestrate.project import Project

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "lagoa.yml").write_text(
            "name: bench\nsources:\n  shop:\n    kind: postgres\n    dsn: ${env:BENCH_DSN}\n    tables: [orders]\n"
        )
        os.environ["BENCH_DSN"] = dsn
        project = Project.load(root)
        started = time.perf_counter()
        summary = project.ingest()
        seconds = time.perf_counter() - started
        assert summary.sources[0].silver_rows > 0
        return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--pairs", type=int, default=2)
    args = parser.parse_args()
    with postgres_server() as dsn:
        print(f"loading {args.rows:,} rows into Postgres …", file=sys.stderr)
        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute(TABLE.format(rows=args.rows).encode())
            con.execute(b"VACUUM ANALYZE orders")
        copy_to_nowhere(dsn)  # warm the cache
        ratios, lagoa, copy = [], [], []
        for _ in range(args.pairs):
            lagoa.append(lagoa_snapshot(dsn))
            copy.append(copy_to_nowhere(dsn))
            ratios.append(lagoa[-1] / copy[-1])
        print(
            f"snapshot of {args.rows:,} rows → bronze + silver: {statistics.median(lagoa):.1f} s; "
            f"COPY TO STDOUT to nowhere: {statistics.median(copy):.1f} s; "
            f"ratio {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f}; target ≤ 1.5)"
        )


if __name__ == "__main__":
    main()
