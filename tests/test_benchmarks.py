"""Every benchmark runs, on small inputs: its Lagoa side calls the library through code in strings
that no type checker reads, so only running it shows that it still works. Timings are not checked
here (they belong to `make bench`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"

SMALL = {
    "run.py": ["--rows", "20000", "--pairs", "0"],
    "quality.py": ["--rows", "20000", "--gx-rows", "5000", "--pairs", "0"],
    "transform.py": ["--pairs", "0", "--chain", "3"],
    "incremental.py": ["--rows", "20000", "--pairs", "0"],
    "orchestrate.py": ["--tasks", "20", "--repeat", "1"],
    "http_ingest.py": ["--records", "5000", "--pairs", "1"],
    "postgres_snapshot.py": ["--rows", "20000", "--pairs", "1"],
    "airflow.py": ["--pairs", "1", "--starter"],
    "s3_ingest.py": ["--rows", "20000", "--pairs", "0"],
    "observe.py": ["--days", "1", "--pairs", "0"],
    "postgres_cdc.py": [
        *("--rows", "2000", "--transactions", "20", "--rate", "200", "--seconds", "2"),
        *("--small", "50", "--lag-rows", "2000"),
    ],
    "all.py": ["--rows", "20000", "--pairs", "0", "--only", "run.py"],
    "rerun.py": ["--pairs", "1"],
    "dbt_build.py": ["--pairs", "0"],
    "serve.py": ["--runs", "200", "--tables", "40", "--repeat", "3", "--renders", "1"],
}


def test_every_benchmark_is_listed() -> None:
    scripts = {p.name for p in BENCHMARKS.glob("*.py")} - {"common.py"}
    assert scripts == set(SMALL)


SERVICES = {
    "airflow.py",
    "transform.py",
    "s3_ingest.py",
    "observe.py",
    "postgres_cdc.py",
    "postgres_snapshot.py",
    "serve.py",
}
"""Benchmarks that start servers, Airflow or dbt: run from tests/test_benchmarks_services.py, so
that the two halves run beside each other (the test run gives each file one worker)."""


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(set(SMALL) - SERVICES))
def test_the_benchmark_runs_on_small_inputs(script: str) -> None:
    runs_on_small_inputs(script)


def runs_on_small_inputs(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *SMALL[script]],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=BENCHMARKS.parent,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "target" in done.stdout + done.stderr  # it printed its figures against their targets
