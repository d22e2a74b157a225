"""The orchestration commands: ``lagoa graph``, ``run``, ``runs``, ``backfill``, ``scheduler``."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from lagoa.cli import Output, _project, handle_errors, json_option, main, project_command, project_option

if TYPE_CHECKING:
    from lagoa.orchestrate.executor import Event, EventStream
    from lagoa.orchestrate.runs import RunResult

EXIT_CANCELLED = 130


@project_command(with_json=False)
@click.argument("names", nargs=-1)
@click.option("--dot", is_flag=True, help="Print Graphviz DOT instead of text.")
def graph(names: tuple[str, ...], dot: bool, project_path: str) -> None:
    """Print the task graph of a PIPELINE or DOMAINS (all by default): ingest → validate →
    transform → publish."""
    from lagoa.orchestrate.graph import project_graph
    from lagoa.orchestrate.runs import resolve

    project = _project(project_path)
    _, domains = resolve(project, list(names))
    tasks = project_graph(project, domains)
    click.echo(tasks.dot() if dot else tasks.text())


class _RunGroup(click.Group):
    """``lagoa run [PIPELINE | DOMAIN…]`` starts a run; ``lagoa run show|retry ID`` look at one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args[:1] not in (["--help"], ["-h"]) and (not args or args[0] not in self.commands):
            args = ["start", *args]
        return super().parse_args(ctx, args)


@main.group(cls=_RunGroup)
def run() -> None:
    """Run a pipeline, or show or retry a run.

    \b
    lagoa run [PIPELINE | DOMAIN...] [--date D | --start S --end E]
    lagoa run show RUN_ID
    lagoa run retry RUN_ID

    `lagoa run start --help` lists the options of a run.
    """


@run.command("start")
@click.argument("names", nargs=-1)
@click.option(
    "--date",
    "day",
    help="The data interval: this UTC day (2026-11-21), or hour for an hourly pipeline (2026-11-21T05). "
    "Default: the previous day (D-1), or previous hour.",
)
@click.option("--start", help="Start of an explicit data interval (UTC), with --end.")
@click.option("--end", help="End of an explicit data interval (UTC, exclusive), with --start.")
@click.option("--max-parallel", type=int, help="Tasks run at once (default: orchestration.max_parallel, 2).")
@project_option
@json_option
@handle_errors
def run_start(
    names: tuple[str, ...],
    day: str | None,
    start: str | None,
    end: str | None,
    max_parallel: int | None,
    project_path: str,
    as_json: bool,
) -> None:
    """Run a PIPELINE (or DOMAINS; all by default) once for one data interval, recorded in the
    state database.

    Independent tasks run in parallel; transient errors are retried with backoff; a failed task's
    downstream tasks are skipped. Ctrl-C starts no new task and lets running ones finish (twice:
    abort). Exits 1 when a task failed, 130 when cancelled. `lagoa run show|retry RUN_ID` look
    back at a run.
    """
    from lagoa.core.time import Interval, interval_of, parse_moment
    from lagoa.orchestrate.runs import RunOptions, resolve, unit_for

    project = _project(project_path)
    pipeline, _ = resolve(project, list(names))
    if day and (start or end):
        raise click.UsageError("give --date, or --start and --end, not both")
    if bool(start) != bool(end):
        raise click.UsageError("--start and --end go together")
    interval = None
    if day:
        interval = interval_of(day, unit_for(project, pipeline))
    elif start and end:
        interval = Interval(parse_moment(start), parse_moment(end))
        if interval.end <= interval.start:
            raise click.UsageError("--end must be after --start")
    with stop_on_signal() as cancel:
        events = _stream(as_json)
        options = RunOptions(events=events, max_parallel=max_parallel, cancel=cancel)
        result = project.run(list(names), interval=interval, options=options)
    _finish(result, Output(as_json))


