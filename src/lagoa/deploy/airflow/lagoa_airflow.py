"""Lagoa's side of Airflow, imported by the DAG files `lagoa airflow export` writes (and copied
beside them): the operator that runs one Lagoa task, and the callbacks that send Lagoa's
notifications. The same file serves Airflow 3 and Airflow 2.11.

Airflow and Lagoa pin different versions of the same libraries, so Lagoa does not run inside
Airflow's environment: each task runs ``python -m lagoa airflow task`` with the Python of Lagoa's
own environment, named by the ``LAGOA_PYTHON`` environment variable (`lagoa airflow standalone`
sets it; on MWAA the startup script does). The task's output streams into Airflow's log; its exit
code says whether Airflow should retry (1) or not (3: a bad project or bad data).
"""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

try:  # Airflow 3
    from airflow.sdk import BaseOperator
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # Airflow 2
    from airflow.exceptions import AirflowException, AirflowFailException
    from airflow.models import BaseOperator

TERMINAL = 3
"""The exit code of a task that failed for a reason a retry cannot fix."""


def project_dir(dag_file: str, relative: str) -> str:
    """The project's folder, ``relative`` to the folder of the DAG file."""
    return str((Path(dag_file).resolve().parent / relative).resolve())


def lagoa_python() -> str:
    python = os.environ.get("LAGOA_PYTHON", "")
    if not python or not Path(python).exists():
        raise AirflowFailException(
            f"LAGOA_PYTHON is {python or 'not set'}: set it to the python of the environment Lagoa is "
            "installed in (e.g. /opt/lagoa/.venv/bin/python); `lagoa airflow standalone` sets it"
        )
    return python


def _lagoa(project: str, *args: str) -> list[str]:
    return [lagoa_python(), "-m", "lagoa", "airflow", *args, "--project", project]


def _moment(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def interval_end(context: Any) -> str:
    """Where the run's data interval ends by Airflow's reckoning: its tick for a cron schedule;
    for a run with no logical date (triggered by hand or by assets in Airflow 3), when it was
    asked to run."""
    dag_run = context.get("dag_run")
    for value in (
        context.get("data_interval_end"),
        context.get("logical_date"),
        getattr(dag_run, "run_after", None),
        getattr(dag_run, "queued_at", None),
    ):
        if (moment := _moment(value)) is not None:
            return moment
    return datetime.now(UTC).isoformat()


class LagoaTask(BaseOperator):
    """Runs one task of a Lagoa pipeline (``ingest_<domain>``, ``validate_<domain>``, ...) for
    the run's data interval, as one attempt of the Lagoa run that stands for this DAG run."""

    ui_color = "#cfe8ff"

    def __init__(self, *, project: str, pipeline: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.pipeline = pipeline
        self._process: subprocess.Popen[str] | None = None

    def execute(self, context: Any) -> int | None:
        ti = context["ti"]
        command = _lagoa(
            self.project,
            "task",
            self.pipeline,
            self.task_id,
            "--dag-id",
            self.dag_id,
            "--run-id",
            context["dag_run"].run_id,
            "--interval-end",
            interval_end(context),
            *(["--final"] if ti.try_number > self.retries else []),
        )
        self.log.info("running %s", " ".join(command[1:]))
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # on_kill stops Lagoa's whole process group
        )
        self._process = process
        tail: list[str] = []
        assert process.stdout is not None
        for line in process.stdout:
            self.log.info("%s", line.rstrip())
            tail = [*tail[-19:], line.rstrip()]
        code = process.wait()
        if code == 0:
            return None
        message = "\n".join(tail) or f"lagoa exited with {code}"
        if code == TERMINAL:
            raise AirflowFailException(message)
        raise AirflowException(message)

    def on_kill(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)


def _run_id(context: Any) -> str:
    dag_run = context.get("dag_run")
    return str(getattr(dag_run, "run_id", "") or "")


def _dag_id(context: Any) -> str:
    dag_run = context.get("dag_run")
    dag = context.get("dag")
    return str(getattr(dag_run, "dag_id", None) or getattr(dag, "dag_id", ""))


def notify(project: str, pipeline: str, event: str) -> Any:
    """A callback sending ``event`` (failure, retry, success) through the project's notifiers."""

    def callback(context: Any) -> None:
        ti = context.get("ti") or context.get("task_instance")
        error = context.get("exception") or context.get("reason")
        args = [
            "notify",
            pipeline,
            event,
            "--dag-id",
            _dag_id(context),
            "--run-id",
            _run_id(context),
        ]
        if event != "success" and ti is not None:
            args += ["--task", str(ti.task_id), "--try", str(ti.try_number)]
        if error:
            args += ["--error", str(error)[-2000:]]
        subprocess.run(_lagoa(project, *args), check=False, timeout=120)

    return callback


def sla_check(project: str, pipeline: str, dag_id: str, run_id: str, end: str) -> None:
    """Ask Lagoa which SLAs of the run were missed, and have it send ``sla_miss`` for each."""
    args = [
        "sla-check",
        pipeline,
        "--dag-id",
        dag_id,
        "--run-id",
        run_id,
        "--interval-end",
        end,
    ]
    subprocess.run(_lagoa(project, *args), check=False, timeout=120)


async def deadline_missed(context: Any, project: str, pipeline: str) -> None:
    """Airflow 3's Deadline Alert callback (run by the triggerer)."""
    import asyncio

    await asyncio.to_thread(
        sla_check,
        project,
        pipeline,
        _dag_id(context),
        _run_id(context),
        interval_end(context),
    )


def deadline(project: str, pipeline: str, after_tick: timedelta) -> Any:
    """Airflow 3: a Deadline Alert ``after_tick`` after the run's logical date; Lagoa then checks
    every SLA of the pipeline against when its tasks finished."""
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=after_tick,
        callback=AsyncCallback(
            deadline_missed, kwargs={"project": project, "pipeline": pipeline}
        ),
    )


def sla_missed(project: str, pipeline: str) -> Any:
    """Airflow 2's ``sla_miss_callback``: Lagoa checks the SLAs of each run that missed one."""

    def callback(
        dag: Any, task_list: Any, blocking_task_list: Any, slas: Any, blocking_tis: Any
    ) -> None:
        from airflow.models import DagRun

        for logical_date in sorted({sla.execution_date for sla in slas}):
            runs = DagRun.find(dag_id=dag.dag_id, execution_date=logical_date)
            run_id = (
                runs[0].run_id if runs else f"scheduled__{logical_date.isoformat()}"
            )
            end = _moment(runs[0].data_interval_end) if runs else None
            sla_check(
                project, pipeline, dag.dag_id, run_id, end or logical_date.isoformat()
            )

    return callback
