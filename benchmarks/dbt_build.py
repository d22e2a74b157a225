"""`lagoa dbt build` of a dbt project attached to a Lagoa project, against plain `dbt build` of
the same dbt project with a plain dbt-duckdb profile, each in a fresh process as a person starts
it. Alternating pairs after a warm-up; the ratio is the median of the per-pair ratios.

The dbt project is a small jaffle_shop (three seeds, three staging models, customers and orders, a
schema.yml with tests), written into a temporary folder and attached with `lagoa init <lake>
--dbt <folder>`; `lagoa run daily` runs once so that the lake exists. Plain dbt builds into a
DuckDB file of its own, with its own target/ and logs/, so each side keeps its partial parsing.

    python benchmarks/dbt_build.py [--pairs 3] [--json]

Target: `lagoa dbt build` at most 1.1× plain `dbt build`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table, ratio_row

TARGET = 1.1
PROFILE = "jaffle_shop"

JAFFLE = {
    "dbt_project.yml": 'name: jaffle_shop\nversion: "1.0.0"\nconfig-version: 2\nmodel-paths: ["models"]\n',
    "seeds/raw_customers.csv": "id,first_name,last_name\n1,Ana,Silva\n2,Bruno,Costa\n3,Carla,Souza\n4,Davi,Lima\n",
    "seeds/raw_orders.csv": (
        "id,user_id,order_date,status\n1,1,2024-01-01,placed\n2,1,2024-01-03,shipped\n"
        "3,2,2024-01-04,completed\n4,3,2024-01-07,returned\n5,2,2024-01-09,placed\n"
    ),
    "seeds/raw_payments.csv": (
        "id,order_id,payment_method,amount\n1,1,credit_card,1000\n2,2,bank_transfer,2000\n"
        "3,3,coupon,500\n4,3,credit_card,700\n5,4,gift_card,1500\n6,5,credit_card,300\n"
    ),
    "models/staging/stg_customers.sql": (
        "select id as customer_id, first_name, last_name from {{ ref('raw_customers') }}\n"
    ),
    "models/staging/stg_orders.sql": (
        "select id as order_id, user_id as customer_id, order_date, status from {{ ref('raw_orders') }}\n"
    ),
    "models/staging/stg_payments.sql": (
        "select id as payment_id, order_id, payment_method, amount / 100 as amount\n"
        "from {{ ref('raw_payments') }}\n"
    ),
    "models/staging/schema.yml": (
        "version: 2\nmodels:\n"
        "  - name: stg_customers\n    columns:\n"
        "      - name: customer_id\n        data_tests: [unique, not_null]\n"
        "  - name: stg_orders\n    columns:\n"
        "      - name: order_id\n        data_tests: [unique, not_null]\n"
        "      - name: status\n        data_tests:\n          - accepted_values:\n"
        "              values: [placed, shipped, completed, return_pending, returned]\n"
        "  - name: stg_payments\n    columns:\n"
        "      - name: payment_id\n        data_tests: [unique, not_null]\n"
    ),
    "models/orders.sql": (
        "select o.order_id, o.customer_id, o.order_date, o.status,\n"
        "  coalesce(sum(p.amount), 0) as amount\n"
        "from {{ ref('stg_orders') }} o left join {{ ref('stg_payments') }} p using (order_id)\n"
        "group by 1, 2, 3, 4\n"
    ),
    "models/customers.sql": (
        "select c.customer_id, c.first_name, c.last_name, count(o.order_id) as orders,\n"
        "  min(o.order_date) as first_order, coalesce(sum(o.amount), 0) as lifetime_value\n"
        "from {{ ref('stg_customers') }} c left join {{ ref('orders') }} o using (customer_id)\n"
        "group by 1, 2, 3\n"
    ),
    "models/schema.yml": (
        "version: 2\nmodels:\n"
        "  - name: customers\n    columns:\n"
        "      - name: customer_id\n        data_tests: [unique, not_null]\n"
        "  - name: orders\n    columns:\n"
        "      - name: order_id\n        data_tests: [unique, not_null]\n"
        "      - name: customer_id\n        data_tests:\n          - not_null\n"
        "          - relationships:\n              to: ref('customers')\n              field: customer_id\n"
    ),
}


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Seconds and peak resident MB of ``command`` in a fresh process (its own rusage, by wait4)."""
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            output.seek(0)
            shown = output.read().decode(errors="replace")[-3000:]
            raise SystemExit(f"{' '.join(command)} failed:\n{shown}")
    return seconds, usage.ru_maxrss / 1024  # kB on Linux