@run.command("show")
@click.argument("run_id")
@click.option("--logs", is_flag=True, help="Print each attempt's log too.")
@project_option
@json_option
@handle_errors
def run_show(run_id: str, logs: bool, project_path: str, as_json: bool) -> None:
    """Show RUN_ID: its interval and state, and every task attempt with its duration, rows and error."""
    import json

    found = _project(project_path).state.run(run_id)
    if found is None:
        raise click.ClickException(f"no run {run_id}; `lagoa runs` lists them")
    if as_json:
        click.echo(json.dumps(found, indent=2, default=str))
        return
    click.echo(f"run {run_id}: {found['pipeline']}, {found['state']}")
    click.echo(f"  interval  {found['interval_start']} → {found['interval_end']}")
    click.echo(f"  started   {found['started_at']}, took {_took(found['started_at'], found['ended_at'])}")
    if found["error"]:
        click.echo(f"  error     {found['error']}")
    Output().table(
        "",
        ["task", "attempt", "state", "started", "took", "rows", "error"],
        [
            (
                a["task"],
                a["attempt"] or "-",
                a["state"],
                a["started_at"].strftime("%H:%M:%S") if a["attempt"] else "",
                _took(a["started_at"], a["ended_at"]) if a["attempt"] else "",
                a["rows_out"],
                a["error"],
            )
            for a in found["attempts"]
        ],
    )
    if logs:
        for a in found["attempts"]:
            if a["log"]:
                click.echo(f"\n--- {a['task']} attempt {a['attempt']} ---\n{a['log']}")


@run.command("retry")
@click.argument("run_id")
@click.option("--max-parallel", type=int, help="Tasks run at once (default: orchestration.max_parallel, 2).")
@project_option
@json_option
@handle_errors
def run_retry(run_id: str, max_parallel: int | None, project_path: str, as_json: bool) -> None:
    """Run RUN_ID's failed, skipped and cancelled tasks again, for the same interval; tasks that
    succeeded are not run again."""
    from lagoa.orchestrate.runs import RunOptions, retry

    project = _project(project_path)
    with stop_on_signal() as cancel:
        options = RunOptions(events=_stream(as_json), max_parallel=max_parallel, cancel=cancel)
        result = retry(project, run_id, options)
    _finish(result, Output(as_json))


@project_command()
@click.option(
    "--state",
    type=click.Choice(["running", "succeeded", "failed", "cancelled"]),
    help="Only runs in this state.",
)
@click.option("--pipeline", help="Only runs of this pipeline.")
@click.option("--limit", default=50, show_default=True, help="Runs shown, newest first.")
def runs(state: str | None, pipeline: str | None, limit: int, project_path: str, as_json: bool) -> None:
    """List recent runs; `lagoa run show RUN_ID` shows one."""
    rows = _project(project_path).state.runs(state=state, pipeline=pipeline, limit=limit)
    Output(as_json).table(
        "runs",
        ["run", "pipeline", "state", "interval start", "interval end", "started", "took", "error"],
        [
            (
                r["run_id"],
                r["pipeline"],
                r["state"],
                r["interval_start"],
                r["interval_end"],
                r["started_at"],
                _took(r["started_at"], r["ended_at"]),
                r["error"],
            )
            for r in rows
        ],
    )


