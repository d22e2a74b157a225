"""Expectation suites in Great Expectations' JSON format: loading and argument checks.

Both shapes Great Expectations writes are read: 1.x (``name``, ``expectations[].type``) and 0.x
(``expectation_suite_name``, ``expectations[].expectation_type``). Every problem is a
:class:`SuiteError` naming the suite file, the expectation's index and what to fix; nothing is
skipped silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lagoa.core.config import Action, PostgresSource, ProjectConfig, QualityConfig, Source, did_you_mean
from lagoa.core.errors import ConfigError, SuiteError
from lagoa.quality.expectations import SPECS
from lagoa.quality.rules import ARGUMENTS, COMMON_ARGUMENTS

ACTIONS = ("warn", "drop", "fail")


def label(kind: str, kwargs: dict[str, Any]) -> str:
    """Short name of an expectation for reports and quarantine reasons: ``type(columns)``."""
    columns = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
    columns += kwargs.get("column_list") or []
    return f"{kind}({', '.join(map(str, columns))})" if columns else kind


@dataclass(frozen=True)
class Expectation:
    """One expectation of a suite, its arguments checked."""

    index: int
    type: str
    kwargs: dict[str, Any]
    meta: dict[str, Any]
    action: Action = "warn"

    @property
    def column(self) -> str | None:
        column = self.kwargs.get("column")
        return column if isinstance(column, str) else None

    @property
    def label(self) -> str:
        return label(self.type, self.kwargs)


@dataclass(frozen=True)
class Suite:
    name: str
    path: str
    expectations: list[Expectation]
    meta: dict[str, Any] = field(default_factory=dict)
    table: str | None = None
    """The table the suite validates (``silver.<entity>``), when bound to one."""


def load_suite(path: Path, quality: QualityConfig | None = None) -> Suite:
    """Read one suite file and check every expectation against what Lagoa supports."""
    file = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SuiteError(file, "not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(file, f"cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise SuiteError(
            file, f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    return parse_suite(data, file, quality)


def parse_suite(data: Any, file: str, quality: QualityConfig | None = None) -> Suite:
    if not isinstance(data, dict):
        raise SuiteError(file, "must be a JSON object with `name` and `expectations`")
    name = data.get("name") or data.get("expectation_suite_name")
    if not isinstance(name, str) or not name:
        raise SuiteError(file, "has no suite name", hint='add "name": "<suite name>"')
    items = data.get("expectations")
    if not isinstance(items, list):
        raise SuiteError(file, "`expectations` must be a list")
    quality = quality or QualityConfig()
    settings = quality.suites.get(name)
    default = (settings.on_fail if settings else None) or quality.on_fail
    expectations = [
        _expectation(item, index, file, default, settings.expectations if settings else {})
        for index, item in enumerate(items)
    ]
    overrides = settings.expectations if settings else {}
    matched = {key for e in expectations for key in _override_keys(e)}
    for key in overrides:
        if key not in matched:
            raise ConfigError(
                f"`{key}` matches no expectation of suite `{name}` ({file})",
                key=f"quality.suites.{name}.expectations",
                hint="keys are `<type>`, `<type>:<column>` or `#<index>` of the suite's expectations",
            )
    meta = data["meta"] if isinstance(data.get("meta"), dict) else {}
    lagoa: dict[str, Any] = meta["lagoa"] if isinstance(meta.get("lagoa"), dict) else {}
    table = (settings.table if settings else None) or lagoa.get("table")
    if isinstance(table, str) and "." not in table:
        table = f"silver.{table}"
    return Suite(name, file, expectations, meta, table if isinstance(table, str) else None)


def _override_keys(expectation: Expectation) -> tuple[str, ...]:
    """The keys lagoa.yml may use to set this expectation's action, most specific first."""
    return (f"#{expectation.index}", f"{expectation.type}:{expectation.column}", expectation.type)


