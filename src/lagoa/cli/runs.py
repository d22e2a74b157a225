"""The orchestration commands: ``lagoa graph``, ``run``, ``runs``, ``backfill``, ``scheduler``."""

from __future__ import annotations

import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

import click

from lagoa.cli.app import Session, handle_errors, json_option, main, project_command, project_option
from lagoa.cli.lake import warn
from lagoa.cli.output import HumanOutput, Output
from lagoa.cli.signals import EXIT_CANCELLED, stop_on_signal

if TYPE_CHECKING:
    from lagoa.core.time import Interval
    from lagoa.orchestrate.runs import RunResult


@project_command(with_json=False)
@click.argument("names", nargs=-1)
@click.option("--dot", is_flag=True, help="Print Graphviz DOT instead of text.")
def graph(names: tuple[str, ...], dot: bool, session: Session) -> None:
    """Print the task graph of a PIPELINE or DOMAINS (all by default): ingest → validate →
    transform → publish.

    \b
    Examples:
      lagoa graph daily
      lagoa graph orders web
      lagoa graph daily --dot | dot -Tsvg > daily.svg
    """
    HumanOutput().graph(session.project.graph(list(names)), dot)
    for domain, selector in session.project.unselected(list(names)).items():
        warn(
            f"domain `{domain}` selects no dbt model (`{selector}`): its transform will build nothing; "
            f"tag its models `{domain}` or set domains.{domain}.select"
        )


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

    \b
    Examples:
      lagoa run daily
      lagoa run orders web --date 2024-06-15
      lagoa run retry 2e7d55
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
@click.option(
    "--max-parallel",
    type=click.IntRange(1),
    help="Tasks run at once (default: orchestration.max_parallel, 2).",
)
@project_option
@json_option
@handle_errors
def run_start(
    names: tuple[str, ...],
    day: str | None,
    start: str | None,
    end: str | None,
    max_parallel: int | None,
    session: Session,
    out: Output,
) -> None:
    """Run a PIPELINE (or DOMAINS; all by default) once for one data interval, recorded in the
    state database.

    Independent tasks run in parallel; transient errors are retried with backoff; a failed task's
    downstream tasks are skipped. Ctrl-C starts no new task and lets running ones finish (twice:
    abort). Exits 1 when a task failed, 130 when cancelled. `lagoa run show|retry RUN_ID` look
    back at a run.

    \b
    Examples:
      lagoa run start daily --date 2024-06-15
      lagoa run daily --start 2024-06-01 --end 2024-06-08 --max-parallel 4
      lagoa run orders --json
    """
    from lagoa.core.time import Interval, interval_of, parse_moment
    from lagoa.orchestrate.runs import RunOptions, default_interval

    project = session.project
    pipeline, _ = project.resolve(list(names))
    if day and (start or end):
        raise click.UsageError("give --date, or --start and --end, not both")
    if bool(start) != bool(end):
        raise click.UsageError("--start and --end go together")
    interval = None
    if day:
        interval = interval_of(day, project.unit(pipeline))
    elif start and end:
        interval = Interval(parse_moment(start), parse_moment(end))
        if interval.end <= interval.start:
            raise click.UsageError("--end must be after --start")
    interval = interval or default_interval(project.workspace, pipeline)
    if isinstance(out, HumanOutput):  # what the run is for, before its tasks start
        out.run_starting(pipeline, interval)
    with stop_on_signal() as cancel, out.run_events() as events:
        options = RunOptions(events=events, max_parallel=max_parallel, cancel=cancel)
        result = project.run(list(names), interval=interval, options=options)
    project.push_metrics(result.pipeline)
    _finish(result, out)


@run.command("show")
@click.argument("run_id")
@click.option("--logs", is_flag=True, help="Print each attempt's log too.")
@project_option
@json_option
@handle_errors
def run_show(run_id: str, logs: bool, session: Session, out: Output) -> None:
    """Show RUN_ID (the id or its short form, as `lagoa runs` shows it): its interval and state,
    and every task attempt with its duration, rows and error.

    \b
    Examples:
      lagoa run show 2e7d55
      lagoa run show 2e7d55 --logs
    """
    project = session.project
    run_id = project.resolve_run(run_id)
    found = project.state.run(run_id)
    if found is None:
        raise click.ClickException(f"no run {run_id}; `lagoa runs` lists them")
    out.run_details(run_id, found, logs)


@run.command("retry")
@click.argument("run_id")
@click.option(
    "--max-parallel",
    type=click.IntRange(1),
    help="Tasks run at once (default: orchestration.max_parallel, 2).",
)
@project_option
@json_option
@handle_errors
def run_retry(run_id: str, max_parallel: int | None, session: Session, out: Output) -> None:
    """Run RUN_ID's failed, skipped and cancelled tasks again, for the same interval; tasks that
    succeeded are not run again.

    \b
    Examples:
      lagoa run retry 2e7d55
      lagoa run retry 2e7d55 --max-parallel 4
    """
    from lagoa.core.time import Interval
    from lagoa.orchestrate.runs import RunOptions

    project = session.project
    run_id = project.resolve_run(run_id)
    found = project.state.run(run_id)
    if isinstance(out, HumanOutput) and found is not None and found.interval_start and found.interval_end:
        out.run_starting(found.pipeline, Interval(found.interval_start, found.interval_end))
    with stop_on_signal() as cancel, out.run_events() as events:
        options = RunOptions(events=events, max_parallel=max_parallel, cancel=cancel)
        result = project.retry(run_id, options)
    project.push_metrics(result.pipeline)
    _finish(result, out)


