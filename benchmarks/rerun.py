"""Commands with little to do, each in a fresh process as a person or a scheduler starts it:
`lagoa run daily` of the retail example with no new data and with one new order, against a bare
`python -c 'import lagoa'`; and `lagoa query` of one small table against a bare DuckDB reading the
same Iceberg table (`iceberg_scan` of its metadata file). Alternating, in the same run.

    python benchmarks/rerun.py [--pairs 5]

Targets (issue "close to the engine"): the no-new-data run in at most 2 s; `lagoa query` at most
1.5× the bare DuckDB read. The one-new-row run builds the models the row reaches (dbt starts:
seconds), and is reported.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import figure

EXAMPLE = Path(__file__).parents[1] / "examples" / "retail_lakehouse"
DAY = "2024-06-15"
TARGET_SECONDS = 2.0
TARGET_QUERY = 1.5
QUERY = "select count(*), sum(price) from silver.products"
BARE_QUERY = """
import sys, duckdb
con = duckdb.connect()
con.execute(f"LOAD '{sys.argv[1]}'")
print(con.execute(f"select count(*), sum(price) from iceberg_scan('{sys.argv[2]}')").fetchall())
"""


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    lagoa = [sys.executable, "-m", "lagoa.cli", "run", "daily", "--date", DAY]
    bare = [sys.executable, "-c", "import lagoa"]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "retail"
        shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".lagoa", "target", "logs"))
        header, first = (EXAMPLE / "samples" / "erp_orders.csv").read_text().splitlines()[:2]
        for _ in range(2):  # builds, then settles (a first run's domains may see each other's commits)
            timed(lagoa, folder)
        query = [sys.executable, "-m", "lagoa.cli", "query", QUERY]
        bare_query = [sys.executable, "-c", BARE_QUERY, *_table_files(folder)]
        quiet, changed, starts, queries, reads = [], [], [], [], []
        for pair in range(max(args.pairs, 1)):
            quiet.append(timed(lagoa, folder))
            starts.append(timed(bare, folder))
            queries.append(timed(query, folder))
            reads.append(timed(bare_query, folder))
            row = first.split(",", 1)[1].replace("2024-06-29", DAY)
            (folder / "samples" / f"erp_orders_new_{pair}.csv").write_text(
                f"{header}\n{9_000_000 + pair},{row}\n"
            )
            changed.append(timed(lagoa, folder))
            if pair + 1 < args.pairs:
                timed(lagoa, folder)  # and back to nothing new (the new row's build settles)
    start = statistics.median(starts)
    if args.json:
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        ratios = [q / r for q, r in zip(queries, reads, strict=True)]
        figures = [
            figure(
                f"retail run, no new data (target ≤ {TARGET_SECONDS:g})",
                statistics.median(quiet),
                "s",
                peak_mb=peak,
            ),
            figure(
                "retail run, no new data / bare `import lagoa` (report)", statistics.median(quiet) / start
            ),
            figure(
                "retail run, one new row / bare `import lagoa` (report)", statistics.median(changed) / start
            ),
            figure(
                f"`lagoa query` of one small table / bare DuckDB iceberg_scan (target ≤ {TARGET_QUERY:g})",
                statistics.median(ratios),
                spread=f"{min(ratios):.2f}–{max(ratios):.2f}",
            ),
        ]
        print(json.dumps(figures, indent=2))
        return
    rows = [
        ("no new data", statistics.median(quiet), min(quiet), max(quiet)),
        ("one new row", statistics.median(changed), min(changed), max(changed)),
    ]
    print(f"bare `python -c 'import lagoa'`: {start:.2f} s (median of {len(starts)})")
    print(f"{'run':<14}{'median s':>10}{'min':>8}{'max':>8}{'/ bare start':>14}")
    for name, median, low, high in rows:
        print(f"{name:<14}{median:>10.2f}{low:>8.2f}{high:>8.2f}{median / start:>13.1f}×")
    ratios = [q / r for q, r in zip(queries, reads, strict=True)]
    ratio = statistics.median(ratios)
    print(
        f"lagoa query of one small table: {statistics.median(queries):.2f} s, bare DuckDB iceberg_scan "
        f"{statistics.median(reads):.2f} s: {ratio:.2f}× (median of pair ratios, {min(ratios):.2f}–{max(ratios):.2f})"
    )
    met = "met" if rows[0][1] <= TARGET_SECONDS else "missed"
    print(f"target: the no-new-data run ≤ {TARGET_SECONDS:g} s: {met} ({rows[0][1]:.2f} s)")
    met = "met" if ratio <= TARGET_QUERY else "missed"
    print(f"target: lagoa query ≤ {TARGET_QUERY:g}× the bare DuckDB read: {met} ({ratio:.2f}×)")


def _table_files(folder: Path) -> tuple[str, str]:
    """The iceberg extension's file and silver.products' current metadata file."""
    from lagoa.engine.connection import extension_path
    from lagoa.orchestrate.project import Project

    table = Project.load(folder).lake.table("silver.products")
    assert table is not None and table.metadata_location
    return str(extension_path("iceberg")), table.metadata_location


if __name__ == "__main__":
    main()
