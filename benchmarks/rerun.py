"""Runs with little to do: `lagoa run daily` of the retail example with no new data, and with one
new order, each against a bare `python -c 'import lagoa'` in the same run (alternating pairs, each
in a fresh process, as a scheduler starts it).

    python benchmarks/rerun.py [--pairs 5]

Targets (issue "close to the engine"): the no-new-data run in at most 2 s. The one-new-row run
builds the models the row reaches (dbt starts: seconds), and is reported. A ratio is the run's wall
time over the bare start-up's.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLE = Path(__file__).parents[1] / "examples" / "retail_lakehouse"
DAY = "2024-06-15"
TARGET_SECONDS = 2.0


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
    args = parser.parse_args()
    lagoa = [sys.executable, "-m", "lagoa.cli", "run", "daily", "--date", DAY]
    bare = [sys.executable, "-c", "import lagoa"]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "retail"
        shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".lagoa", "target", "logs"))
        header, first = (EXAMPLE / "samples" / "erp_orders.csv").read_text().splitlines()[:2]
        for _ in range(2):  # builds, then settles (a first run's domains may see each other's commits)
            timed(lagoa, folder)
        quiet, changed, starts = [], [], []
        for pair in range(max(args.pairs, 1)):
            quiet.append(timed(lagoa, folder))
            starts.append(timed(bare, folder))
            row = first.split(",", 1)[1].replace("2024-06-29", DAY)
            (folder / "samples" / f"erp_orders_new_{pair}.csv").write_text(
                f"{header}\n{9_000_000 + pair},{row}\n"
            )
            changed.append(timed(lagoa, folder))
            timed(lagoa, folder)  # and back to nothing new (the new row's build settles)
    start = statistics.median(starts)
    rows = [
        ("no new data", statistics.median(quiet), min(quiet), max(quiet)),
        ("one new row", statistics.median(changed), min(changed), max(changed)),
    ]
    print(f"bare `python -c 'import lagoa'`: {start:.2f} s (median of {len(starts)})")
    print(f"{'run':<14}{'median s':>10}{'min':>8}{'max':>8}{'/ bare start':>14}")
    for name, median, low, high in rows:
        print(f"{name:<14}{median:>10.2f}{low:>8.2f}{high:>8.2f}{median / start:>13.1f}×")
    met = "met" if rows[0][1] <= TARGET_SECONDS else "missed"
    print(f"target: the no-new-data run ≤ {TARGET_SECONDS:g} s: {met} ({rows[0][1]:.2f} s)")


if __name__ == "__main__":
    main()
