"""Benchmarks: Lagoa against the raw engine doing the same work, side by side in one run.

CSV → bronze Iceberg, and CSV → bronze + silver, each against DuckDB
``COPY (SELECT * FROM read_csv(...)) TO 'x.parquet'`` on the same file. Runs alternate
(A B A B …) after a warm-up; we report the median of the per-pair ratios with min–max, and
each side's peak memory (max RSS of its process).

    python benchmarks/run.py [--rows 5000000] [--pairs 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, alternate, generate, print_table, side

CONFIG = """\
name: bench
sources:
  erp_orders:
    format: csv
    path: {path}
    primary_key: [order_id]
    ordering: updated_at
    partition_by: ["day(order_ts)"]
    columns: {{order_id: long, store_id: long, customer_id: long, product_id: long, quantity: long,
              unit_price: "decimal(12,2)", status: string, order_ts: timestamp, updated_at: timestamp}}
"""

# Each side runs in its own process so peak memory (ru_maxrss) is its own.
DUCKDB_SIDE = """
import duckdb, resource, sys, time
started = time.perf_counter()
duckdb.connect().execute(f"COPY (SELECT * FROM read_csv('{sys.argv[1]}', ignore_errors=true)) TO '{sys.argv[2]}'")
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
LAGOA_SIDE = """
import resource, sys, time
from datetime import UTC, datetime
from lagoa.orchestrate.project import Project
from lagoa.orchestrate.build import new_run_id
from lagoa.silver.merge import merge_silver
from lagoa.workspace import StageContext
from lagoa.sources.bronze import load_bronze
from lagoa.sources.files import discover
project = Project.load(sys.argv[1])
with_silver = sys.argv[2] == "silver"
name, config = "erp_orders", project.config.sources["erp_orders"]
started = time.perf_counter()
con = project.engine()
now = datetime.now(UTC)
run_id = new_run_id(now)
files = discover(name, config.path, project.root)
load_bronze(con, project.lake, project.storage, name, config, files, run_id=run_id, ingested_at=now)
if with_silver:
    merge_silver(StageContext(project.workspace, run_id, now), con, name, config)
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def lagoa_once(csv: Path, mode: str) -> tuple[float, float]:
    project = DATA / f"project-{mode}"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    (project / "lagoa.yml").write_text(CONFIG.format(path=csv))
    try:
        return side(LAGOA_SIDE, str(project), mode)
    finally:
        shutil.rmtree(project, ignore_errors=True)


def duckdb_once(csv: Path) -> tuple[float, float]:
    target = DATA / "baseline.parquet"
    try:
        return side(DUCKDB_SIDE, str(csv), str(target))
    finally:
        target.unlink(missing_ok=True)


def compare(name: str, csv: Path, mode: str, pairs: int) -> dict[str, object]:
    return alternate(
        name, (mode,), ("duckdb",), pairs, lambda m: duckdb_once(csv) if m == "duckdb" else lagoa_once(csv, m)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000, help="ERP orders to generate (seeded)")
    parser.add_argument("--pairs", type=int, default=5, help="alternating Lagoa/DuckDB pairs after warm-up")
    parser.add_argument("--modes", default="bronze,silver", help="what to load: bronze, silver or both")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    csv = generate(args.rows)
    started = time.perf_counter()
    labels = {
        "bronze": f"CSV → bronze Iceberg / DuckDB COPY csv→parquet, {args.rows:,} rows (target ≤ 1.25)",
        "silver": f"CSV → bronze + silver / DuckDB COPY csv→parquet, {args.rows:,} rows (target ≤ 2.0)",
    }
    results = [compare(labels[mode], csv, mode, args.pairs) for mode in args.modes.split(",")]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"\n{args.rows:,} orders ({csv.stat().st_size / 1e6:.0f} MB CSV), {args.pairs} pairs, "
        f"{time.perf_counter() - started:.0f} s in all"
    )
    print_table(results)


if __name__ == "__main__":
    main()
