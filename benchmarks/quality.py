"""Quality benchmarks: the cost of validating, and Lagoa against Great Expectations.

1. (ingest + validate) / ingest alone: CSV → bronze + silver of the ERP orders, with and without
   a 25-expectation suite (``orders_suite.json``, four of its row rules on ``drop``).
2. Lagoa validation / Great Expectations validation: the same suite on the same rows, held in
   memory by each (a pandas DataFrame for Great Expectations, an Arrow table for DuckDB);
   loading the data is not timed, only validating it.
3. Lagoa validation / Great Expectations' SQL path: the same suite on the same rows, each reading a
   database file (DuckDB for Lagoa; SQLite, through Great Expectations' SQL datasource, for Great
   Expectations), the way it validates data that does not fit in a DataFrame. Not DuckDB for
   Great Expectations: its SQL engine (1.24.1) reads each result after closing the connection, and
   with duckdb-engine (which Lagoa does not depend on) every query then comes back empty.

Each side runs in its own process, alternating (A B A B …) after a warm-up; we report the median
of the per-pair ratios with min–max and each side's peak memory.

    python benchmarks/quality.py [--rows 10000000] [--gx-rows 1000000] [--gx-sql-rows N] [--pairs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, alternate, generate, print_table, side

SUITE = Path(__file__).parent / "orders_suite.json"
COLUMNS = (
    "{order_id: long, store_id: long, customer_id: long, product_id: long, quantity: long, "
    'unit_price: "decimal(12,2)", status: string, order_ts: timestamp, updated_at: timestamp}'
)
CONFIG = f"""\
name: bench
quality: {{path: quality}}
sources:
  erp_orders:
    format: csv
    path: PATH
    primary_key: [order_id]
    ordering: updated_at
    partition_by: ["day(order_ts)"]
    columns: {COLUMNS}
"""

INGEST_SIDE = """
import resource, sys, time
from datetime import UTC, datetime
from lagoa.orchestrate.project import Project
from lagoa.orchestrate.build import new_run_id
from lagoa.silver.merge import merge_silver
from lagoa.workspace import StageContext
from lagoa.quality.gate import QualityGate
from lagoa.quality.results import save_result
from lagoa.sources.bronze import load_bronze
from lagoa.sources.files import discover
project = Project.load(sys.argv[1])
name, config = "erp_orders", project.config.sources["erp_orders"]
started = time.perf_counter()
con = project.engine()
now = datetime.now(UTC)
run_id = new_run_id(now)
gate = None
suites = project.suites_for("silver.erp_orders")
if suites:
    gate = QualityGate(suites, "silver.erp_orders", run_id, save=lambda r: save_result(project.storage, r))
files = discover(name, config.path, project.root)
load_bronze(con, project.lake, project.storage, name, config, files, run_id=run_id, ingested_at=now)
merge_silver(StageContext(project.workspace, run_id, now), con, name, config, gate=gate)
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

