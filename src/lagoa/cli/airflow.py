"""``lagoa airflow export|task|notify|sla-check``: the project's pipelines as Airflow DAGs, and
the commands those DAGs run in Lagoa's own environment."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lagoa.cli.app import Session, handle_errors, main, project_option
from lagoa.cli.output import HumanOutput

if TYPE_CHECKING:
    from lagoa.orchestrate.external import SchedulerRun

EXIT_TERMINAL = 3
"""A task failed for a reason a retry cannot fix (the DAG's operator fails it without retrying)."""


@main.group()
def airflow() -> None:
    """Run the project's pipelines on Apache Airflow (3.x, or 2.11 as on MWAA).

    \b
    lagoa airflow export [--out dags/] [--per pipeline|domain] [--airflow 3|2]
        write a DAG file per pipeline (or domain), and the module they import
    lagoa airflow standalone [--port 8080]
        a local Airflow (no Docker) with the project's DAGs, UI on localhost
    lagoa airflow task PIPELINE TASK ...
        what each DAG task runs, in Lagoa's environment (LAGOA_PYTHON)

    Set LAGOA_PYTHON in Airflow's environment to the python that runs Lagoa.

    \b
    Examples:
      lagoa airflow export --out ~/airflow/dags
      lagoa airflow export --per domain --airflow 2
      lagoa airflow standalone --port 8081
    """


@airflow.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the DAG files (default: dags/ in the project).",
)
@click.option(
    "--per",
    type=click.Choice(["pipeline", "domain"]),
    default="pipeline",
    show_default=True,
    help="A DAG per pipeline, or per domain (cross-domain waits become assets).",
)
@click.option(
    "--airflow",
    "version",
    type=click.Choice(["3", "2"]),
    default="3",
    show_default=True,
    help="Airflow 3.x, or Airflow 2.11 (MWAA's newest 2.x).",
)
@project_option
@handle_errors
def export(out: str | None, per: str, version: str, session: Session) -> None:
    """Write the project's pipelines as Airflow DAG files.

    \b
    Examples:
      lagoa airflow export --out ~/airflow/dags
      lagoa airflow export --per domain --airflow 2 -p examples/retail_lakehouse
    """
    project = session.project
    folder = Path(out) if out else project.root / "dags"
    try:
        written = project.airflow_export(folder, version=version, per=per)  # type: ignore[arg-type]
    except OSError as exc:
        raise click.ClickException(
            f"cannot write DAG files into {str(folder)[:200]}: {exc.strerror}"
        ) from None
    shown = HumanOutput()
    for path in written:
        shown.wrote(path)
    click.echo(
        f"{len(written) - 1} DAG(s) for Airflow {'3' if version == '3' else '2.11'}; in Airflow's environment"
    )
    click.echo(f"  set LAGOA_PYTHON={sys.executable}")


