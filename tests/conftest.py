"""Shared fixtures: isolated environment, temporary projects built from real files."""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lagoa.orchestrate.project import Project


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No LAGOA_* setting from the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("LAGOA_"):
            monkeypatch.delenv(key)
    yield


MakeProject = Callable[..., Project]


@pytest.fixture
def make_project(tmp_path: Path) -> MakeProject:
    """Write lagoa.yml (and sample files) into a temporary folder and load it."""

    def make(config: str, files: dict[str, str | bytes] | None = None) -> Project:
        (tmp_path / "lagoa.yml").write_text(textwrap.dedent(config))
        for name, content in (files or {}).items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(textwrap.dedent(content))
        return Project.load(tmp_path)

    return make


ORDERS_CONFIG = """
name: test
sources:
  orders:
    format: csv
    path: data/orders*.csv
    primary_key: [order_id]
    ordering: updated_at
    partition_by: ["day(ordered_at)"]
    columns:
      order_id: long
      amount: double
      ordered_at: timestamp
      updated_at: timestamp
"""


def count(project: Project, sql: str) -> int:
    _, rows = project.query(sql)
    return int(rows[0][0])


EXAMPLES = Path(__file__).parents[1] / "examples"


def copy_example(name: str, folder: Path, *, skip: tuple[str, ...] = ()) -> Path:
    """A copy of ``examples/<name>`` in ``folder``, without what a previous run left there."""
    shutil.copytree(
        EXAMPLES / name, folder, ignore=shutil.ignore_patterns(".lagoa", "_lagoa_sources.yml", *skip)
    )
    return folder


def lake_rows(project: Project, table: str) -> list[tuple[object, ...]]:
    """A table's rows, sorted, without the columns saying when and by which run each was written
    (they differ between two runs building the same lake; nothing else may)."""
    columns, _ = project.query(f"select * from {table} limit 0")
    kept = [
        c for c in columns if not (c.startswith("_lagoa") and (c.endswith("_at") or c == "_lagoa_run_id"))
    ]
    listed = ", ".join(f'"{c}"' for c in kept)
    return project.query(f"select {listed} from {table} order by all")[1]