@project_command()
@click.argument("names", nargs=-1)
@click.option("--start", required=True, help="First interval's start (UTC day or hour), inclusive.")
@click.option("--end", required=True, help="Last interval's end (UTC day or hour), exclusive.")
@click.option(
    "--concurrency", default=1, show_default=True, type=click.IntRange(1), help="Intervals run at once."
)
@click.option("--max-parallel", type=int, help="Tasks run at once within each run.")
def backfill(
    names: tuple[str, ...],
    start: str,
    end: str,
    concurrency: int,
    max_parallel: int | None,
    project_path: str,
    as_json: bool,
) -> None:
    """Run a PIPELINE (or DOMAINS; all by default) for every interval from --start to --end, oldest
    first, CONCURRENCY at a time. Each interval is a run of its own (see `lagoa runs`)."""
    from lagoa.core.time import parse_moment
    from lagoa.orchestrate.runs import RunOptions, resolve
    from lagoa.orchestrate.runs import backfill as run_backfill

    project = _project(project_path)
    pipeline, domains = resolve(project, list(names))

    def progress(result: RunResult) -> None:
        if not as_json:
            click.echo(f"{result.interval}  {result.state:<9}  run {result.run_id}", err=True)

    with stop_on_signal() as cancel:
        options = RunOptions(max_parallel=max_parallel, cancel=cancel)
        results = run_backfill(
            project,
            pipeline,
            domains,
            parse_moment(start),
            parse_moment(end),
            concurrency=concurrency,
            options=options,
            on_result=progress,
        )
    Output(as_json).table(
        f"backfill of {pipeline}",
        ["interval start", "interval end", "run", "state", "rows"],
        [
            (
                r.interval.start,
                r.interval.end,
                r.run_id,
                r.state,
                sum(o.rows or 0 for o in r.outcomes.values()),
            )
            for r in results
        ],
    )
    if any(r.state == "cancelled" for r in results) or cancel.is_set():
        sys.exit(EXIT_CANCELLED)
    if any(not r.succeeded for r in results):
        sys.exit(1)


@main.command()
@click.option("--once", is_flag=True, help="Run what is due now, wait for it, and exit.")
@click.option("--poll", default=30.0, show_default=True, help="Seconds between checks at most.")
@project_option
@handle_errors
def scheduler(once: bool, poll: float, project_path: str) -> None:
    """Run scheduled pipelines and domains when their cron ticks, until SIGTERM or Ctrl-C.

    A stop starts no new run or task and lets running tasks finish. Scheduled runs record their
    tick, so a restarted scheduler catches up (with `catchup: true`) or runs the latest tick.
    """
    from lagoa.orchestrate.scheduler import Scheduler

    project = _project(project_path)
    stop = threading.Event()

    def report(text: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{stamp}  {text}", err=True)

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        report(f"{signal.Signals(signum).name}: stopping after the running tasks")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runner = Scheduler(project, stop=stop, events=_stream(False), report=report, poll=poll)
    if once:
        runner.run_once()
    else:
        for name, config in project.config.scheduled().items():
            report(f"{name}: `{config.schedule}`, {'catching up' if config.catchup else 'latest tick only'}")
        runner.serve()
    failed = [r for r in runner.results if not r.succeeded]
    report(f"stopped: {len(runner.results)} run(s), {len(failed)} not succeeded")


@contextmanager
def stop_on_signal(
    what: str = "starting no new task; running ones finish (again: abort)",
) -> Iterator[threading.Event]:
    """The first Ctrl-C (or SIGTERM) sets the event and says ``what`` happens now; the second
    aborts."""
    cancel = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        click.echo(f"\n{signal.Signals(signum).name}: {what}", err=True)
        cancel.set()

    saved = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield cancel
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _stream(quiet: bool) -> EventStream:
    """The run's events, printed as tasks finish (unless the output is JSON)."""
    from lagoa.orchestrate.executor import EventStream

    events = EventStream()
    if quiet:
        return events

    def show(event: Event) -> None:
        if event.task and event.kind != "task_started":
            detail = (
                f": {event.error}"
                if event.error
                else (f" ({event.rows} rows)" if event.rows is not None else "")
            )
            click.echo(f"{event.kind.removeprefix('task_'):>9}  {event.task}{detail}", err=True)

    events.subscribe(show)
    return events


def _finish(result: RunResult, out: Output) -> None:
    out.message(f"{result.pipeline}, interval {result.interval}")
    out.table(
        f"run {result.run_id}: {result.state}",
        ["task", "state", "attempts", "rows", "error"],
        [(o.task, o.state, o.attempts, o.rows, o.error) for o in result.outcomes.values()],
    )
    if result.state == "cancelled":
        sys.exit(EXIT_CANCELLED)
    if not result.succeeded:
        sys.exit(1)


def _took(started: datetime | None, ended: datetime | None) -> str:
    if started is None or ended is None:
        return ""
    seconds = (ended - started).total_seconds()
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"
