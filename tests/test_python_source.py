"""Python generator sources: dicts or Arrow batches into bronze and silver, with the watermark
committed with the rows, and a generator that fails committing nothing."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lagoa.core.errors import ConfigError, SourceError
from lagoa.orchestrate.project import Project
from tests.conftest import count

GENERATOR = '''
from datetime import datetime, timedelta, timezone

import pyarrow as pa

START = datetime(2024, 6, 1, tzinfo=timezone.utc)


def readings(context, total, fail_at=None, arrow=False):
    """`total` readings, one a minute; only those after the watermark."""
    after = datetime.fromisoformat(context.watermark) if context.watermark else None
    rows = []
    for i in range(total):
        if fail_at is not None and i == fail_at:
            raise RuntimeError("the sensor API went away")
        at = START + timedelta(minutes=i)
        if after is None or at > after:
            rows.append({"id": i + 1, "value": i * 0.5, "at": at})
    if arrow:
        yield pa.RecordBatch.from_pylist(rows)
    else:
        yield from rows
'''

CONFIG = """
name: py
sources:
  readings:
    kind: python
    function: sensors.py:readings
    options: {options}
    incremental: {{field: at}}
    primary_key: [id]
    ordering: at
"""


def make(tmp_path: Path, options: str) -> Project:
    (tmp_path / "sensors.py").write_text(textwrap.dedent(GENERATOR))
    (tmp_path / "lagoa.yml").write_text(CONFIG.format(options=options))
    return Project.load(tmp_path)


@pytest.mark.parametrize("arrow", [False, True])
def test_a_generator_loads_incrementally_from_its_committed_watermark(tmp_path: Path, arrow: bool) -> None:
    project = make(tmp_path, f"{{total: 100, arrow: {str(arrow).lower()}}}")
    project.ingest()
    assert count(project, "select count(*) from silver.readings") == 100
    watermark = project.lake.latest(project.lake.table("bronze.readings"), "lagoa.cursor")
    assert watermark is not None and watermark.startswith("2024-06-01 01:39:00")

    grown = make(tmp_path, f"{{total: 130, arrow: {str(arrow).lower()}}}")
    summary = grown.ingest()
    assert summary.sources[0].bronze_rows == 30  # only what came after the watermark
    assert count(grown, "select count(*) from silver.readings") == 130
    assert count(grown, "select count(*) from bronze.readings") == 130


def test_a_failing_generator_commits_nothing_and_keeps_the_watermark(tmp_path: Path) -> None:
    project = make(tmp_path, "{total: 100}")
    project.ingest()
    before = project.lake.latest(project.lake.table("bronze.readings"), "lagoa.cursor")
    failing = make(tmp_path, "{total: 200, fail_at: 150}")
    with pytest.raises(
        SourceError, match=r"sensors\.py:readings` raised RuntimeError: the sensor API went away"
    ):
        failing.ingest()
    assert failing.lake.latest(failing.lake.table("bronze.readings"), "lagoa.cursor") == before
    assert count(failing, "select count(*) from bronze.readings") == 100
    assert not list((tmp_path / ".lagoa" / "fetch" / "readings").iterdir())  # no staged file left


def test_a_missing_function_is_a_clear_error(tmp_path: Path) -> None:
    project = make(tmp_path, "{total: 1}")
    (tmp_path / "lagoa.yml").write_text(
        CONFIG.format(options="{}").replace("sensors.py:readings", "sensors.py:nope")
    )
    with pytest.raises(ConfigError, match="has no function `nope`"):
        Project.load(tmp_path).ingest()
    del project
