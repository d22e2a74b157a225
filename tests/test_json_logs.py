"""Structured logs: one JSON object per line with the run, task, attempt, interval and table of
the work that logged it, secrets redacted; ``--log-format``, ``LAGOA_LOG_FORMAT`` and
``observe.log_format`` in that order; the text format and the stored attempt logs unchanged."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lagoa.cli import main
from lagoa.core.config.secrets import Redactor
from lagoa.core.logs import (
    UNREADABLE,
    JsonFormatter,
    JsonLogHandler,
    current_context,
    json_logs,
    log_context,
)
from lagoa.core.time import Interval
from lagoa.orchestrate.project import Project
from tests.conftest import MakeProject

SECRET = "l0g-s3cret/very+private"
DAY = Interval(datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 2, tzinfo=UTC))
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
PROJECT = """
name: logs
sources:
  orders:
    format: csv
    path: data/orders*.csv
    primary_key: [order_id]
    columns: {{order_id: long, amount: double}}
  relay:
    kind: python
    function: relay.py:rows
    options: {{token: "${{env:LOG_SECRET}}"}}
domains:
  orders: {{sources: [orders]}}
  broken: {{sources: [relay]}}
{observe}
"""
ORDERS = "order_id,amount\n1,2.0\n2,3.5\n"
RELAY = """
import logging

from lagoa.core.config import resolve_secrets


def rows(context, token):
    token = resolve_secrets(token)
    logging.getLogger("lagoa.relay").info("calling upstream with %s", token)
    raise RuntimeError(f"upstream refused token {token}")
    yield {}
