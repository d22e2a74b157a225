"""A suite's outcome as typed objects, and Great Expectations' JSON document of it.

:func:`ge_document` is the one place that writes Great Expectations' result shape (the file stored
with the run, the output of ``--json``) and :func:`read_document` the one place that reads it back
(``lagoa quality report``). Everything else (the gate's warnings and drops, the printed reports)
reads the attributes of :class:`ValidationResult` and :class:`ExpectationResult`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as clock
from decimal import Decimal
from typing import Any, cast

from lagoa.core.config import Action
from lagoa.quality.suite import Expectation


@dataclass(frozen=True)
class ValueCount:
    """How often a value is among the unexpected values shown (``partial_unexpected_counts``)."""

    value: Any
    count: int


@dataclass(frozen=True)
class ExpectationResult:
    """How one expectation went: Great Expectations' ``result`` fields, each None when the result
    leaves it out.

    Row rules (column, pair and multi-column expectations) set ``element_count`` and the counts
    after it; BOOLEAN_ONLY sets none of them. The ``missing_*`` counts are left out for the null
    tests, as Great Expectations does. Aggregate and table rules set ``observed_value`` (``observed``
    says whether there is one, since it may itself be None) and, for the value-set rules, the
    unexpected and missing values. Values are as the relation holds them (dates, decimals…) when
    just validated, JSON values when read from a stored document; :func:`ge_document` writes both
    as JSON values.
    """

    expectation: Expectation
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    missing_count: int | None = None
    missing_percent: float | None = None
    unexpected_percent_total: float | None = None
    unexpected_percent_nonmissing: float | None = None
    partial_unexpected_list: tuple[Any, ...] | None = None
    partial_unexpected_counts: tuple[ValueCount, ...] | None = None
    unexpected_list: tuple[Any, ...] | None = None
    observed: bool = False
    observed_value: Any = None
    partial_missing_list: tuple[Any, ...] | None = None
    details: Mapping[str, Any] | None = None

    @property
    def action(self) -> Action:
        return self.expectation.action

    @property
    def counted(self) -> bool:
        """Whether the result counts rows (a row rule's, not BOOLEAN_ONLY)."""
        return self.element_count is not None


@dataclass(frozen=True)
class Statistics:
    evaluated_expectations: int
    successful_expectations: int
    unsuccessful_expectations: int
    success_percent: float | None


@dataclass(frozen=True)
class ValidationResult:
    """A suite's outcome on one relation."""

    suite: str
    """The suite's name."""
    suite_file: str
    table: str
    run_id: str
    results: tuple[ExpectationResult, ...]
    validated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    seconds: float = 0.0
    rows: int = 0

    @property
    def success(self) -> bool:
        return all(r.success for r in self.results)

    def failed(self, action: str | None = None) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success and (action is None or r.action == action)]

    @property
    def statistics(self) -> Statistics:
        n = len(self.results)
        ok = sum(r.success for r in self.results)
        return Statistics(n, ok, n - ok, ok / n * 100 if n else None)


# --- Great Expectations' JSON ------------------------------------------------------------------


def ge_document(result: ValidationResult) -> dict[str, Any]:
    """The result as Great Expectations writes a validation result (``to_json_dict()``), with
    Lagoa's own details under ``meta``."""
    stats = result.statistics
    return {
        "success": result.success,
        "results": [_expectation_document(r) for r in result.results],
        "suite_name": result.suite,
        "suite_parameters": {},
        "statistics": {
            "evaluated_expectations": stats.evaluated_expectations,
            "successful_expectations": stats.successful_expectations,
            "unsuccessful_expectations": stats.unsuccessful_expectations,
            "success_percent": stats.success_percent,
        },
        "meta": {
            "lagoa": {"table": result.table, "suite_file": result.suite_file, "rows": result.rows},
            "run_id": {"run_name": result.run_id, "run_time": result.validated_at.isoformat()},
            "validation_time": result.validated_at.isoformat(),
            "seconds": round(result.seconds, 3),
        },
    }


