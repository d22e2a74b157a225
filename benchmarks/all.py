"""Every ratio Lagoa is held to, measured side by side in one run and printed as one table with
each figure's target, whether it is met, and the peak memory of Lagoa's side.

    python benchmarks/all.py [--rows 3000000] [--pairs 2] [--big 50000000]

Each benchmark script runs in turn with ``--json`` (the scripts alone print more detail: run one
with ``--help``). ``--big`` adds a bronze load of that many rows beside one of 5,000,000, to show
that peak memory stays flat as the input grows (generating the CSV takes a while, once).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
TARGET = re.compile(r"\(target ([≤≥]) ([0-9.,]+)\)")


def measured(script: str, *args: str) -> list[dict[str, object]]:
    """The figures one benchmark script prints with ``--json`` (its progress goes to the terminal)."""
    print(f"· {script} {' '.join(args)}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    # Lagoa as installed: Python caches compiled modules, unless told not to (some shells are).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(
        [sys.executable, str(HERE / script), *args, "--json"], stdout=subprocess.PIPE, text=True, env=env
    )
    if done.returncode != 0:
        raise SystemExit(f"{script} failed (exit {done.returncode})")
    text = done.stdout
    rows = json.loads(text[text.rindex("[\n") :])  # the JSON comes last, after any report lines
    print(f"  {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return [normalised(row) for row in rows]


def normalised(row: dict[str, object]) -> dict[str, object]:
    """A row of common.alternate (a median ratio of pairs) or of common.figure, as one shape."""
    if "median ratio" in row:
        return {
            "benchmark": row["benchmark"],
            "value": row["median ratio"],
            "unit": "×",
            "spread": f"{row['min']}–{row['max']}",
            "peak MB": row.get("A peak MB"),
        }
    return row


def verdict(row: dict[str, object]) -> tuple[str, str]:
    """The figure's target as written in its name, and whether the figure meets it."""
    found = TARGET.search(str(row["benchmark"]))
    if found is None:
        return "report", "-"
    sign, bound = found.group(1), float(found.group(2).replace(",", ""))
    value = float(str(row["value"]))
    met = value <= bound if sign == "≤" else value >= bound
    return f"{sign} {found.group(2)}", "met" if met else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=3_000_000, help="orders in the ingest benchmarks")
    parser.add_argument("--pairs", type=int, default=2, help="alternating pairs after a warm-up")
    parser.add_argument("--big", type=int, default=0, help="also load this many rows into bronze once")
    parser.add_argument("--only", default="", help="run only these scripts (comma-separated, e.g. run.py)")
    args = parser.parse_args()
    started = time.perf_counter()
    rows, pairs = str(args.rows), str(args.pairs)
    scripts = {
        "run.py": ("--rows", rows, "--pairs", pairs),
        "quality.py": ("--rows", rows, "--gx-rows", "1000000", "--pairs", pairs),
        "incremental.py": ("--rows", rows, "--pairs", pairs),
        "transform.py": ("--pairs", pairs),
        "rerun.py": ("--pairs", pairs),
        "dbt_build.py": ("--pairs", pairs),
        "postgres_cdc.py": (),
    }
    chosen = args.only.split(",") if args.only else list(scripts)
    figures = [row for script in chosen for row in measured(script, *scripts[script])]
    if args.big:
        for size in (5_000_000, args.big):
            for row in measured("run.py", "--rows", str(size), "--pairs", "0", "--modes", "bronze"):
                row["benchmark"] = f"bronze load of {size:,} rows, once: peak memory (report)"
                figures.append(row)
    table = []
    for row in figures:
        target, met = verdict(row)
        unit = str(row["unit"])
        value = float(str(row["value"]))
        shown = f"{value:,.0f} {unit}" if value >= 1000 else f"{value:.2f}{'' if unit == '×' else ' '}{unit}"
        name = TARGET.sub("", str(row["benchmark"])).replace("(report)", "").strip()
        peak = row.get("peak MB")
        table.append(
            {
                "measure": name,
                "figure": shown,
                "spread": row.get("spread") or "",
                "target": target,
                "met": met,
                "peak MB": "" if peak is None else peak,
            }
        )
    sys.path.insert(0, str(HERE))
    from common import print_table

    print(f"\n{args.rows:,} rows, {args.pairs} pairs, {time.perf_counter() - started:.0f} s in all")
    print_table(table)


if __name__ == "__main__":
    main()
