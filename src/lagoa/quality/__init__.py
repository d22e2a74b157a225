"""Data quality: Great Expectations suites compiled to DuckDB, with warn / drop / fail actions."""

from lagoa.quality.suite import Expectation, Suite, load_suite, load_suites
from lagoa.quality.validate import ValidationResult, validate

__all__ = ["Expectation", "Suite", "ValidationResult", "load_suite", "load_suites", "validate"]