@airflow.command()
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="The UI's port.")
@project_option
@handle_errors
def standalone(port: int, session: Session) -> None:
    """Start a local Airflow with the project's DAGs: its own environment under .lagoa/airflow
    (built on first use from Lagoa's lock, about a minute), SQLite metadata, the UI on localhost.
    Stop it with Ctrl-C.

    \b
    Examples:
      lagoa airflow standalone
      lagoa airflow standalone --port 8081 -p examples/retail_lakehouse
    """
    import signal

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # stop Airflow too, as Ctrl-C does
    click.echo("preparing Airflow's environment (built once, under .lagoa/airflow/venv) ...")
    bin_dir, env = session.project.airflow_home(port=port)
    home = Path(env["AIRFLOW_HOME"])
    passwords = home / "simple_auth_manager_passwords.json.generated"
    # Its own process group: Airflow's scheduler, API server and log servers stop with it.
    process = subprocess.Popen(
        [str(bin_dir / "airflow"), "standalone"], env=env, stdout=subprocess.DEVNULL, start_new_session=True
    )
    click.echo(f"Airflow is starting: http://127.0.0.1:{port} (logs in {home / 'logs'})")
    try:
        while process.poll() is None and not passwords.is_file():
            time.sleep(1)
        if passwords.is_file():
            import json

            time.sleep(0.5)  # written at once, but not atomically
            for user, password in json.loads(passwords.read_text() or "{}").items():
                click.echo(f"log in as {user} / {password} (kept in {passwords})")
        process.wait()
    except KeyboardInterrupt:
        _stop_group(process)
    if process.returncode not in (0, -15, None):
        raise click.ClickException(f"airflow standalone exited with {process.returncode}")


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the whole group, then SIGKILL to whatever is left after a minute."""
    import os
    import signal

    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sent)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=60)
            os.killpg(process.pid, 0)  # the leader is gone; are the others?
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue
        time.sleep(2)


def _run(dag_id: str, run_id: str) -> SchedulerRun:
    from lagoa.orchestrate.external import SchedulerRun

    return SchedulerRun("airflow", dag_id, run_id)


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date-time", param_hint="--interval-end") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_dag_id = click.option("--dag-id", required=True, help="The Airflow DAG's id.")
_run_id = click.option("--run-id", required=True, help="The Airflow DAG run's id.")
_end = click.option("--interval-end", "end", required=True, help="The run's data_interval_end (ISO 8601).")


@airflow.command(hidden=True)
@click.argument("pipeline")
@click.argument("task")
@_dag_id
@_run_id
@_end
@click.option("--final", is_flag=True, help="Airflow will not retry this attempt.")
@project_option
def task(pipeline: str, task: str, dag_id: str, run_id: str, end: str, final: bool, session: Session) -> None:
    """Run one task of PIPELINE for an Airflow run (what the exported DAGs call). Exit code 0
    when it succeeded, 1 when a retry may succeed, 3 when it cannot.

    \b
    Examples:
      lagoa airflow task daily ingest_orders --dag-id retail_lakehouse.daily \\
        --run-id manual__2026-11-22 --interval-end 2026-11-22T00:00:00+00:00
    """
    from lagoa.core.errors import LagoaError

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger("lagoa").addHandler(handler)
    try:
        project = session.project
        result = project.airflow_task(
            pipeline, task, run=_run(dag_id, run_id), interval_end=_moment(end), final=final
        )
    except LagoaError as exc:
        click.echo(f"error: {session.redact(str(exc))}", err=True)
        sys.exit(1 if exc.transient else EXIT_TERMINAL)
    interval = f"{result.interval.start:%Y-%m-%d %H:%M} → {result.interval.end:%Y-%m-%d %H:%M} UTC"
    outcome = result.outcome
    if outcome.state == "succeeded":
        click.echo(f"{task} succeeded ({outcome.rows or 0} rows) for {interval}; Lagoa run {result.run_id}")
        return
    click.echo(f"error: {task} {outcome.state} for {interval}: {outcome.error}", err=True)
    sys.exit(1 if result.retryable else EXIT_TERMINAL)


@airflow.command(hidden=True)
@click.argument("pipeline")
@click.argument("event", type=click.Choice(["failure", "retry", "success"]))
@_dag_id
@_run_id
@click.option("--task", default=None, help="The task the event is about (none: the whole run).")
@click.option("--try", "attempt", type=click.IntRange(min=0), default=0, help="Its attempt number.")
@click.option("--error", default=None, help="What went wrong.")
@project_option
@handle_errors
def notify(
    pipeline: str,
    event: str,
    dag_id: str,
    run_id: str,
    task: str | None,
    attempt: int,
    error: str | None,
    session: Session,
) -> None:
    """Send an Airflow callback's EVENT through the project's notifiers.

    \b
    Examples:
      lagoa airflow notify daily failure --task ingest_orders --try 2 \\
        --dag-id retail_lakehouse.daily --run-id manual__2026-11-22
    """
    sent = session.project.airflow_notify(
        pipeline,
        event,  # type: ignore[arg-type]
        run=_run(dag_id, run_id),
        task=task,
        attempt=attempt,
        error=error,
    )
    click.echo(f"{event}: sent to {sent} notifier(s)")


@airflow.command("sla-check", hidden=True)
@click.argument("pipeline")
@_dag_id
@_run_id
@_end
@project_option
@handle_errors
def sla_check(pipeline: str, dag_id: str, run_id: str, end: str, session: Session) -> None:
    """At an Airflow deadline: send `sla_miss` for each SLA of the run that was missed.

    \b
    Examples:
      lagoa airflow sla-check daily --dag-id retail_lakehouse.daily \\
        --run-id manual__2026-11-22 --interval-end 2026-11-22T00:00:00+00:00
    """
    missed = session.project.airflow_sla_check(pipeline, run=_run(dag_id, run_id), interval_end=_moment(end))
    for message in missed:
        click.echo(f"sla missed: {message}")
    if not missed:
        click.echo("no SLA missed")
