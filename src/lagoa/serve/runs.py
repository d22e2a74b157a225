"""Runs as the server shows them: a filtered, paged list, and one run as a timeline of its tasks'
attempts (with the dbt models each transform attempt built), and the retry of its failed tasks.

The timeline's dbt bars come from the attempt's log, where a transform task writes one line per
dbt node with its status, duration and start (``orchestrate/tasks.py``).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lagoa.core.errors import ConfigError

if TYPE_CHECKING:
    from lagoa.orchestrate.project import Project
    from lagoa.state import AttemptRecord, RunRecord

RUN_STATES = ("running", "succeeded", "failed", "cancelled")
_CHILDREN: dict[str, subprocess.Popen[bytes]] = {}
"""Retries started by this server, by run id, reaped once they end."""
_STARTING = threading.Lock()
RETRYABLE = ("failed", "skipped", "cancelled", "timed_out")
"""Attempt states ``lagoa run retry`` runs again."""
DBT_LINE = re.compile(
    r"dbt (?P<kind>\w+) (?P<name>\S+): (?P<status>[\w ]+?) in (?P<seconds>[\d.]+)s(?:, started (?P<started>\S+))?$"
)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def run_row(run: RunRecord) -> dict[str, Any]:
    """A run without its attempts, as the list and the API show it."""
    detail = run.detail
    return {
        "run_id": run.run_id,
        "pipeline": run.pipeline,
        "state": run.state,
        "interval_start": _iso(run.interval_start),
        "interval_end": _iso(run.interval_end),
        "started_at": _iso(run.started_at),
        "ended_at": _iso(run.ended_at),
        "seconds": None if run.seconds is None else round(run.seconds, 3),
        "error": run.error,
        "trigger": detail.get("trigger"),
    }


def list_runs(
    project: Project,
    *,
    pipeline: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    store = project.state
    records = store.runs(pipeline=pipeline, state=state, since=since, until=until, limit=limit, offset=offset)
    total = store.count_runs(pipeline=pipeline, state=state, since=since, until=until)
    return {
        "runs": [run_row(r) for r in records],
        "total": total,
        "limit": limit,
        "offset": offset,
        "pipelines": store.pipelines(),
    }


def dbt_nodes(attempt: AttemptRecord) -> list[dict[str, Any]]:
    """The dbt nodes a transform attempt ran, from its log (start, seconds, status)."""
    nodes = []
    for line in (attempt.log or "").splitlines():
        found = DBT_LINE.search(line)
        if found is None:
            continue
        started = found["started"]
        nodes.append(
            {
                "kind": found["kind"],
                "name": found["name"],
                "status": found["status"],
                "seconds": float(found["seconds"]),
                "started_at": started,
            }
        )
    return nodes


def attempt_row(attempt: AttemptRecord) -> dict[str, Any]:
    row = {
        "task": attempt.task,
        "attempt": attempt.attempt,
        "state": attempt.state,
        "started_at": _iso(attempt.started_at),
        "ended_at": _iso(attempt.ended_at),
        "seconds": _seconds(attempt.started_at, attempt.ended_at),
        "error": attempt.error,
        "rows_in": attempt.rows_in,
        "rows_out": attempt.rows_out,
        "summary": attempt.summary,
        "has_log": bool(attempt.log),
    }
    if attempt.task.startswith("transform_"):
        row["dbt"] = dbt_nodes(attempt)
    return row


def run_detail(project: Project, run_id: str, *, logs: bool = False) -> dict[str, Any] | None:
    """The run with every attempt (``logs``: with its log), and the span its timeline covers."""
    run = project.state.run(run_id)
    if run is None:
        return None
    attempts = [{**attempt_row(a), "log": a.log or ""} if logs else attempt_row(a) for a in run.attempts]
    started = [a.started_at for a in run.attempts if a.attempt > 0] or [run.started_at]
    ended = [a.ended_at for a in run.attempts if a.ended_at is not None and a.attempt > 0]
    end = run.ended_at or (max(ended) if ended else None) or datetime.now(UTC)
    failed = _retryable(run)
    return {
        **run_row(run),
        "details": run.detail,
        "attempts": attempts,
        "timeline": {"start": _iso(min(started)), "end": _iso(max(end, min(started)))},
        "retryable": failed if run.state != "running" else [],
    }


def _retryable(run: RunRecord) -> list[str]:
    """The tasks ``lagoa run retry`` would run: failed, skipped or cancelled, never since succeeded."""
    succeeded = {a.task for a in run.attempts if a.state == "succeeded"}
    return sorted({a.task for a in run.attempts if a.state in RETRYABLE} - succeeded)


def attempt_log(project: Project, run_id: str, task: str, attempt: int) -> dict[str, Any] | None:
    run = project.state.run(run_id)
    if run is None:
        return None
    for found in run.attempts:
        if found.task == task and found.attempt == attempt:
            return {**asdict_attempt(found), "log": found.log or "", "running": found.state == "running"}
    return None


def asdict_attempt(attempt: AttemptRecord) -> dict[str, Any]:
    return {"run_id": attempt.run_id, **attempt_row(attempt)}


def start_retry(project: Project, run_id: str) -> dict[str, Any]:
    """Start ``lagoa run retry <run_id>`` in a process of its own (what the CLI would do); the
    run's page shows the new attempts as they start."""
    with _STARTING:  # two clicks start one retry: the child marks the run running only later
        for started, child in list(_CHILDREN.items()):
            if child.poll() is not None:
                del _CHILDREN[started]
        if run_id in _CHILDREN:
            raise ConfigError(f"a retry of run {run_id} is already running", hint="wait for it to end")
        run = project.state.run(run_id)
        if run is None:
            raise LookupError(run_id)
        if run.state == "running":
            raise ConfigError(f"run {run_id} is still running", hint="retry it once it has ended")
        tasks = _retryable(run)
        if not tasks:
            raise ConfigError(f"run {run_id} has no failed, skipped or cancelled task to retry")
        logs = project.root / ".lagoa" / "serve"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / f"retry-{run_id}.log").open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "lagoa.cli", "run", "retry", run_id, "-p", str(project.root)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _CHILDREN[run_id] = process
    return {"run_id": run_id, "tasks": tasks, "pid": process.pid}
