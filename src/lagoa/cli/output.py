"""What the commands print: one method per kind of result, for people (:class:`HumanOutput`: rich
tables on stdout, progress and warnings on stderr) or for programs (:class:`JsonOutput`, ``--json``).

Most results are one table in both forms (records in JSON); :meth:`Output.table` is the only thing
the two forms do differently for them. Results of commands without ``--json`` (the starter project,
the task graph, the docs site, the scheduler's log) are :class:`HumanOutput`'s alone."""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lagoa.cli.formats import did, seconds_taken, span, took, when
from lagoa.core.report import SilentReporter

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID
    from rich.table import Table

    from lagoa.core.report import Reporter
    from lagoa.core.time import Interval
    from lagoa.deploy.terraform import TfvarsWritten
    from lagoa.lake import TableInfo
    from lagoa.lake.maintenance import ExpireResult, OptimizeResult
    from lagoa.orchestrate.executor import EventStream
    from lagoa.orchestrate.graph import Graph
    from lagoa.orchestrate.ingest import IngestSummary
    from lagoa.orchestrate.mwaa import MwaaDeploy
    from lagoa.orchestrate.observe.lineage import TableLineage
    from lagoa.orchestrate.runs import RunResult
    from lagoa.orchestrate.status import ProjectStatus
    from lagoa.publish.dataset import DatasetResult
    from lagoa.publish.gold import PublishResult
    from lagoa.quality.outcome import ValidationResult
    from lagoa.sources.cdc import FlushResult, Status
    from lagoa.state import RunRecord
    from lagoa.transform.runner import DbtRun
    from lagoa.transform.target_profile import ProfileWritten


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def rich_table(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, whole: Iterable[int] = ()
) -> Table:
    """A rich table whose title, headers and cells are shown as they are: values are plain text,
    never read as rich markup (a ``[/]`` in a value would raise, an ``[edited]`` would vanish).
    The columns at the indexes ``whole`` (ids, states, names) are never cut or wrapped: the others
    wrap to make room for them."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    cells = [[Text("" if v is None else str(v)) for v in row] for row in rows]
    # No vertical rules: a column costs its width and two spaces, so more fits in 80 columns.
    table = Table(title=Text(title) if title else None, title_justify="left", box=box.SIMPLE_HEAD)
    for i, column in enumerate(columns):
        if i in whole:
            widest = max([len(str(column)), *(c[i].cell_len for c in cells)])
            table.add_column(Text(str(column)), no_wrap=True, min_width=widest)
        else:
            table.add_column(Text(str(column)), overflow="fold")
    for row in cells:
        table.add_row(*row)
    return table


WHOLE = {"run", "task", "table", "pipeline", "state", "source", "model", "node", "target", "domain", "check"}
"""Columns a table for people never cuts nor wraps (names, ids and states): the others wrap."""


def on_terminal(text: str, indent: str) -> str:
    """``text`` for standard error: wrapped to the terminal's width when it is one, whole when
    piped (a log keeps its lines)."""
    if not sys.stderr.isatty():
        return text
    import shutil
    import textwrap

    width = shutil.get_terminal_size((80, 24)).columns
    return textwrap.fill(text, width, subsequent_indent=indent, break_on_hyphens=False)


def _wrapped(text: str, indent: str) -> None:
    """A line wrapped to the terminal's width (80 columns when piped)."""
    import shutil
    import textwrap

    width = shutil.get_terminal_size((80, 24)).columns
    click.echo(textwrap.fill(text, width=width, subsequent_indent=indent, break_on_hyphens=False))


def _above_progress(text: str, *, err: bool = False) -> None:
    """A line written while bars or a live view may be drawn: through ``sys.stdout`` (or
    ``sys.stderr``) as it is now, which rich replaces while it draws so that the line goes above
    them (click.echo would reach the terminal's buffer beneath rich, and break the drawing)."""
    print(text, file=sys.stderr if err else sys.stdout, flush=True)


def _from_here(path: Path) -> Path:
    """``path`` from the working folder when it is inside it: shorter, and what people type."""
    here = Path.cwd()
    return path.relative_to(here) if path.is_absolute() and path.is_relative_to(here) else path


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_ids(run_ids: Iterable[str]) -> dict[str, str]:
    """Each run's short id, or its whole id where two listed runs share one."""
    from lagoa.orchestrate.build import short_run_id

    ids = list(run_ids)
    shorts = [short_run_id(r) for r in ids]
    return {r: (s if shorts.count(s) == 1 else r) for r, s in zip(ids, shorts, strict=True)}