"""
FILES = {"data/orders_1.csv": ORDERS, "relay.py": RELAY}


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_SECRET", SECRET)


def formatted(record: logging.LogRecord, redact: Redactor | None = None) -> dict[str, Any]:
    line = JsonFormatter((redact or Redactor([SECRET])).text).format(record)
    assert "\n" not in line
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def record(message: str, *args: object, **fields: Any) -> logging.LogRecord:
    return logging.makeLogRecord(
        {"name": "lagoa.test", "levelname": "INFO", "levelno": 20, "msg": message, "args": args, **fields}
    )


def test_a_record_is_one_object_with_the_fields_of_its_work_and_no_secret() -> None:
    with log_context(run_id="run-1", task="ingest_orders", attempt=2, interval=DAY, table="bronze.orders"):
        entry = formatted(record("sent %s to %s", SECRET, "the API"))
    assert TIME.match(entry.pop("time"))
    assert entry == {
        "level": "INFO",
        "logger": "lagoa.test",
        "message": "sent *** to the API",
        "run_id": "run-1",
        "task": "ingest_orders",
        "attempt": 2,
        "interval": "2024-06-01T00:00:00Z/2024-06-02T00:00:00Z",
        "table": "bronze.orders",
    }


def test_fields_are_absent_when_unknown_and_time_is_utc_with_milliseconds() -> None:
    moment = datetime(2026, 11, 21, 5, 6, 7, 891_000, tzinfo=UTC)
    entry = formatted(record("hello", created=moment.timestamp()))
    assert entry == {
        "time": "2026-11-21T05:06:07.891Z",
        "level": "INFO",
        "logger": "lagoa.test",
        "message": "hello",
    }


def test_an_exception_becomes_the_error_field_redacted_with_its_causes() -> None:
    try:
        try:
            raise ConnectionError(f"refused https://user:{SECRET}@api.example")
        except ConnectionError as cause:
            raise RuntimeError(f"token {json.dumps(SECRET)[1:-1]} rejected") from cause
    except RuntimeError:
        exc_info = sys.exc_info()
    entry = formatted(record("fetch failed", exc_info=exc_info, levelname="ERROR"))
    assert entry["message"] == "fetch failed" and entry["level"] == "ERROR"
    assert entry["error"].startswith("Traceback (most recent call last):")
    assert "ConnectionError: refused https://user:***@api.example" in entry["error"]
    assert "RuntimeError: token *** rejected" in entry["error"]
    assert SECRET not in json.dumps(entry) and "very+private" not in json.dumps(entry)


def test_fields_given_with_a_record_take_the_place_of_the_contexts() -> None:
    with log_context(run_id="run-1", task="ingest_orders"):
        entry = formatted(record("x", task="validate_orders", table="silver.orders"))
    assert (entry["run_id"], entry["task"], entry["table"]) == ("run-1", "validate_orders", "silver.orders")


def test_a_secret_that_cannot_be_resolved_hides_the_message_rather_than_failing() -> None:
    def broken(text: str) -> str:
        raise LookupError("no such secret")

    line = JsonFormatter(broken).format(record("token %s", SECRET))
    assert json.loads(line)["message"] == UNREADABLE


def test_the_context_nests_reaches_copied_threads_only_and_is_reset() -> None:
    seen: dict[str, dict[str, Any]] = {}

    def look(name: str) -> None:
        seen[name] = current_context()

    with log_context(run_id="run-1", interval=DAY):
        with log_context(task="t", attempt=1):
            copied = threading.Thread(target=contextvars.copy_context().run, args=(look, "copied"))
            plain = threading.Thread(target=look, args=("plain",))
            for thread in (copied, plain):
                thread.start()
                thread.join()
        after_inner = current_context()
    assert seen["copied"] == {"run_id": "run-1", "interval": DAY, "task": "t", "attempt": 1}
    assert seen["plain"] == {}
    assert after_inner == {"run_id": "run-1", "interval": DAY}
    assert current_context() == {}


def test_the_handler_writes_to_the_stderr_of_the_moment(capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("lagoa.test_handler")
    handler = JsonLogHandler(Redactor([SECRET]).text)
    logger.addHandler(handler)
    try:
        logger.warning("with %s", SECRET)
    finally:
        logger.removeHandler(handler)
    (line,) = capsys.readouterr().err.splitlines()
    assert json.loads(line)["message"] == "with ***"


# The command line


@pytest.fixture
def folder(make_project: MakeProject, tmp_path: Path) -> Iterator[Path]:
    make_project(PROJECT.format(observe=""), FILES)
    yield tmp_path
    assert not [h for h in logging.getLogger("lagoa").handlers if isinstance(h, JsonLogHandler)]


def lagoa(folder: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [*args, "-p", str(folder)], env=env)


def json_lines(result: Result) -> list[dict[str, Any]]:
    """Every line of stderr, each of which must be a JSON object."""
    return [json.loads(line) for line in result.stderr.splitlines()]


def test_a_run_logs_json_lines_naming_its_run_task_attempt_and_interval(folder: Path) -> None:
    result = lagoa(folder, "--log-format", "json", "run", "--date", "2024-06-01", "--json")
    assert result.exit_code == 1, result.output  # `broken` fails
    lines = json_lines(result)
    (run,) = Project.load(folder).state.runs()
    assert {line["run_id"] for line in lines} == {run.run_id}
    assert all(TIME.match(line["time"]) for line in lines)
    assert {line["interval"] for line in lines} == {"2024-06-01T00:00:00Z/2024-06-02T00:00:00Z"}
    by_task = {(line["task"], line["attempt"]) for line in lines if "task" in line}
    assert {("ingest_orders", 1), ("validate_orders", 1), ("ingest_broken", 1)} <= by_task
    (bronze,) = [line for line in lines if line["message"] == "orders: 2 rows to bronze"]
    assert bronze["table"] == "bronze.orders"
    (silver,) = [
        line for line in lines if line["message"].startswith("orders: ") and "to silver" in line["message"]
    ]
    assert silver["table"] == "silver.orders" and silver["task"] == "validate_orders"

    (failure,) = [line for line in lines if line["level"] == "ERROR"]
    assert failure["task"] == "ingest_broken" and failure["logger"] == "lagoa.executor"
    assert failure["message"].startswith("ingest_broken attempt 1 failed: ")
    assert failure["error"].startswith("Traceback (most recent call last):")
    assert "upstream refused token ***" in failure["message"]
    assert "RuntimeError: upstream refused token ***" in failure["error"]
    told = {"message": "calling upstream with ***", "task": "ingest_broken", "logger": "lagoa.relay"}
    assert any(told.items() <= line.items() for line in lines)
    assert SECRET not in result.stderr + result.stdout

    found = Project.load(folder).state.run(run.run_id)
    assert found is not None
    attempts = {a.task: a for a in found.attempts}
    stored = attempts["ingest_orders"].log or ""
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO lagoa\.tasks: ", stored), stored
    assert "{" not in stored  # the stored logs stay text
    assert (attempts["ingest_broken"].log or "").endswith(" INFO lagoa.relay: calling upstream with ***")


@pytest.mark.parametrize(
    ("in_file", "env", "flag", "expected"),
    [
        (None, None, None, "text"),
        ("json", None, None, "json"),
        ("text", "json", None, "json"),
        ("json", "text", None, "text"),
        ("text", "text", "json", "json"),
        ("json", "json", "text", "text"),
    ],
)
def test_the_flag_wins_over_the_environment_which_wins_over_lagoa_yml(
    make_project: MakeProject,
    tmp_path: Path,
    in_file: str | None,
    env: str | None,
    flag: str | None,
    expected: str,
) -> None:
    observe = f"observe: {{log_format: {in_file}}}" if in_file else ""
    make_project(PROJECT.format(observe=observe), FILES)
    args = ["--log-format", flag] if flag else []
    result = lagoa(
        tmp_path, *args, "ingest", "orders", "--json", env={"LAGOA_LOG_FORMAT": env} if env else None
    )
    assert result.exit_code == 0, result.output
    if expected == "json":
        assert any(line["message"] == "orders: 2 rows to bronze" for line in json_lines(result))
    else:
        assert result.stderr == ""  # the text format writes what it wrote before: nothing
    assert not [h for h in logging.getLogger("lagoa").handlers if isinstance(h, JsonLogHandler)]


def test_help_names_the_option() -> None:
    shown = CliRunner().invoke(main, ["--help"])
    assert "--log-format [text|json]" in shown.output


def test_an_unknown_format_is_refused(folder: Path) -> None:
    result = lagoa(folder, "--log-format", "yaml", "runs")
    assert result.exit_code == 2 and "'yaml' is not one of 'text', 'json'" in result.stderr


def test_a_run_in_python_logs_the_same_lines(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    """The context is set by the orchestrator, not by the command line: ``json_logs`` gives a
    Python caller the lines ``--log-format json`` gives."""
    project = make_project(PROJECT.format(observe=""), FILES)
    stop = json_logs(project.workspace.redactor.text)
    try:
        result = project.run(["broken"], interval=DAY)
    finally:
        stop()
    assert not result.succeeded
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert {line["task"] for line in lines} == {"ingest_broken"}
    assert "calling upstream with ***" in [line["message"] for line in lines]
    failure = lines[-1]
    assert failure["level"] == "ERROR" and "refused token ***" in failure["error"]
    assert SECRET not in json.dumps(lines)
    assert not [h for h in logging.getLogger("lagoa").handlers if isinstance(h, JsonLogHandler)]