def _finish(result: RunResult[Interval], out: Output) -> None:
    out.run_result(result)
    if result.state == "cancelled":
        sys.exit(EXIT_CANCELLED)
    if not result.succeeded:
        sys.exit(1)


@project_command()
@click.option(
    "--state",
    type=click.Choice(["running", "succeeded", "failed", "cancelled"]),
    help="Only runs in this state.",
)
@click.option("--pipeline", help="Only runs of this pipeline.")
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1), help="Runs shown, newest first."
)
def runs(state: str | None, pipeline: str | None, limit: int, session: Session, out: Output) -> None:
    """List recent runs; `lagoa run show RUN_ID` shows one.

    \b
    Examples:
      lagoa runs
      lagoa runs --state failed --limit 10
      lagoa runs --pipeline daily --json
    """
    out.runs(session.project.state.runs(state=state, pipeline=pipeline, limit=limit))


@project_command()
@click.argument("names", nargs=-1)
@click.option("--start", required=True, help="First interval's start (UTC day or hour), inclusive.")
@click.option("--end", required=True, help="Last interval's end (UTC day or hour), exclusive.")
@click.option(
    "--concurrency", default=1, show_default=True, type=click.IntRange(1), help="Intervals run at once."
)
@click.option("--max-parallel", type=click.IntRange(1), help="Tasks run at once within each run.")
def backfill(
    names: tuple[str, ...],
    start: str,
    end: str,
    concurrency: int,
    max_parallel: int | None,
    session: Session,
    out: Output,
) -> None:
    """Run a PIPELINE (or DOMAINS; all by default) for every interval from --start to --end, oldest
    first, CONCURRENCY at a time. Each interval is a run of its own (see `lagoa runs`).

    \b
    Examples:
      lagoa backfill daily --start 2024-06-01 --end 2024-07-01
      lagoa backfill daily --start 2024-06-01 --end 2024-07-01 --concurrency 4
      lagoa backfill orders web --start 2024-06-01 --end 2024-06-08
    """
    from lagoa.core.time import parse_moment
    from lagoa.orchestrate.runs import RunOptions

    project = session.project
    pipeline, _ = project.resolve(list(names))
    if isinstance(out, HumanOutput):
        out.backfill_starting(pipeline, parse_moment(start), parse_moment(end), concurrency)
    with stop_on_signal() as cancel, out.run_events(every_task=False) as events:
        options = RunOptions(events=events, max_parallel=max_parallel, cancel=cancel)
        results = project.backfill(
            list(names),
            parse_moment(start),
            parse_moment(end),
            concurrency=concurrency,
            options=options,
            on_result=out.backfill_progress,
        )
    out.backfill(pipeline, results)
    if any(r.state == "cancelled" for r in results) or cancel.is_set():
        sys.exit(EXIT_CANCELLED)
    if any(not r.succeeded for r in results):
        sys.exit(1)


@main.command()
@click.option("--once", is_flag=True, help="Run what is due now, wait for it, and exit.")
@click.option(
    "--poll",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Seconds between checks at most.",
)
@project_option
@handle_errors
def scheduler(once: bool, poll: float, session: Session) -> None:
    """Run scheduled pipelines and domains when their cron ticks, until SIGTERM or Ctrl-C.

    A stop starts no new run or task and lets running tasks finish. Scheduled runs record their
    tick, so a restarted scheduler catches up (with `catchup: true`) or runs the latest tick.

    \b
    Examples:
      lagoa scheduler
      lagoa scheduler --once        # from cron: what is due now, then exit
      lagoa scheduler --poll 5 -p examples/retail_lakehouse
    """
    project = session.project
    out = HumanOutput()
    report = out.scheduler_report
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        report(f"{signal.Signals(signum).name}: stopping after the running tasks")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from lagoa.cli.live import RunLines

    lines = RunLines(live=False, say=report)  # each line with its time, as the scheduler's own
    runner = project.scheduler(stop=stop, events=lines.events, reporter=out.scheduler_reporter(), poll=poll)
    address = project.serve_metrics()
    if address is not None:
        report(f"metrics at http://{address[0]}:{address[1]}/metrics")
    if once:
        runner.run_once()
    else:
        for name, config in project.config.scheduled().items():
            report(f"{name}: `{config.schedule}`, {'catching up' if config.catchup else 'latest tick only'}")
        runner.serve()
    failed = [r for r in runner.results if not r.succeeded]
    report(f"stopped: {len(runner.results)} run(s), {len(failed)} not succeeded")
