"""Validation results as the server shows them: one run's suites with each expectation's counts
and sample values, and one table's history over its latest runs.

Results are the documents validation stored under the lake's ``quality/<run id>/`` folder
(``quality/results.py``); the list of runs that stored some is read at most once a few seconds.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from lagoa.quality.outcome import jsonable
from lagoa.quality.results import load_results, run_ids, summary_line

if TYPE_CHECKING:
    from lagoa.orchestrate.project import Project
    from lagoa.quality.outcome import ExpectationResult, ValidationResult

LISTING_SECONDS = 3.0
"""How long the list of runs with results is kept before the storage is listed again."""
SAMPLE = 10
SCANNED_RUNS = 300
"""A table's history looks among this many latest runs with results."""


class ResultRuns:
    """The runs that stored results, oldest first, listed again when older than a few seconds."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._listed: tuple[float, list[str]] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> list[str]:
        with self._lock:
            if self._listed is None or time.monotonic() - self._listed[0] > LISTING_SECONDS:
                self._listed = (time.monotonic(), run_ids(self.project.storage))
            return list(self._listed[1])


def expectation_row(result: ExpectationResult) -> dict[str, Any]:
    e = result.expectation
    return {
        "index": e.index,
        "expectation": e.label,
        "type": e.type,
        "column": e.column,
        "kwargs": jsonable(e.kwargs),
        "action": e.action,
        "success": result.success,
        "element_count": result.element_count,
        "unexpected_count": result.unexpected_count,
        "unexpected_percent": jsonable(result.unexpected_percent),
        "sample": list(jsonable(result.partial_unexpected_list or ()))[:SAMPLE],
        "observed_value": jsonable(result.observed_value) if result.observed else None,
        "summary": summary_line(result),
    }


def validation_row(validation: ValidationResult) -> dict[str, Any]:
    stats = validation.statistics
    return {
        "table": validation.table,
        "suite": validation.suite,
        "run_id": validation.run_id,
        "success": validation.success,
        "validated_at": validation.validated_at.isoformat(),
        "rows": validation.rows,
        "evaluated": stats.evaluated_expectations,
        "passed": stats.successful_expectations,
        "failed": stats.unsuccessful_expectations,
        "success_percent": stats.success_percent,
        "expectations": [expectation_row(r) for r in validation.results],
    }


def run_results(project: Project, runs: ResultRuns, run_id: str | None = None) -> dict[str, Any]:
    """A run's results (default: the latest run that has any) and the runs to choose from."""
    stored = runs()
    if run_id is not None and run_id not in stored:
        return {"run_id": run_id, "validations": [], "runs": stored[::-1][:200]}
    chosen = run_id or (stored[-1] if stored else None)
    found, validations = load_results(project.storage, chosen, stored) if chosen else (None, [])
    return {
        "run_id": found,
        "validations": [validation_row(v) for v in sorted(validations, key=lambda v: (v.table, v.suite))],
        "runs": stored[::-1][:200],
    }


def table_history(project: Project, runs: ResultRuns, table: str, last: int = 30) -> dict[str, Any]:
    """The table's results in each of its latest ``last`` runs that validated it, newest first,
    with each expectation's pass or fail per run."""
    wanted = table if "." in table else f"silver.{table}"
    history: list[dict[str, Any]] = []
    stored = runs()
    for run_id in list(reversed(stored))[:SCANNED_RUNS]:
        if len(history) >= last:
            break
        _, validations = load_results(project.storage, run_id, stored, table=wanted)
        for validation in validations:
            if validation.table == wanted:
                history.append(validation_row(validation))
    return {"table": wanted, "history": history}