def _expectation(
    item: Any, index: int, file: str, default: Action, overrides: dict[str, Action]
) -> Expectation:
    if not isinstance(item, dict):
        raise SuiteError(file, "must be an object with `type` and `kwargs`", index=index)
    kind = item.get("type") or item.get("expectation_type")
    if not isinstance(kind, str):
        raise SuiteError(file, "has no `type`", index=index)
    spec = SPECS.get(kind)
    if spec is None:
        raise SuiteError(
            file,
            f"`{kind}` is not supported{did_you_mean(kind, SPECS)}",
            index=index,
            hint="supported types are listed in docs/quality.md; remove it or replace it with one of them",
        )
    kwargs = item.get("kwargs", {})
    meta = item.get("meta") or {}
    if not isinstance(kwargs, dict) or not isinstance(meta, dict):
        raise SuiteError(file, f"`{kind}`: kwargs and meta must be objects", index=index)
    allowed = {*spec.required, *spec.optional, *COMMON_ARGUMENTS}
    for name, value in kwargs.items():
        if name not in allowed:
            raise SuiteError(
                file, f"`{kind}` has no argument `{name}`{did_you_mean(name, allowed)}", index=index
            )
        check = ARGUMENTS.get(name)
        if check is not None and value is not None and not check.accepts(value):
            raise SuiteError(
                file, f"`{kind}`: argument `{name}` must be {check.description}, not {value!r}", index=index
            )
    for name in spec.required:
        if kwargs.get(name) is None:
            raise SuiteError(file, f"`{kind}` needs the argument `{name}`", index=index)
    problem = spec.check(kwargs)
    if problem:
        raise SuiteError(file, f"`{kind}`: {problem}", index=index)
    expectation = Expectation(index, kind, dict(kwargs), dict(meta))
    action = _action(expectation, meta, overrides, file)
    if action is None:
        # A suite's or the project's `drop` drops the rows that fail row expectations; the
        # others judge the table as a whole, have no rows to drop, and warn.
        action = "warn" if default == "drop" and not spec.row_level else default
    if action == "drop" and not spec.row_level:
        raise SuiteError(
            file,
            f"`{kind}` checks the table as a whole, so its failing rows cannot be dropped",
            index=index,
            hint="use on_fail: warn or fail for aggregate and table expectations",
        )
    return replace(expectation, action=action)


def _action(
    expectation: Expectation, meta: dict[str, Any], overrides: dict[str, Action], file: str
) -> Action | None:
    """The action set for this expectation itself (lagoa.yml, then its meta); None: the default."""
    for key in _override_keys(expectation):
        if key in overrides:
            return overrides[key]
    lagoa = meta.get("lagoa")
    if isinstance(lagoa, dict) and "on_fail" in lagoa:
        action = lagoa["on_fail"]
        if action not in ACTIONS:
            raise SuiteError(
                file,
                f"meta.lagoa.on_fail must be one of {', '.join(ACTIONS)}, not {action!r}",
                index=expectation.index,
            )
        return action  # type: ignore[no-any-return]
    return None


def load_suites(root: Path, quality: QualityConfig) -> list[Suite]:
    """Every suite in the project's quality folder, sorted by file name."""
    folder = root / quality.path
    if not folder.is_dir():
        return []
    suites = [load_suite(path, quality) for path in sorted(folder.glob("*.json"))]
    seen: dict[str, str] = {}
    for suite in suites:
        if suite.name in seen:
            raise SuiteError(suite.path, f"suite name `{suite.name}` is also used by {seen[suite.name]}")
        seen[suite.name] = suite.path
    for name in quality.suites:
        if name not in seen:
            raise ConfigError(
                f"no suite named `{name}` in {folder}{did_you_mean(name, seen)}",
                key=f"quality.suites.{name}",
                hint="the key is the suite's `name` inside its JSON file",
            )
    return suites


def project_suites(root: Path, config: ProjectConfig) -> list[Suite]:
    """The project's suites, each checked on its own (:func:`load_suites`): what a run checks
    before it lands anything."""
    return load_suites(root, config.quality)


def suites_for(suites: list[Suite], table: str) -> list[Suite]:
    """Suites bound to ``table`` (``silver.<entity>``): by setting, else by the suite's name."""
    return [s for s in suites if s.table == table or (s.table is None and table == f"silver.{s.name}")]


def required_columns(suites: list[Suite], sources: Mapping[str, Source]) -> dict[str, dict[str, str]]:
    """Per source, the columns its suites' expectations name, each with the expectation naming
    it: checked against the data before bronze lands, so that a misspelt column stops the ingest
    rather than failing the batch later. Expectations on the table's columns as a whole
    (``expect_column_to_exist``, the column set and list) may name any column: finding it missing
    is what they are for; Lagoa's own ``_lagoa_*`` columns are added by the stages."""
    required: dict[str, dict[str, str]] = {}
    for name, source in sources.items():
        if isinstance(source, PostgresSource):
            continue
        for suite in suites_for(suites, f"silver.{source.entity or name}"):
            for expectation in suite.expectations:
                for column in _named_columns(expectation):
                    if not column.startswith("_lagoa_"):
                        where = f"expectations[{expectation.index}] of {suite.path}"
                        required.setdefault(name, {}).setdefault(column, where)
    return required


def _named_columns(expectation: Expectation) -> list[str]:
    if SPECS[expectation.type].kind == "table":
        return []
    kwargs = expectation.kwargs
    names = [kwargs.get(key) for key in ("column", "column_A", "column_B")]
    names += kwargs.get("column_list") or []
    return [n for n in names if isinstance(n, str)]