def _expectation_document(result: ExpectationResult) -> dict[str, Any]:
    e = result.expectation
    return {
        "success": result.success,
        "expectation_config": {"type": e.type, "kwargs": jsonable(e.kwargs), "meta": jsonable(e.meta)},
        "result": jsonable(_body(result)),
        "meta": {"lagoa": {"index": e.index, "on_fail": e.action}},
        "exception_info": {"raised_exception": False, "exception_traceback": None, "exception_message": None},
    }


def _body(r: ExpectationResult) -> dict[str, Any]:
    """The ``result`` object, its keys in Great Expectations' order."""
    body: dict[str, Any] = {}
    if r.element_count is not None:  # a row rule
        body |= {
            "element_count": r.element_count,
            "unexpected_count": r.unexpected_count,
            "unexpected_percent": r.unexpected_percent,
        }
        if r.missing_count is not None:
            body |= {
                "missing_count": r.missing_count,
                "missing_percent": r.missing_percent,
                "unexpected_percent_total": r.unexpected_percent_total,
                "unexpected_percent_nonmissing": r.unexpected_percent_nonmissing,
            }
        _put(body, "partial_unexpected_list", r.partial_unexpected_list)
        if r.partial_unexpected_counts is not None:
            body["partial_unexpected_counts"] = [
                {"value": c.value, "count": c.count} for c in r.partial_unexpected_counts
            ]
        _put(body, "unexpected_list", r.unexpected_list)
        return body
    if r.observed:
        body["observed_value"] = r.observed_value
    _put(body, "unexpected_count", r.unexpected_count)
    _put(body, "partial_unexpected_list", r.partial_unexpected_list)
    _put(body, "missing_count", r.missing_count)
    _put(body, "partial_missing_list", r.partial_missing_list)
    _put(body, "details", r.details)
    return body


def _put(body: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        body[key] = value


def read_document(data: dict[str, Any]) -> ValidationResult:
    """A stored document (as :func:`ge_document` wrote it) back as a :class:`ValidationResult`."""
    meta = data["meta"]
    lagoa = meta.get("lagoa", {})
    return ValidationResult(
        suite=data["suite_name"],
        suite_file=lagoa.get("suite_file"),
        table=lagoa.get("table"),
        run_id=meta.get("run_id", {}).get("run_name"),
        results=tuple(_read_expectation(item) for item in data["results"]),
        validated_at=datetime.fromisoformat(meta["validation_time"]),
        seconds=meta.get("seconds", 0.0),
        rows=lagoa.get("rows"),
    )


def _read_expectation(item: dict[str, Any]) -> ExpectationResult:
    config, lagoa = item["expectation_config"], item["meta"]["lagoa"]
    expectation = Expectation(
        lagoa["index"], config["type"], config["kwargs"], config.get("meta") or {}, lagoa["on_fail"]
    )
    body: dict[str, Any] = item.get("result") or {}
    counts = body.get("partial_unexpected_counts")
    return ExpectationResult(
        expectation,
        item["success"],
        element_count=body.get("element_count"),
        unexpected_count=body.get("unexpected_count"),
        unexpected_percent=body.get("unexpected_percent"),
        missing_count=body.get("missing_count"),
        missing_percent=body.get("missing_percent"),
        unexpected_percent_total=body.get("unexpected_percent_total"),
        unexpected_percent_nonmissing=body.get("unexpected_percent_nonmissing"),
        partial_unexpected_list=_tuple(body.get("partial_unexpected_list")),
        partial_unexpected_counts=None
        if counts is None
        else tuple(ValueCount(c["value"], c["count"]) for c in counts),
        unexpected_list=_tuple(body.get("unexpected_list")),
        observed="observed_value" in body,
        observed_value=body.get("observed_value"),
        partial_missing_list=_tuple(body.get("partial_missing_list")),
        details=cast("Mapping[str, Any] | None", body.get("details")),
    )


def _tuple(values: list[Any] | None) -> tuple[Any, ...] | None:
    return None if values is None else tuple(values)


def jsonable(value: Any) -> Any:
    """A value as Great Expectations' JSON holds it: dates as ISO strings, decimals as floats, NaN
    as null; an infinity stays a float, which ``json`` writes ``Infinity``/``-Infinity`` as theirs does."""
    if isinstance(value, datetime | date | clock):
        return value.isoformat()
    if isinstance(value, Decimal):
        return None if value.is_nan() else float(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    return value
