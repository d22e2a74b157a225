"""A project with real runs for the ``lagoa serve`` tests, and a server started as a process.

The retail example with one more pipeline, ``sensor_feed``, whose only source fails until a file
named ``sensors-online`` exists in the project: its run fails, and a retry after the file is
created succeeds. Runs: ``daily`` over two days (every task succeeds, dbt builds the models, rows
are quarantined), ``sensor_feed`` over one day (failed); the dbt docs site is published.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from lagoa.orchestrate.project import Project
from tests.conftest import copy_example

SENSORS = '''
from pathlib import Path


def readings(context, flag):
    """Fails until the flag file exists (the sensor API is down), then yields two readings."""
    if not Path(flag).exists():
        raise RuntimeError("the sensor API is unreachable")
    yield {"sensor_id": 1, "value": 20.5, "at": context.interval.start}
    yield {"sensor_id": 2, "value": 21.0, "at": context.interval.start}
'''
DAY = datetime(2024, 6, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ServedProject:
    root: Path
    daily_run: str
    failed_run: str
    flag: Path
    """Create it to let the ``sensor_feed`` pipeline succeed."""


def build_project(folder: Path, observe: dict[str, Any] | None = None) -> ServedProject:
    """The project, its runs made; ``observe``: lagoa.yml's ``observe:`` for them (lineage kept…)."""
    root = copy_example("retail_lakehouse", folder)
    (root / "sensors.py").write_text(SENSORS)
    config = yaml.safe_load((root / "lagoa.yml").read_text())
    flag = root / "sensors-online"
    config["sources"]["sensors"] = {
        "kind": "python",
        "function": "sensors.py:readings",
        "options": {"flag": str(flag)},
        "primary_key": ["sensor_id"],
    }
    config["domains"]["sensors"] = {"sources": ["sensors"]}
    config.setdefault("pipelines", {})["sensor_feed"] = {"domains": ["sensors"]}
    if observe is not None:
        config["observe"] = observe
    (root / "lagoa.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    project = Project.load(root)
    try:
        daily = project.run(["daily"], interval=(DAY, datetime(2024, 6, 3, tzinfo=UTC)))
        assert daily.succeeded, daily.outcomes
        failed = project.run(["sensor_feed"], interval=(DAY, datetime(2024, 6, 2, tzinfo=UTC)))
        assert not failed.succeeded
        project.docs()
        return ServedProject(root, daily.run_id, failed.run_id, flag)
    finally:
        project.close()


@contextmanager
def server(root: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """``lagoa serve --port 0`` on the project; yields its base URL (no trailing slash)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lagoa.cli", "serve", "--port", "0", "-p", str(root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None and process.stderr is not None
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(process.stderr or ()), daemon=True)
    reader.start()
    try:
        url = None
        deadline = time.monotonic() + 120
        for line in process.stdout:
            found = re.search(r"at (http://\S+?)/ ", line)
            if found:
                url = found[1]
                break
            assert time.monotonic() < deadline, "lagoa serve printed no address"
        assert url is not None, f"lagoa serve ended: {''.join(errors)}"
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        reader.join(timeout=10)
        process.stdout.close()
        process.stderr.close()