LAGOA_VALIDATE_SIDE = """
import resource, sys, time
import duckdb
from lagoa.quality.suite import load_suite
from lagoa.quality.validate import validate
suite = load_suite(__import__("pathlib").Path(sys.argv[2]))
if sys.argv[1].endswith(".duckdb"):  # the database file, as Great Expectations' SQL path reads it
    con = duckdb.connect(sys.argv[1], read_only=True)
else:  # the rows in memory (an Arrow table), as pandas holds them for Great Expectations
    import pyarrow.parquet as pq
    con = duckdb.connect()
    con.register("orders", pq.read_table(sys.argv[1]))
started = time.perf_counter()
result = validate(con, suite, "SELECT * FROM orders", table="orders", run_id="bench")
seconds = time.perf_counter() - started
print(result.statistics.successful_expectations, file=sys.stderr)
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

GX_SIDE = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import great_expectations as gx
import pyarrow.parquet as pq
frame = pq.read_table(sys.argv[1]).to_pandas()
data = json.load(open(sys.argv[2]))
for e in data["expectations"]:
    e.pop("meta", None)
context = gx.get_context(mode="ephemeral")
batch = context.data_sources.add_pandas("p").add_dataframe_asset("orders").add_batch_definition_whole_dataframe("all")
suite = context.suites.add(gx.ExpectationSuite(name=data["name"], expectations=data["expectations"]))
definition = context.validation_definitions.add(gx.ValidationDefinition(name="v", data=batch, suite=suite))
started = time.perf_counter()
result = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
seconds = time.perf_counter() - started
print(result.statistics["successful_expectations"], file=sys.stderr)
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

GX_SQL_SIDE = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import great_expectations as gx
data = json.load(open(sys.argv[2]))
for e in data["expectations"]:
    e.pop("meta", None)
context = gx.get_context(mode="ephemeral")
source = context.data_sources.add_sqlite("s", connection_string=f"sqlite:///{sys.argv[1]}")
batch = source.add_table_asset("orders", table_name="orders").add_batch_definition_whole_table("all")
suite = context.suites.add(gx.ExpectationSuite(name=data["name"], expectations=data["expectations"]))
definition = context.validation_definitions.add(gx.ValidationDefinition(name="v", data=batch, suite=suite))
started = time.perf_counter()
result = definition.run(result_format="SUMMARY")
seconds = time.perf_counter() - started
print(result.statistics["successful_expectations"], file=sys.stderr)
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def ingest_once(csv: Path, with_suite: bool) -> tuple[float, float]:
    project = DATA / f"quality-project-{'suite' if with_suite else 'plain'}"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    (project / "lagoa.yml").write_text(CONFIG.replace("PATH", str(csv)))
    if with_suite:
        (project / "quality").mkdir()
        shutil.copy(SUITE, project / "quality" / SUITE.name)
    try:
        return side(INGEST_SIDE, str(project))
    finally:
        shutil.rmtree(project, ignore_errors=True)


def typed_parquet(csv: Path) -> Path:
    """The orders typed once (prices as doubles, as pandas holds them) for both validators."""
    target = csv.with_suffix(".typed.parquet")
    if not target.exists():
        import duckdb

        duckdb.connect().execute(
            f"COPY (SELECT order_id, store_id, customer_id, product_id, quantity, "
            f"CAST(unit_price AS DOUBLE) AS unit_price, status, order_ts, updated_at "
            f"FROM read_csv('{csv}', ignore_errors=true, types={{'order_id': 'BIGINT', 'store_id': 'BIGINT', "
            f"'customer_id': 'BIGINT', 'product_id': 'BIGINT', 'quantity': 'BIGINT', 'unit_price': 'DOUBLE', "
            f"'status': 'VARCHAR', 'order_ts': 'TIMESTAMP', 'updated_at': 'TIMESTAMP'}})) TO '{target}'"
        )
    return target


def databases(typed: Path) -> tuple[Path, Path]:
    """The typed orders as table ``orders`` in a DuckDB file (for Lagoa) and a SQLite file (for
    Great Expectations' SQL path), each written aside and renamed into place once."""
    import duckdb

    duck, lite = typed.with_suffix(".duckdb"), typed.with_suffix(".sqlite")
    if not duck.exists():
        scratch = duck.with_suffix(f".duckdb.{os.getpid()}")  # aside, for a run beside this one
        with duckdb.connect(str(scratch)) as con:
            con.execute("SET enable_progress_bar = false")
            con.execute(f"CREATE TABLE orders AS SELECT * FROM read_parquet('{typed}')")
        scratch.replace(duck)
    if not lite.exists():
        scratch = lite.with_suffix(f".sqlite.{os.getpid()}")  # aside, for a run beside this one
        source = duckdb.connect()
        source.execute("SET enable_progress_bar = false")
        rows = source.execute(
            "SELECT order_id, store_id, customer_id, product_id, quantity, unit_price, status, "
            "strftime(order_ts, '%Y-%m-%d %H:%M:%S.%f'), strftime(updated_at, '%Y-%m-%d %H:%M:%S.%f') "
            f"FROM read_parquet('{typed}')"
        )
        target = sqlite3.connect(scratch)
        target.execute(
            "CREATE TABLE orders (order_id BIGINT, store_id BIGINT, customer_id BIGINT, "
            "product_id BIGINT, quantity BIGINT, unit_price DOUBLE, status VARCHAR, "
            "order_ts TIMESTAMP, updated_at TIMESTAMP)"
        )
        while batch := rows.fetchmany(100_000):
            target.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
        target.commit()
        target.close()
        scratch.replace(lite)
    return duck, lite


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="orders for the ingest ratio")
    parser.add_argument(
        "--gx-rows", type=int, default=1_000_000, help="orders for the Great Expectations ratio"
    )
    parser.add_argument(
        "--gx-sql-rows",
        type=int,
        default=None,
        help="orders for the Great Expectations SQL ratio (default: --gx-rows)",
    )
    parser.add_argument("--pairs", type=int, default=5, help="alternating pairs after a warm-up")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    sql_rows = args.gx_rows if args.gx_sql_rows is None else args.gx_sql_rows
    started = time.perf_counter()
    csv = generate(args.rows)
    typed = typed_parquet(generate(args.gx_rows))
    duck, lite = databases(typed_parquet(generate(sql_rows)))
    results = [
        alternate(
            f"ingest + 25-expectation suite / ingest alone, {args.rows:,} rows (target ≤ 1.2)",
            (str(csv), "1"),
            (str(csv), ""),
            args.pairs,
            lambda path, suite: ingest_once(Path(path), bool(suite)),
        ),
        alternate(
            f"Lagoa validate / Great Expectations (pandas), {args.gx_rows:,} rows (target ≤ 0.02)",
            (LAGOA_VALIDATE_SIDE, str(typed), str(SUITE)),
            (GX_SIDE, str(typed), str(SUITE)),
            args.pairs,
            side,
        ),
        alternate(
            f"Lagoa validate / Great Expectations (SQL, SQLite), {sql_rows:,} rows (target ≤ 0.05)",
            (LAGOA_VALIDATE_SIDE, str(duck), str(SUITE)),
            (GX_SQL_SIDE, str(lite), str(SUITE)),
            args.pairs,
            side,
        ),
    ]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"\n{args.pairs} pairs, {time.perf_counter() - started:.0f} s in all (A is Lagoa with the suite / Lagoa)"
    )
    print_table(results)


if __name__ == "__main__":
    main()
