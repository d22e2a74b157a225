"""Data quality: Great Expectations suites compiled to DuckDB, with warn / drop / fail actions."""

from lagoa.quality.outcome import ExpectationResult, ValidationResult, ge_document, read_document
from lagoa.quality.suite import Expectation, Suite, load_suite, load_suites
from lagoa.quality.validate import validate

__all__ = [
    "Expectation",
    "ExpectationResult",
    "Suite",
    "ValidationResult",
    "ge_document",
    "load_suite",
    "load_suites",
    "read_document",
    "validate",
]
