"""The validate step of an ingest: run a table's suites on an incoming batch before silver commits.

``warn`` failures are recorded; rows breaking a ``drop`` expectation are split off for the
quarantine; a failed ``fail`` expectation raises :class:`QualityError` before anything is
committed, so silver keeps its previous snapshot and the batch stays pending.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb

from lagoa.core.config import ResultFormat
from lagoa.core.errors import QualityError
from lagoa.quality.outcome import ExpectationResult, ValidationResult
from lagoa.quality.suite import Suite
from lagoa.quality.validate import CompiledSuite, compile_suite, release, run_compiled


@dataclass
class GateOutcome:
    """What validation decided for a batch."""

    results: list[ValidationResult]
    rows: str
    """SQL relation of the rows that go on to silver."""
    dropped: str | None
    """SQL relation of rows to quarantine, shaped (row columns…, ``_lagoa_reason``); None if none."""
    warnings: list[str] = field(default_factory=list)
    compiled: list[CompiledSuite] = field(default_factory=list)


@dataclass
class QualityGate:
    suites: list[Suite]
    table: str
    run_id: str
    result_format: ResultFormat = "SUMMARY"
    save: Callable[[ValidationResult], str] | None = None
    """Stores a result and returns where (for messages); called before any failure is raised."""

    def apply(self, con: duckdb.DuckDBPyConnection, relation: str) -> GateOutcome:
        """Validate ``relation`` (the batch's parsed rows, in arrival order) with every suite of
        the table."""
        compiled: list[CompiledSuite] = []
        try:
            for suite in self.suites:
                compiled.append(compile_suite(con, suite, relation))
            results = [
                run_compiled(con, c, table=self.table, run_id=self.run_id, result_format=self.result_format)
                for c in compiled
            ]
        except BaseException:
            self.release(con, compiled)
            raise
        saved = [self.save(result) for result in results] if self.save else []
        failed = [
            f"{r.suite}#{x.expectation.index} {x.expectation.label}"
            for r in results
            for x in r.failed("fail")
        ]
        if failed:
            self.release(con, compiled)
            raise QualityError(self.table, failed, report=saved[0] if saved else None)
        warnings = [
            f"{self.table}: expectation {r.suite}#{x.expectation.index} {x.expectation.label} failed "
            f"({_describe(x)}); on_fail=warn"
            for r in results
            for x in r.failed("warn")
        ]
        # Every suite's view reads the same relation, so one view serves all the filters: the
        # row-local parts read the current row, and subqueries name their own suite's view.
        base = compiled[0].view if compiled else f"({relation})"
        drops = [
            (c, f)
            for c, r in zip(compiled, results, strict=True)
            if _dropped_any(r) and (f := c.drop_filter())
        ]
        if not drops:
            return GateOutcome(results, f"SELECT * FROM {base}", None, warnings, compiled)
        failing = "coalesce(" + " OR ".join(f"({f})" for _, f in drops) + ", false)"
        reason = (
            "concat_ws('; ', "
            + ", ".join(f"CASE WHEN {f} THEN {c.drop_reason()} END" for c, f in drops)
            + ")"
        )
        rows = f"SELECT * FROM {base} WHERE NOT {failing}"
        dropped = f"SELECT *, {reason} AS _lagoa_reason FROM {base} WHERE {failing}"
        return GateOutcome(results, rows, dropped, warnings, compiled)

    @contextmanager
    def check(self, con: duckdb.DuckDBPyConnection, relation: str) -> Iterator[GateOutcome]:
        """:meth:`apply`, releasing what it made in ``con`` when the block ends."""
        outcome = self.apply(con, relation)
        try:
            yield outcome
        finally:
            self.release(con, outcome.compiled)

    @staticmethod
    def release(con: duckdb.DuckDBPyConnection, compiled: list[CompiledSuite]) -> None:
        for c in compiled:
            release(con, c)


def _dropped_any(result: ValidationResult) -> bool:
    """Whether a ``drop`` expectation found unexpected rows (unknown counts count as yes)."""
    return any(x.action == "drop" and x.unexpected_count != 0 for x in result.results)


def _describe(result: ExpectationResult) -> str:
    if result.unexpected_count is not None and result.element_count is not None:
        return f"{result.unexpected_count} of {result.element_count} rows unexpected"
    if result.observed:
        return f"observed {result.observed_value}"
    return "see the report"
