"""Airflow task overhead: the retail example's `daily` pipeline for one interval through
`airflow dags test` (each task a process of Lagoa's environment) against the same pipeline and
interval through `lagoa run`, each on a fresh copy of the example, alternating, in one run.

    python benchmarks/airflow.py [--pairs 2] [--starter]

``--starter``: `lagoa init`'s starter project (one domain, four tasks) instead of the retail example.

Airflow's environment is built from the lock in the package (under build/, as the tests do).
Target: ratio ≤ 1.5 (DESIGN.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lagoa.deploy.airflow.environment import AIRFLOW_VERSION, ensure_environment

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "retail_lakehouse"
LAGOA = Path(sys.executable).parent / "lagoa"


def fresh(folder: Path, starter: bool) -> Path:
    if starter:
        from lagoa.cli.scaffold import scaffold

        scaffold(folder, "starter")
    else:
        shutil.copytree(
            EXAMPLE, folder, ignore=shutil.ignore_patterns(".lagoa", "dags", "_lagoa_sources.yml")
        )
    return folder


def embedded(folder: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(LAGOA), "run", "daily", "--date", "2024-06-01", "-p", str(folder)],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def on_airflow(folder: Path, bin_dir: Path, home: Path, dag_id: str) -> float:
    dags = folder / "dags"
    subprocess.run([str(LAGOA), "airflow", "export", "-p", str(folder)], check=True, capture_output=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "LAGOA_PYTHON": sys.executable,
    }
    started = time.perf_counter()
    subprocess.run(
        [str(bin_dir / "airflow"), "dags", "test", dag_id, "2024-06-02"],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--starter", action="store_true", help="lagoa init's starter, not the retail example")
    args = parser.parse_args()
    bin_dir = ensure_environment(REPO / "build" / f"airflow-{AIRFLOW_VERSION}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = root / "airflow-home"
        subprocess.run(
            [str(bin_dir / "airflow"), "db", "migrate"],
            env={**os.environ, "AIRFLOW_HOME": str(home)},
            check=True,
            capture_output=True,
        )
        dag_id = "starter.daily" if args.starter else "retail_lakehouse.daily"
        ratios = []
        for pair in range(args.pairs):
            lagoa_s = embedded(fresh(root / f"embedded-{pair}", args.starter))
            airflow_s = on_airflow(fresh(root / f"airflow-{pair}", args.starter), bin_dir, home, dag_id)
            ratios.append(airflow_s / lagoa_s)
            print(
                f"pair {pair + 1}: lagoa run {lagoa_s:.1f}s, airflow dags test {airflow_s:.1f}s, ratio {ratios[-1]:.2f}"
            )
    print(f"airflow dags test / lagoa run: median {statistics.median(ratios):.2f} (target ≤ 1.5)")


if __name__ == "__main__":
    main()
