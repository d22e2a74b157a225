"""The benchmarks that start servers, Airflow or dbt run on small inputs (the others: in
tests/test_benchmarks.py, which lists them all)."""

from __future__ import annotations

import pytest

from tests.test_benchmarks import SERVICES, runs_on_small_inputs


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SERVICES))
def test_the_benchmark_runs_on_small_inputs(script: str) -> None:
    runs_on_small_inputs(script)
