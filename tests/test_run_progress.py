"""What `lagoa run` shows while it runs: each retry of a source as it waits, with what it waits
for and how long; each retry of a task with the seconds before its next attempt; and on a
terminal, a live view of the tasks running, with their time so far."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

from tests.test_cli_fits import in_terminal
from tests.test_http_source import TOKEN, Start, api  # noqa: F401 - api is a fixture used here

PROJECT = """
name: progress
sources:
  items:
    kind: http
    base_url: {base}
    endpoint: /v1/orders
    records: results
    paginate: {{type: next_url, path: next}}
    params: {{limit: "100"}}
    primary_key: [id]
    ordering: updated_at
    columns: {{id: long, updated_at: timestamptz}}
    auth: {{type: bearer, token: "{token}"}}
    retries: {retries}
    backoff: 0.1
domains:
  api: {{sources: [items]}}
"""


def project(root: Path, base: str, retries: int = 5) -> Path:
    (root / "lagoa.yml").write_text(PROJECT.format(base=base, token=TOKEN, retries=retries))
    return root


def lagoa_run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lagoa.cli", "run"], cwd=root, capture_output=True, text=True, timeout=300
    )


def test_a_throttled_api_is_shown_waiting_as_it_waits(api: Start, tmp_path: Path) -> None:  # noqa: F811
    base = api("--throttle-every", "3")  # every third request answers 429 with Retry-After: 1
    done = lagoa_run(project(tmp_path, base))
    assert done.returncode == 0, done.stderr
    waits = re.findall(r"warning  ingest_api: 429 \(page (\d+)\) from items, retrying in 1\.0 s", done.stderr)
    assert waits, done.stderr
    assert "succeeded  ingest_api" in done.stderr
    # Each wait is told before the task ends, not in its log afterwards.
    assert done.stderr.index("warning  ingest_api") < done.stderr.index("succeeded  ingest_api")


def test_an_unreachable_api_says_so_at_once_and_the_task_retries_say_their_wait(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nothing listens on: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    done = lagoa_run(project(tmp_path, f"http://127.0.0.1:{port}", retries=1))
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    refused = [
        i for i, line in enumerate(lines) if "connection refused from items, retrying in 0.1 s" in line
    ]
    retried = [
        i
        for i, line in enumerate(lines)
        if re.match(r" retrying  ingest_api in \d+\.\d s \(attempt \d\): source `items`", line)
    ]
    failed = [i for i, line in enumerate(lines) if line.startswith("   failed  ingest_api")]
    assert len(refused) == 3, done.stderr  # one source retry in each of the task's 3 attempts
    assert len(retried) == 2 and len(failed) == 1, done.stderr
    assert refused[0] < retried[0] < refused[1] < retried[1] < refused[2] < failed[0]
    assert "(attempt 2)" in lines[retried[0]] and "(attempt 3)" in lines[retried[1]]


def test_on_a_terminal_the_running_tasks_are_drawn_with_their_time(api: Start, tmp_path: Path) -> None:  # noqa: F811
    base = api()
    shown = in_terminal(["run"], project(tmp_path, base))
    assert re.search(r"running  ingest_api\s+\d+\.\ds", shown), shown
    assert re.search(r"running  validate_api\s+\d+\.\ds", shown), shown
    assert "succeeded  ingest_api" in shown and "succeeded  validate_api" in shown