def _size(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    return f"{size / 1000:.1f} kB" if size < 1_000_000 else f"{size / 1_000_000:.1f} MB"


class Output(ABC):
    """The results of the ``lagoa`` commands, printed for people or as JSON."""

    @abstractmethod
    def table(self, title: str, columns: list[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Rows under a title: a table for people, a list of records in JSON."""

    @abstractmethod
    def message(self, text: str) -> None:
        """A line for people (nothing in JSON)."""

    def no_quality_results(self, run_id: str | None) -> None:
        """`lagoa quality report` found nothing (the same words in both forms)."""
        click.echo(
            "no validation results yet: run `lagoa ingest` or `lagoa validate`"
            if run_id is None
            else f"no results for run {run_id}"
        )

    # Results whose JSON is not a table.

    @abstractmethod
    def dbt_profile(self, result: ProfileWritten) -> None:
        """A distributed engine's dbt target written (`lagoa dbt profile`)."""

    @abstractmethod
    def ingest_progress(self) -> AbstractContextManager[Reporter | None]:
        """Where an ingest reports its progress while it runs (None: nowhere)."""

    @abstractmethod
    def ingest_summary(self, summary: IngestSummary) -> None: ...

    @abstractmethod
    def validations(self, results: list[ValidationResult]) -> None:
        """What `lagoa validate` found."""

    @abstractmethod
    def quality_report(self, run_id: str, results: list[ValidationResult], html: list[str] | None) -> None:
        """A run's stored validation results (``html``: the paths of its HTML reports instead)."""

    @abstractmethod
    def run_events(self, *, every_task: bool = True) -> AbstractContextManager[EventStream]:
        """The events of runs about to start, shown while they run (or not at all): each task's
        start and end, or with ``every_task`` false only failures, retries and warnings."""

    @abstractmethod
    def run_details(self, run_id: str, run: RunRecord, logs: bool) -> None:
        """One recorded run with its task attempts (``logs``: each attempt's log too)."""

    @abstractmethod
    def backfill_progress(self, result: RunResult[Interval]) -> None:
        """One interval of a backfill is done."""

    @abstractmethod
    def mwaa_deploy(self, result: MwaaDeploy) -> None:
        """What `lagoa deploy mwaa` changed in the bucket, and asked of the environment."""

    @abstractmethod
    def terraform_vars(self, result: TfvarsWritten) -> None:
        """The terraform.tfvars `lagoa deploy terraform` wrote, and what it derived."""

    @abstractmethod
    def cdc_status(self, source: str, status: Status, warning: str | None) -> None:
        """A CDC source's slot, lag and last applied LSN per table."""

    def copy_progress(self) -> AbstractContextManager[Reporter]:
        """Where a CDC source reports while it sets up, copies and applies."""
        return _bars()

    def lines(self, source: str, lines: list[str]) -> None:
        """What a CDC command did, a line each."""
        for line in lines:
            _above_progress(f"{source}: {line}")

    def flushed(self, source: str, result: FlushResult, warning: str | None) -> None:
        """One flush of ``lagoa cdc run``: the transactions applied, per table."""
        from lagoa.sources.cdc import format_lsn

        tables = ", ".join(f"{t} {n:,}" for t, n in sorted(result.tables.items())) or "no table changes"
        at = f" up to {format_lsn(result.lsn)}" if result.lsn else ""
        _above_progress(f"{source}: {result.transactions:,} transaction(s): {tables}{at}")
        if warning:
            click.secho(f"warning: {warning}", fg="yellow", err=True)

    # Results that are one table in both forms.

    def lineage(self, result: TableLineage, *, upstream: bool, columns: bool) -> None:
        if columns:
            self.table(
                f"columns of {result.table}",
                ["column", "from table", "from column"],
                [(c, t, f) for c, inputs in sorted(result.columns.items()) for t, f in inputs],
            )
            return
        self.table(
            f"{'upstream' if upstream else 'downstream'} of {result.table}",
            ["from", "job", "to"],
            list(result.edges),
        )

    def tables(self, infos: list[TableInfo]) -> None:
        self.table(
            "tables",
            ["table", "rows", "files", "snapshots"],
            [(t.identifier, t.rows, t.files, t.snapshots) for t in infos],
        )

    def query_rows(self, columns: list[str], rows: list[tuple[Any, ...]], more: int = 0) -> None:
        """A query's rows (``more``: how many rows follow those shown)."""
        self.table("", columns, rows)

    def doctor(self, checks: list[tuple[str, bool, str]]) -> None:
        self.table(
            "doctor", ["check", "ok", "detail"], [(n, "yes" if ok else "NO", d) for n, ok, d in checks]
        )

    def dbt_build(self, run: DbtRun) -> None:
        self.table(
            "dbt build",
            ["node", "kind", "status", "seconds"],
            [(n.name, n.kind, n.status, round(n.seconds, 2)) for n in run.nodes],
        )

    def published(self, results: list[PublishResult | DatasetResult]) -> None:
        from lagoa.publish.gold import PublishResult

        self.table(
            "publish",
            ["target", "rows written", "partitions rewritten", "files removed", "files added", "skipped"],
            [
                (r.table, r.rows, r.partitions, r.removed_files, r.added_files, r.skipped)
                if isinstance(r, PublishResult)
                else (r.location, r.rows, "all", "previous version", r.files, r.skipped)
                for r in results
            ],
        )

    def optimized(self, result: OptimizeResult) -> None:
        self.table(
            "optimize",
            ["table", "files before", "files after", "rows"],
            [(result.table, result.files_before, result.files_after, result.rows)],
        )

    def expired(self, result: ExpireResult) -> None:
        self.table(
            "expire",
            ["table", "snapshots expired", "snapshots kept", "files deleted"],
            [(result.table, result.expired_snapshots, result.kept_snapshots, result.deleted_files)],
        )

    def run_result(self, result: RunResult[Interval]) -> None:
        """A run that just ended: its interval, state and every task's outcome."""
        self.message(f"{result.pipeline}, interval {result.interval}")
        self.table(
            f"run {result.run_id}: {result.state}",
            ["task", "state", "attempts", "rows", "summary", "error"],
            [(o.task, o.state, o.attempts, o.rows, o.summary, o.error) for o in result.outcomes.values()],
        )

    def runs(self, rows: list[RunRecord]) -> None:
        self.table(
            "runs",
            ["run", "pipeline", "state", "interval start", "interval end", "started", "took", "error"],
            [
                (
                    r.run_id,
                    r.pipeline,
                    r.state,
                    r.interval_start,
                    r.interval_end,
                    r.started_at,
                    seconds_taken(r.seconds),
                    r.error,
                )
                for r in rows
            ],
        )

    def backfill(self, pipeline: str, results: list[RunResult[Interval]]) -> None:
        self.table(
            f"backfill of {pipeline}",
            ["interval start", "interval end", "run", "state", "rows"],
            [
                (
                    r.interval and r.interval.start,
                    r.interval and r.interval.end,
                    r.run_id,
                    r.state,
                    sum(o.rows or 0 for o in r.outcomes.values()),
                )
                for r in results
            ],
        )

    @abstractmethod
    def status(self, result: ProjectStatus) -> None:
        """`lagoa status`: every pipeline and domain, and what makes it exit 1."""


class HumanOutput(Output):
    """Rich tables and plain lines on stdout; progress, events and warnings on stderr."""

    def table(self, title: str, columns: list[str], rows: Sequence[tuple[Any, ...]]) -> None:
        from rich.console import Console

        whole = [i for i, c in enumerate(columns) if str(c).split(" ")[0] in WHOLE]
        Console().print(rich_table(title, columns, rows, whole=whole))

    def message(self, text: str) -> None:
        click.echo(text)

    def warning(self, text: str) -> None:
        click.secho(f"warning: {text}", fg="yellow", err=True)

    def runs(self, rows: list[RunRecord]) -> None:
        from rich.console import Console

        short = short_ids(r.run_id for r in rows)
        listed = [
            (
                short[r.run_id],
                r.pipeline,
                r.state,
                span(r.interval_start, r.interval_end),
                when(r.started_at),
                seconds_taken(r.seconds),
            )
            for r in rows
        ]
        columns = ["run", "pipeline", "state", "interval", "started", "took"]
        Console().print(rich_table("runs (times in UTC)", columns, listed, whole=range(6)))
        for r in rows:
            if r.error:
                _wrapped(f"{short[r.run_id]}: {_cut(r.error.splitlines()[0], 300)}", "    ")
        if rows:
            click.echo(f"`lagoa run show {listed[0][0]}` shows a run's tasks")

    def lineage(self, result: TableLineage, *, upstream: bool, columns: bool) -> None:
        super().lineage(result, upstream=upstream, columns=columns)
        if not result.events:
            _wrapped(
                "no lineage events are kept yet: turn lineage on with `observe.lineage` in lagoa.yml "
                "(docs/lineage.md); the runs after that keep theirs",
                "  ",
            )
        elif not (result.columns if columns else result.edges):
            click.echo(f"{result.table} is in none of the {result.events:,} kept events' jobs")

    def backfill_starting(self, pipeline: str, start: datetime, end: datetime, concurrency: int) -> None:
        """What a backfill is for, said before its first run starts."""
        at_once = f", {concurrency} at a time" if concurrency > 1 else ""
        click.echo(f"backfill of {pipeline}, {span(start, end)} (UTC){at_once}", err=True)

    def backfill(self, pipeline: str, results: list[RunResult[Interval]]) -> None:
        """A line per interval: its run (short id, whole where two share one), state and rows."""
        from rich.console import Console

        short = short_ids(r.run_id for r in results)

        def rows_of(result: RunResult[Interval], step: str) -> int:
            return sum(o.rows or 0 for o in result.outcomes.values() if o.task.startswith(f"{step}_"))

        listed = [
            (
                span(*r.interval.pair),
                short[r.run_id],
                r.state,
                f"{rows_of(r, 'ingest'):,}",
                f"{rows_of(r, 'publish'):,}",
            )
            for r in results
        ]
        columns = ["interval", "run", "state", "rows in", "rows to gold"]
        Console().print(rich_table(f"backfill of {pipeline} (UTC)", columns, listed, whole=range(3)))
        if results:
            click.echo(f"`lagoa run show {listed[0][1]}` shows a run's tasks")

    def query_rows(self, columns: list[str], rows: list[tuple[Any, ...]], more: int = 0) -> None:
        """A table, or one record after another when the table is wider than the terminal (as
        psql's ``\\x auto``); then how many rows were left out."""
        import shutil

        width = shutil.get_terminal_size((80, 24)).columns
        cells = [["NULL" if v is None else str(v) for v in row] for row in rows]
        widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
        if columns and sum(w + 3 for w in widths) + 1 > width:
            label = max(len(c) for c in columns)
            for number, row in enumerate(cells, 1):
                click.echo(f"-[ row {number} ]".ljust(min(width, label + 20), "-"))
                for column, value in zip(columns, row, strict=True):
                    _wrapped(f"{column.ljust(label)} | {value}", " " * (label + 3))
        else:
            self.table("", columns, rows)
        if more:
            click.echo(
                f"… {more:,} more row{'s' if more != 1 else ''} (--limit N shows more, --csv or --json all)"
            )

    @contextmanager
    def ingest_progress(self) -> Iterator[Reporter | None]:
        if not sys.stderr.isatty():
            yield None
            return
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            TimeElapsedColumn(),
            transient=True,
        ) as progress:
            yield _Spinners(progress)

    def ingest_summary(self, summary: IngestSummary) -> None:
        self.table(
            f"ingest {summary.run_id}",
            [
                "source",
                "files",
                "skipped",
                "bronze rows",
                "merged",
                "quarantined",
                "failed checks",
                "silver total",
            ],
            [
                (
                    s.source,
                    s.files,
                    len(s.skipped_files),
                    s.bronze_rows,
                    s.silver_rows,
                    s.quarantined,
                    s.failed_checks,
                    s.silver_total,
                )
                for s in summary.sources
            ],
        )
        for warning in summary.warnings:
            self.warning(warning)

    def validations(self, results: list[ValidationResult]) -> None:
        for result in results:
            self._suite_result(result)
        if not results:
            click.echo("no table with a suite to validate")

    def quality_report(self, run_id: str, results: list[ValidationResult], html: list[str] | None) -> None:
        if html is not None:
            for path in html:
                click.echo(path)
            return
        click.echo(f"run {run_id}")
        for result in results:
            self._suite_result(result)

    def _suite_result(self, result: ValidationResult) -> None:
        from lagoa.quality.results import summary_line

        stats = result.statistics
        rows = [
            (
                item.expectation.index,
                "passed" if item.success else "FAILED",
                item.action,
                item.expectation.label,
                summary_line(item),
            )
            for item in result.results
        ]
        title = (
            f"{result.suite} on {result.table} ({result.rows} rows): "
            f"{stats.successful_expectations}/{stats.evaluated_expectations} passed"
        )
        self.table(title, ["#", "result", "on fail", "expectation", "observed"], rows)

    def dbt_build(self, run: DbtRun) -> None:
        """One line per model and test, as `lagoa run` prints tasks, then what was built."""
        from lagoa.orchestrate.tasks import built

        for n in run.nodes:
            colour = "green" if n.status in ("success", "pass") else "yellow" if n.status == "warn" else "red"
            state = click.style(f"{n.status:>7}", fg=colour)
            click.echo(f"{state}  {n.kind:<8} {n.seconds:6.2f}s  {n.name}")
            if n.message and n.status not in ("success", "pass"):
                _wrapped(f"         {n.message}", " " * 9)
        click.echo(built(run.nodes))

    def run_result(self, result: RunResult[Interval]) -> None:
        """A run that just ended: its state and what every task did. Its interval was said before
        it started, and each error in full as it happened: the table gives an error's first line."""
        self.table(
            f"run {result.run_id}: {result.state}",
            ["task", "state", "tries", "what it did", "error"],
            [
                (o.task, o.state, o.attempts, did(o.summary, o.rows), (o.error or "").partition("\n")[0])
                for o in result.outcomes.values()
            ],
        )

    def run_starting(self, pipeline: str, interval: Interval) -> None:
        """What a run is for, said before its tasks start."""
        click.echo(f"{pipeline}, interval {span(*interval.pair)} (UTC)", err=True)

    def run_events(self, *, every_task: bool = True) -> AbstractContextManager[EventStream]:
        from lagoa.cli.live import RunLines

        return RunLines(every_task=every_task)

    def run_details(self, run_id: str, run: RunRecord, logs: bool) -> None:
        click.echo(f"run {run_id}: {run.pipeline}, {run.state}")
        if run.interval_start is not None:
            click.echo(f"  interval  {span(run.interval_start, run.interval_end)} (UTC)")
        click.echo(f"  started   {when(run.started_at)} UTC, took {seconds_taken(run.seconds)}")
        if run.error:
            _wrapped(f"  error     {run.error}", " " * 12)
        self.table(
            "",
            ["task", "attempt", "state", "started", "took", "what it did", "error"],
            [
                (
                    a.task,
                    a.attempt or "-",
                    a.state,
                    a.started_at.strftime("%H:%M:%S") if a.attempt else "",
                    took(a.started_at, a.ended_at) if a.attempt else "",
                    did(a.summary, a.rows_out),
                    a.error,
                )
                for a in run.attempts
            ],
        )
        if logs:
            for a in run.attempts:
                if a.log:
                    click.echo(f"\n--- {a.task} attempt {a.attempt} ---\n{a.log}")

    def backfill_progress(self, result: RunResult[Interval]) -> None:
        from lagoa.orchestrate.build import short_run_id

        line = f"{span(*result.interval.pair)}  {result.state:<9}  run {short_run_id(result.run_id)}"
        _above_progress(line, err=True)

    def cdc_status(self, source: str, status: Status, warning: str | None) -> None:
        from lagoa.sources.cdc import format_lsn

        def lsn(value: int | None) -> str:
            return format_lsn(value) if value is not None else "-"

        slot = [
            ("slot", status.slot if status.exists else f"{status.slot} (missing: run `lagoa cdc setup`)"),
            ("publication", status.publication),
            ("in use by pid", status.active_pid or "-"),
            ("confirmed LSN", lsn(status.confirmed_lsn)),
            ("server LSN", lsn(status.current_lsn)),
            ("lag", f"{status.lag_bytes:,} bytes, {status.lag_seconds:.1f} s"),
            ("retained WAL", f"{status.retained_wal_bytes / 2**20:,.1f} MB ({status.wal_status or '-'})"),
        ]
        self.table(f"cdc {source}", ["", ""], slot)
        self.table(
            "last applied LSN per table",
            ["table", "bronze change log", "silver mirror"],
            [(t.table, lsn(t.bronze_lsn), lsn(t.silver_lsn)) for t in status.tables],
        )
        if warning:
            self.warning(warning)

    # Results of the commands without --json.

    def mwaa_deploy(self, result: MwaaDeploy) -> None:
        where = f"s3://{result.bucket}/{result.prefix.strip('/')}".rstrip("/")
        click.echo(f"{where} for MWAA with Airflow {result.airflow} (the same files: {result.folder})")
        marks = {"added": "+", "changed": "~", "removed": "-"}
        for change in result.changes:
            if change.kind in marks:
                size = f"  ({_size(change.size)})" if change.kind != "removed" else ""
                click.echo(f"  {marks[change.kind]} {change.key}{size}")
        counts = {kind: sum(c.kind == kind for c in result.changes) for kind in (*marks, "unchanged")}
        done = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        click.echo(f"{done}{'' if result.uploaded else ' (dry run: nothing uploaded)'}")
        for note in result.notes:
            self.warning(note)
        if result.environment is None or not result.uploaded:
            return
        if result.update is None:
            click.echo(
                f"environment {result.environment} already uses these plugins, requirements and "
                "startup script: no update needed (MWAA syncs dags/ by itself)"
            )
        else:
            click.echo(
                f"asked MWAA to update {result.environment} ({result.environment_arn}); "
                "it restarts Airflow with the new files"
            )

    def terraform_vars(self, result: TfvarsWritten) -> None:
        click.echo(f"wrote {_from_here(result.path)}")
        if result.secret_names:
            _wrapped(f"Secrets Manager entries (names only): {', '.join(result.secret_names)}", "  ")
        for note in result.notes:
            _wrapped(f"note: {note}", "  ")
        folder = _from_here(result.path.parent)
        # Terraform reads terraform.tfvars of the folder it runs in by itself; another file by name.
        plan = "plan" if result.path.name == "terraform.tfvars" else f"plan -var-file={result.path.name}"
        click.echo(f"next:\n  terraform -chdir={folder} init\n  terraform -chdir={folder} {plan}")

    def scaffolded(self, directory: str, written: list[Path]) -> None:
        self._wrote(directory, written, "lagoa query 'select * from gold.daily_sales'")

    def attached(self, directory: str, written: list[Path]) -> None:
        self._wrote(directory, written, "lagoa tables")

    def _wrote(self, directory: str, written: list[Path], then: str) -> None:
        """The files written into ``directory`` (named within it), and the commands to run next."""
        click.echo(f"wrote into {directory}:")
        for path in written:
            click.echo(f"  {path.relative_to(directory) if path.is_relative_to(directory) else path}")
        click.echo(f"\nnext:\n  cd {directory}\n  lagoa run daily\n  {then}")

    def graph(self, tasks: Graph, dot: bool) -> None:
        """The tasks in order, each with those it waits for (``← a, b``): on the next line, wrapped,
        when they do not fit beside it."""
        import shutil
        import textwrap

        if dot:
            click.echo(tasks.dot())
            return
        width = shutil.get_terminal_size((80, 24)).columns
        for line in tasks.text().splitlines():
            name, arrow, upstream = line.partition("  ← ")
            if len(line) <= width or not arrow:
                click.echo(line)
            else:
                click.echo(name)
                click.echo(
                    textwrap.fill(f"← {upstream}", width, initial_indent="    ", subsequent_indent="      ")
                )

    def wrote(self, path: Path) -> None:
        click.echo(f"wrote {_from_here(path)}")

    def suite_written(self, path: Path, suite: dict[str, Any], identifier: str) -> None:
        count = len(suite["expectations"])
        _wrapped(
            f"wrote {_from_here(path)} ({count} expectations); review it, then `lagoa validate {identifier}`",
            "  ",
        )

    def docs_published(self, folder: str) -> None:
        shown = folder if "://" in folder else str(_from_here(Path(folder)))
        _wrapped(f"published the docs site to {shown}; `lagoa docs serve` opens it", "  ")

    def dbt_profile(self, result: ProfileWritten) -> None:
        default = " (the profile's default target)" if result.default else ""
        _wrapped(
            f"wrote target `{result.target}` of profile `{result.profile}` to {_from_here(result.path)}{default}",
            "  ",
        )
        click.echo(f"needs the adapter where dbt runs: pip install {result.package}")
        if result.env:
            click.echo(f"reads the environment variables {', '.join(result.env)}")
        for note in result.notes:
            click.echo(f"note: {note}")
        click.echo(f"run: {result.command}")

    def docs_serving(self, port: int) -> None:
        click.echo(f"serving the docs at http://127.0.0.1:{port}/ (Ctrl-C stops)")

    def scheduler_report(self, text: str) -> None:
        """A line of the scheduler's log, with the time; on a terminal wrapped to its width."""
        click.echo(on_terminal(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}  {text}", " " * 23), err=True)

    def scheduler_reporter(self) -> Reporter:
        """The scheduler's lines, each with the time: ``pipeline: message``."""
        return _SchedulerLines(self)

    def status(self, result: ProjectStatus) -> None:
        """A block per pipeline, at most 80 columns wide (narrower on a narrower terminal), ids
        never cut; coloured only on a terminal (click drops the colours otherwise)."""
        import shutil
        import textwrap

        from lagoa.orchestrate.status import CdcLag, duration

        width = min(80, shutil.get_terminal_size((80, 24)).columns)
        label_width = 12

        def at(moment: datetime | None) -> str:
            return "-" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"

        def show(label: str, text: str, colour: str | None = None) -> None:
            lines = textwrap.wrap(
                text, max(20, width - 2 - label_width), break_long_words=False, break_on_hyphens=False
            )
            for index, line in enumerate(lines or [""]):
                head = f"  {label:<{label_width}}" if index == 0 else " " * (2 + label_width)
                if len(head) + len(line) > width:  # a name or id too long to follow the label
                    if label and index == 0:
                        click.echo(f"  {label}")
                    head = "  "
                click.echo(head + (click.style(line, fg=colour) if colour else line))

        def lag_text(lag: CdcLag | None, source: str) -> tuple[str, str | None]:
            if lag is None:
                return f"{source}: not checked", None
            if lag.error is not None:
                return f"{source}: {lag.error}", "red"
            wal = (lag.retained_wal_bytes or 0) / 2**20
            bound = (lag.retained_bound_bytes or 0) / 2**20
            text = f"{source}: lag {lag.lag_bytes or 0:,} bytes, {lag.lag_seconds or 0:.1f} s; WAL kept {wal:,.1f} of {bound:,.0f} MB"
            return text, "red" if lag.problem else "green"

        lags = {lag.source: lag for lag in result.cdc}
        problems = result.problems
        verdict = "all fresh and passing" if not problems else f"{len(problems)} problem(s)"
        click.echo(
            click.style(f"{result.project} at {at(result.at)}: ", bold=True)
            + click.style(verdict, fg="green" if not problems else "red", bold=True)
        )
        states = {"succeeded": "green", "failed": "red", "running": "cyan", "cancelled": "yellow"}
        idle = [p.name for p in result.pipelines if p.last_run is None and p.schedule is None and not p.cdc]
        for p in result.pipelines:
            if p.name in idle:  # nothing to show but its name: listed together at the end
                continue
            run = p.last_run
            failed = run is not None and run.state == "failed"
            verdict = ", ".join(
                word for word, bad in (("failed", failed), ("stale", p.freshness.state == "stale")) if bad
            )
            click.echo(f"\n{click.style(p.name, bold=True)}")
            show("state", verdict or "ok", "red" if verdict else "green")
            if p.kind == "pipeline":
                show("pipeline", f"of {', '.join(p.domains)}")
            elif p.kind == "runs":
                show("runs", "recorded under this name, not in lagoa.yml")
            if run is None:
                show("last run", "none yet", "yellow" if p.schedule else None)
            else:
                took = f", took {duration(run.seconds)}" if run.seconds is not None else ""
                show("last run", f"{run.run_id} {run.state}", states.get(run.state))
                show("", f"started {at(run.started_at)}{took}")
                if failed and run.error:
                    first = run.error.splitlines()[0]
                    show(
                        "", textwrap.shorten(first, max(20, 2 * (width - 2 - label_width)), placeholder=" …")
                    )
            if p.schedule is None:
                show("next run", "not scheduled")
            else:
                wait = duration((p.next_run - result.at).total_seconds()) if p.next_run else "-"
                show("next run", f"{at(p.next_run)} (in {wait}), `{p.schedule}`")
            fresh = p.freshness
            if fresh.state == "fresh" and fresh.stale_after is not None:
                show(
                    "freshness",
                    f"fresh: data up to {at(fresh.data_until)}, stale after {at(fresh.stale_after)}",
                    "green",
                )
            elif fresh.state == "stale":
                text = (
                    "stale: never succeeded"
                    if fresh.data_until is None
                    else (f"stale by {duration(fresh.stale_seconds or 0)}: data up to {at(fresh.data_until)}")
                )
                show("freshness", f"{text} (allowed {duration(fresh.allowed_seconds or 0)} old)", "red")
            elif fresh.state == "pending":
                show("freshness", f"pending: first interval due by {at(fresh.stale_after)}")
            elif fresh.data_until is not None:
                show("freshness", f"not scheduled; data up to {at(fresh.data_until)}")
            if p.quality is not None:
                rate = p.quality.rate
                shown = f" ({rate:.0%})" if rate is not None else ""
                colour = "green" if rate == 1 else ("yellow" if rate is not None else None)
                show(
                    "quality", f"{p.quality.passed}/{p.quality.evaluated} expectations passed{shown}", colour
                )
            if p.quarantine:
                trend = " → ".join(f"{q.rows:,}" for q in p.quarantine)
                if len(p.quarantine) == 1:
                    rows = p.quarantine[0].rows
                    show("quarantine", f"{rows:,} row{'s' * (rows != 1)} in the last run")
                else:
                    show("quarantine", f"{trend} rows, last {len(p.quarantine)} runs, oldest first")
            for source in p.cdc:
                show("cdc", *lag_text(lags.get(source), source))
        if idle:
            click.echo("")
            show("idle", f"not scheduled, no runs yet: {', '.join(idle)}")
        attached = {s for p in result.pipelines for s in p.cdc}
        others = [lag for lag in result.cdc if lag.source not in attached]
        if others:
            click.echo(f"\n{click.style('cdc sources of no domain', bold=True)}")
            for lag in others:
                show("cdc", *lag_text(lag, lag.source))
        if problems:
            click.echo("")
            for problem in problems:
                for index, line in enumerate(
                    textwrap.wrap(problem, width - 2, break_long_words=False, break_on_hyphens=False)
                ):
                    click.echo(click.style(("- " if index == 0 else "  ") + line, fg="red"))


class _SchedulerLines(SilentReporter):
    """The scheduler's lines; rows are not reported."""

    def __init__(self, out: HumanOutput) -> None:
        self.out = out

    def stage(self, item: str, message: str) -> None:
        self.out.scheduler_report(f"{item}: {message}" if item else message)


class _Spinners(SilentReporter):
    """A spinner per source, showing the stage it is at."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self.lock = threading.Lock()

    def stage(self, item: str, message: str) -> None:
        with self.lock:
            if item not in self.tasks:
                self.tasks[item] = self.progress.add_task(item, total=None)
            self.progress.update(self.tasks[item], description=f"{item}: {message}")


class _Bars:
    """Report lines printed above a progress bar per table being copied."""

    def __init__(self, bars: Progress) -> None:
        self.bars = bars
        self.tasks: dict[str, TaskID] = {}
        self.lock = threading.Lock()

    def stage(self, item: str, message: str) -> None:
        self.bars.console.print(f"{item}: {message}", highlight=False, markup=False)

    def rows(self, item: str, done: int, total: int | None) -> None:
        with self.lock:
            if item not in self.tasks:
                self.bars.start()
                self.tasks[item] = self.bars.add_task(f"copying {item}", total=total)
            self.bars.update(self.tasks[item], completed=done)


@contextmanager
def _bars() -> Iterator[Reporter]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bars = Progress(
        TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        transient=True,
    )  # fmt: skip
    try:
        yield _Bars(bars)
    finally:
        bars.stop()


class CsvOutput(HumanOutput):
    """``lagoa query --csv``: the rows as CSV on stdout."""

    def query_rows(self, columns: list[str], rows: list[tuple[Any, ...]], more: int = 0) -> None:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)


class JsonOutput(Output):
    """JSON on stdout, nothing else: no progress, no events, no lines for people."""

    def _dump(self, data: Any, **options: Any) -> None:
        click.echo(json.dumps(data, indent=2, **options))

    def table(self, title: str, columns: list[str], rows: Sequence[tuple[Any, ...]]) -> None:
        self._dump([{c: _jsonable(v) for c, v in zip(columns, row, strict=True)} for row in rows])

    def message(self, text: str) -> None:
        pass

    def ingest_progress(self) -> AbstractContextManager[Reporter | None]:
        return nullcontext()

    def ingest_summary(self, summary: IngestSummary) -> None:
        self._dump(
            {
                "run_id": summary.run_id,
                "sources": [
                    {
                        **dataclasses.asdict(s),
                        "validations": [
                            {
                                "suite": v.suite,
                                "table": v.table,
                                "expectations": len(v.results),
                                "passed": sum(r.success for r in v.results),
                                "failed": {
                                    action: [r.expectation.label for r in v.failed(action)]
                                    for action in ("warn", "drop", "fail")
                                },
                            }
                            for v in s.validations
                        ],
                    }
                    for s in summary.sources
                ],
                "warnings": summary.warnings,
            }
        )

    def validations(self, results: list[ValidationResult]) -> None:
        from lagoa.quality.outcome import ge_document

        self._dump([ge_document(r) for r in results], default=str)

    def quality_report(self, run_id: str, results: list[ValidationResult], html: list[str] | None) -> None:
        from lagoa.quality.outcome import ge_document

        self._dump([ge_document(r) for r in results])

    def run_events(self, *, every_task: bool = True) -> AbstractContextManager[EventStream]:
        from lagoa.orchestrate.executor import EventStream

        return nullcontext(EventStream())

    def run_details(self, run_id: str, run: RunRecord, logs: bool) -> None:
        self._dump(run.as_dict(), default=str)

    def backfill_progress(self, result: RunResult[Interval]) -> None:
        pass

    def cdc_status(self, source: str, status: Status, warning: str | None) -> None:
        self._dump({**dataclasses.asdict(status), "warning": warning}, default=str)

    def mwaa_deploy(self, result: MwaaDeploy) -> None:
        self._dump(dataclasses.asdict(result), default=str)

    def terraform_vars(self, result: TfvarsWritten) -> None:
        self._dump(dataclasses.asdict(result), default=str)

    def dbt_profile(self, result: ProfileWritten) -> None:
        self._dump(dataclasses.asdict(result), default=str)

    def status(self, result: ProjectStatus) -> None:
        self._dump(result.as_dict())