def prepare(scratch: Path) -> tuple[list[str], list[str], dict[str, str], Path]:
    """The jaffle_shop project attached to a lake that has run once, and a plain dbt-duckdb
    profile beside it; returns the two commands, plain dbt's environment and where to run them."""
    dbt = scratch / "jaffle_shop"
    for name, text in JAFFLE.items():
        (dbt / name).parent.mkdir(parents=True, exist_ok=True)
        (dbt / name).write_text(text)
    lake = scratch / "lake"
    lagoa = [sys.executable, "-m", "lagoa.cli"]
    timed([*lagoa, "init", str(lake), "--dbt", str(dbt)], scratch)
    timed([*lagoa, "run", "daily", "-p", str(lake)], scratch)
    # The same dbt-duckdb settings as Lagoa's profile, on a file of its own, with no extensions.
    written = yaml.safe_load((lake / ".lagoa" / "dbt" / "profiles.yml").read_text())
    threads = next(iter(written.values()))["outputs"]["lagoa"].get("threads", 1)
    plain = scratch / "plain"
    plain.mkdir()
    output = {"type": "duckdb", "path": str(plain / "jaffle.duckdb"), "threads": threads}
    profile = {PROFILE: {"target": "dev", "outputs": {"dev": output}}}
    (plain / "profiles.yml").write_text(yaml.safe_dump(profile, sort_keys=False))
    env = {
        **os.environ,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",  # as Lagoa sets it: no network in either side
        "DBT_TARGET_PATH": str(plain / "target"),
        "DBT_LOG_PATH": str(plain / "logs"),
    }
    a = [*lagoa, "dbt", "-p", str(lake), "build"]  # -p after `build` would go to dbt
    b = [
        sys.executable,
        "-m",
        "dbt.cli.main",
        "build",
        "--project-dir",
        str(dbt),
        "--profiles-dir",
        str(plain),
        "--profile",
        PROFILE,
    ]
    return a, b, env, scratch


def measure(pairs: int) -> dict[str, object]:
    """Median of per-pair ratios A/B after one warm-up pair (with ``pairs`` 0, the warm-up
    pair's ratio: a smoke run, not a measurement)."""
    with tempfile.TemporaryDirectory() as folder:
        a, b, env, cwd = prepare(Path(folder))
        warm = timed(a, cwd), timed(b, cwd, env)
        ratios, a_mb, b_mb, a_s, b_s = [], [], [], [], []
        for _ in range(pairs):
            a_seconds, a_peak = timed(a, cwd)
            b_seconds, b_peak = timed(b, cwd, env)
            ratios.append(a_seconds / b_seconds)
            a_s.append(a_seconds)
            b_s.append(b_seconds)
            a_mb.append(a_peak)
            b_mb.append(b_peak)
    if not pairs:
        ratios, a_mb, b_mb = [warm[0][0] / warm[1][0]], [warm[0][1]], [warm[1][1]]
        a_s, b_s = [warm[0][0]], [warm[1][0]]
    print(
        f"lagoa dbt build {statistics.median(a_s):.2f} s, plain dbt build {statistics.median(b_s):.2f} s"
        f" (medians of {len(a_s)})",
        file=sys.stderr,
    )
    return ratio_row(
        f"jaffle_shop: lagoa dbt build / plain dbt build (target ≤ {TARGET:g})", ratios, a_mb, b_mb
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=3, help="alternating pairs after a warm-up")
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    args = parser.parse_args()
    results = [measure(max(args.pairs, 0))]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print_table(results)
    ratio = results[0]["median ratio"]
    assert isinstance(ratio, float)
    met = "met" if ratio <= TARGET else "missed"
    print(f"target: lagoa dbt build ≤ {TARGET:g}× plain dbt build: {met} ({ratio:.2f}×)")


if __name__ == "__main__":
    main()
