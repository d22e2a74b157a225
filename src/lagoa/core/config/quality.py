"""The ``quality:`` section: expectation suites and what their failures do."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lagoa.core.config.base import Model

Action = Literal["warn", "drop", "fail"]
ResultFormat = Literal["BOOLEAN_ONLY", "BASIC", "SUMMARY", "COMPLETE"]


class SuiteSettings(Model):
    """Where a suite applies and what its failures do."""

    table: str | None = None
    """Table the suite validates: ``silver.<entity>`` (or just ``<entity>``). Defaults to the suite name."""
    on_fail: Action | None = None
    """Action for this suite's expectations that do not set ``meta.lagoa.on_fail``."""
    expectations: dict[str, Action] = Field(default_factory=dict)
    """Actions per expectation, keyed ``<type>``, ``<type>:<column>`` or ``#<index>``; these win
    over the suite's own ``meta.lagoa.on_fail``."""


class QualityConfig(Model):
    """Expectation suites (Great Expectations' JSON format) run before silver is committed."""

    path: str = "quality"
    """Folder of suite files (``*.json``), relative to the project."""
    on_fail: Action = "warn"
    """Default action: ``warn`` records the failure, ``drop`` quarantines failing rows, ``fail``
    stops the batch before silver is committed."""
    result_format: ResultFormat = "SUMMARY"
    """Detail of stored results, as in Great Expectations."""
    suites: dict[str, SuiteSettings] = Field(default_factory=dict)
    """Settings per suite name."""
