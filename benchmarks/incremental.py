"""An incremental run against a full run of the same pipeline.

The pipeline: ERP orders CSV → bronze → silver (partitioned by day) → a dbt model of daily store
metrics (incremental, 7-day look-back) → gold (partitioned by day, Z-ordered by store).

- Full run: the 10M-row file into an empty lake, then transform and publish.
- Incremental run: the same lake plus one more file holding 1% as many rows: half new orders, half
  updates of existing orders. Both fall in the last three days, the way late data arrives.

Each run is a fresh process; runs alternate (full, incremental, …) after a warm-up, and we report
the median ratio incremental / full.

    python benchmarks/incremental.py [--rows 10000000] [--pairs 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, generate, print_table, ratio_row, side

CONFIG = """\
name: incremental
sources:
  erp_orders:
    format: csv
    path: data/*.csv
    primary_key: [order_id]
    ordering: updated_at
    partition_by: ["day(order_ts)"]
    columns: {order_id: long, store_id: long, customer_id: long, product_id: long, quantity: long,
              unit_price: "decimal(12,2)", status: string, order_ts: timestamp, updated_at: timestamp}
domains:
  orders: {sources: [erp_orders]}
publish:
  daily_store_orders: {partition_by: [dt], zorder: [store_id]}
"""
MODEL = """\
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key=['dt', 'store_id'],
          tags=['orders']) }}
select cast(order_ts as date) as dt, store_id, count(*) as orders, sum(quantity) as units,
       round(sum(quantity * cast(unit_price as double)), 2) as revenue
from {{ source('silver', 'erp_orders') }}
{% if is_incremental() %}
where cast(order_ts as date) >= (select max(dt) - interval 7 day from {{ this }})
{% endif %}
group by all
"""
RUN = """
import resource, sys, time
from lagoa.orchestrate.project import Project
started = time.perf_counter()
project = Project.load(sys.argv[1])
project.ingest()
project.transform()
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def project(csv: Path, name: str) -> Path:
    folder = DATA / f"incremental-{name}"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "orders.csv").symlink_to(csv)
    (folder / "lagoa.yml").write_text(CONFIG)
    models = folder / "dbt" / "models"
    models.mkdir(parents=True)
    (folder / "dbt" / "dbt_project.yml").write_text(
        "name: incremental\nversion: '1.0'\nconfig-version: 2\nprofile: incremental\n"
    )
    (models / "daily_store_orders.sql").write_text(MODEL)
    return folder


def late_file(csv: Path, share: float) -> Path:
    """1% as many rows as ``csv``: new orders and updated ones, all in its last three days."""
    import duckdb

    target = csv.with_name(f"late-{share}.csv")
    if target.exists():
        return target
    con = duckdb.connect()
    (rows,) = con.execute(f"SELECT count(*) FROM read_csv('{csv}', ignore_errors=true)").fetchone() or (0,)
    n = int(rows * share)
    con.execute(
        f"""
        COPY (
            WITH recent AS (
                SELECT * FROM read_csv('{csv}', ignore_errors=true, types={{'order_ts': 'TIMESTAMP'}})
                WHERE order_ts >= (SELECT max(order_ts) - INTERVAL 3 DAY FROM read_csv('{csv}',
                      ignore_errors=true, types={{'order_ts': 'TIMESTAMP'}}))
            ),
            updated AS (
                SELECT * REPLACE ('delivered' AS status, order_ts + INTERVAL 2 HOUR AS updated_at)
                FROM recent USING SAMPLE {n // 2} ROWS (reservoir, 7)
            ),
            added AS (
                SELECT * REPLACE (order_id + 100000000 AS order_id) FROM recent USING SAMPLE {n - n // 2} ROWS (reservoir, 8)
            )
            SELECT * FROM updated UNION ALL SELECT * FROM added
        ) TO '{target}' (HEADER)
        """
    )
    return target


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="orders in the full run")
    parser.add_argument("--pairs", type=int, default=3, help="alternating pairs after a warm-up")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    started = time.perf_counter()
    csv = generate(args.rows)
    late = late_file(csv, 0.01)

    def full() -> tuple[float, float]:
        return side(RUN, str(project(csv, "full")))

    # The lake the incremental runs start from is built where they run, and restored there before
    # each: the catalog's locations and dbt's profile hold absolute paths, so a copy elsewhere
    # would write into the original's folder and make dbt parse the project from scratch.
    step = project(csv, "step")
    side(RUN, str(step))
    pristine = DATA / "incremental-pristine"
    shutil.rmtree(pristine, ignore_errors=True)
    shutil.copytree(step, pristine, symlinks=True)

    def incremental() -> tuple[float, float]:
        shutil.rmtree(step, ignore_errors=True)
        shutil.copytree(pristine, step, symlinks=True)
        (step / "data" / "late.csv").symlink_to(late)
        return side(RUN, str(step))

    warm = full(), incremental()  # with --pairs 0, the figure of a smoke run, not a measurement
    ratios, full_mb, step_mb = [], [], []
    for _ in range(max(args.pairs, 1)):
        (full_seconds, f_mb), (step_seconds, s_mb) = (full(), incremental()) if args.pairs else warm
        ratios.append(step_seconds / full_seconds)
        full_mb.append(f_mb)
        step_mb.append(s_mb)
        print(f"full {full_seconds:.1f} s, incremental {step_seconds:.1f} s", file=sys.stderr)

    name = f"incremental run, 1% late rows / full run, {args.rows:,} rows (target ≤ 0.1)"
    result = ratio_row(name, ratios, step_mb, full_mb)
    if args.json:
        print(json.dumps([result], indent=2))
        return
    print(
        f"\n{args.rows:,} orders + 1% late rows, {args.pairs} pairs, {time.perf_counter() - started:.0f} s in all"
    )
    print_table([result])


if __name__ == "__main__":
    main()
