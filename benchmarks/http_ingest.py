"""HTTP ingest throughput: N records from the simulated API server on loopback, 1,000 per page,
into Lagoa's bronze (and silver), against dlt's ``rest_api`` source loading the same endpoint
into DuckDB, in the same run and against the same server process.

    python benchmarks/http_ingest.py [--records 1000000] [--pairs 1]

Each side runs in its own process. Lagoa's figures split its wall time into time waiting on the
server (requests, including the server's own page generation) and time in Lagoa.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SERVER = Path(__file__).parents[1] / "examples" / "medallion_apis" / "server.py"
TOKEN = "bench-token"

LAGOA = """
import json, sys, time
from pathlib import Path
from lagoa.orchestrate.project import Project
from lagoa.sources.load import load_source
from lagoa.workspace import StageContext
from datetime import UTC, datetime

folder, base, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
(folder / "lagoa.yml").write_text(f'''
name: bench
sources:
  orders:
    kind: http
    base_url: {base}
    endpoint: /v1/orders
    auth: {{type: bearer, token: {sys.argv[4]}}}
    params: {{limit: "1000"}}
    paginate: {{type: next_url, path: next}}
    records: results
    primary_key: [id]
    ordering: updated_at
    columns: {{id: long, customer_id: long, amount: double, updated_at: timestamptz}}
''')
project = Project.load(folder)
started = time.perf_counter()
if mode == "bronze":
    con = project.engine()
    context = StageContext(project.workspace, "bench", now=datetime.now(UTC))
    summary = load_source(context, con, "orders", project.config.sources["orders"])
    fetched, rows = summary.fetch, summary.bronze_rows
else:
    summary = project.ingest()
    fetched, rows = summary.sources[0].fetch, summary.sources[0].silver_total
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "rows": rows, "waiting": fetched.waiting, "pages": fetched.pages}))
"""

DLT = """
import json, sys, time
from pathlib import Path
import dlt
from dlt.sources.rest_api import rest_api_source

folder, base, token = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
source = rest_api_source({
    "client": {
        "base_url": base,
        "auth": {"type": "bearer", "token": token},
        "paginator": {"type": "json_link", "next_url_path": "next"},
    },
    "resources": [
        {"name": "orders", "endpoint": {"path": "v1/orders", "params": {"limit": 1000}, "data_selector": "results"}},
    ],
})
pipeline = dlt.pipeline(
    pipeline_name="bench",
    pipelines_dir=str(folder / "dlt"),
    destination=dlt.destinations.duckdb(str(folder / "dlt.duckdb")),
    dataset_name="bronze",
)
started = time.perf_counter()
info = pipeline.run(source)
seconds = time.perf_counter() - started
import duckdb
rows = duckdb.connect(str(folder / "dlt.duckdb")).execute("select count(*) from bronze.orders").fetchone()[0]
print(json.dumps({"seconds": seconds, "rows": rows}))
"""


def run_side(code: str, *args: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark side failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=1)
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", "0", "--records", str(args.records), "--token", TOKEN],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().split()[-1]
        figures: dict[str, list[dict[str, float]]] = {"bronze": [], "silver": [], "dlt": []}
        for _ in range(args.pairs):
            for name in figures:
                with tempfile.TemporaryDirectory() as folder:
                    if name == "dlt":
                        figures[name].append(run_side(DLT, folder, base, TOKEN))
                    else:
                        figures[name].append(run_side(LAGOA, folder, base, name, TOKEN))
        for name, runs in figures.items():
            assert all(r["rows"] == args.records for r in runs), (name, runs)
        median = {name: statistics.median(r["seconds"] for r in runs) for name, runs in figures.items()}
        for name in ("bronze", "silver"):
            waiting = statistics.median(r["waiting"] for r in figures[name])
            print(
                f"Lagoa {name:<6}: {args.records / median[name]:>10,.0f} records/s ({median[name]:.1f} s; "
                f"waiting on the server {waiting:.1f} s, in Lagoa {median[name] - waiting:.1f} s)"
            )
        print(f"dlt rest_api: {args.records / median['dlt']:>10,.0f} records/s ({median['dlt']:.1f} s)")
        print(
            f"throughput Lagoa/dlt: bronze {median['dlt'] / median['bronze']:.1f}×, "
            f"bronze+silver {median['dlt'] / median['silver']:.1f}× (target ≥ 5×)"
        )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
