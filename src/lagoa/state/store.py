"""Run history, task attempts and run leases, in SQLite (WAL) or Postgres: one implementation on
SQLAlchemy Core, chosen by the state URI.

A lease is how ``max_active_runs`` holds across processes: a run takes one of the pipeline's
slots by inserting a row, keeps it alive with a heartbeat, and deletes it when done. A slot whose
heartbeat is older than the timeout belongs to a dead (or stalled) process and may be taken over.
Taking a slot is a single INSERT on a primary key, so two processes can never hold the same slot.

Each taking of a slot has its own holder token, and a heartbeat renews the lease only while it is
still that holder's and not yet stale: once stale, the lease may be taken over at any moment, so
its holder has lost it even if nobody took it yet. A successful heartbeat thus promises the holder
a whole timeout before anyone else can hold the slot, which is what fencing a commit relies on.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from lagoa.core.errors import StateError
from lagoa.state.records import EARLIER, RESUMED, AttemptRecord, LeaseRecord, RunRecord, utc

METADATA = sa.MetaData()

RUNS = sa.Table(
    "lagoa_runs",
    METADATA,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("pipeline", sa.String(200), nullable=False, index=True),
    sa.Column("interval_start", sa.DateTime(timezone=True)),
    sa.Column("interval_end", sa.DateTime(timezone=True)),
    sa.Column("state", sa.String(20), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("error", sa.Text),
    sa.Column("details", sa.Text, doc="JSON: anything else worth keeping about the run"),
)

ATTEMPTS = sa.Table(
    "lagoa_task_attempts",
    METADATA,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("lagoa_runs.run_id"), primary_key=True),
    sa.Column("task", sa.String(200), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("error", sa.Text),
    sa.Column("rows_in", sa.BigInteger),
    sa.Column("rows_out", sa.BigInteger),
    sa.Column("log", sa.Text),
    sa.Column("summary", sa.Text, doc="what a successful attempt did, in one line for people"),
)

LEASES = sa.Table(
    "lagoa_leases",
    METADATA,
    sa.Column("pipeline", sa.String(200), primary_key=True),
    sa.Column("slot", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column(
        "holder",
        sa.String(200),
        nullable=False,
        doc="host:pid/token: the process holding it, and this taking",
    ),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
)

RUN_STATES = ("running", "succeeded", "failed", "cancelled")
ATTEMPT_STATES = ("running", "succeeded", "failed", "retrying", "timed_out", "skipped", "cancelled")
"""``skipped`` (upstream failed) and ``cancelled`` (the run was stopped) tasks never started:
they are recorded as attempt 0."""


@dataclass(frozen=True)
class Lease:
    pipeline: str
    slot: int
    run_id: str
    holder: str
    """``host:pid/token``: unique to this taking of the slot."""
    stale_after: timedelta = timedelta(minutes=2)
    """Its heartbeat must be younger than this, or the lease is lost."""


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back without a zone; they were written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def holder_name() -> str:
    """This process, and a token telling one taking of a lease from another."""
    return f"{socket.gethostname()}:{os.getpid()}/{uuid.uuid4().hex[:12]}"


def engine_for(uri: str, project_dir: Path) -> Engine:
    """An engine for the state URI; relative SQLite paths are relative to the project."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = project_dir / uri.removeprefix("sqlite:///")
        path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{path}"
    if uri.startswith("postgresql://"):
        uri = "postgresql+psycopg://" + uri.removeprefix("postgresql://")
    engine = sa.create_engine(uri, future=True)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            _wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


BUSY_TIMEOUT_MS = 10_000


def _wal(cursor: Any) -> None:
    """Put the database in WAL mode (readers never wait for the writer). Switching a new
    database's mode needs it to itself, and SQLite refuses at once, without waiting out the busy
    timeout, while another process holds it (as one opening the same new database does): try
    again until the timeout is up."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)


class StateStore:
    """The project's state database. ``redact`` removes secrets from every error and log written
    to it."""

    def __init__(self, engine: Engine, redact: Callable[[str], str] = str) -> None:
        self.engine = engine
        self.redact = redact
        for attempt in range(3):
            try:
                METADATA.create_all(engine)
                break
            except sa.exc.SQLAlchemyError as exc:
                # Another process created the tables between the check and the CREATE: check again.
                if "already exists" in str(exc) and attempt < 2:
                    continue
                raise StateError(f"cannot open the state database: {_short(exc)}") from None
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Columns added since a state database was created are added to it (nullable, so
        older rows need nothing): a project's history survives an upgrade of Lagoa."""
        inspector = sa.inspect(self.engine)
        for table in METADATA.sorted_tables:
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
                    continue
                kind = column.type.compile(dialect=self.engine.dialect)
                try:
                    with self.engine.begin() as con:
                        con.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
                except sa.exc.SQLAlchemyError as exc:
                    if "duplicate" not in str(exc).lower() and "already exists" not in str(exc).lower():
                        raise StateError(f"cannot upgrade the state database: {_short(exc)}") from None

    @classmethod
    def open(cls, uri: str, project_dir: Path, redact: Callable[[str], str] = str) -> StateStore:
        return cls(engine_for(uri, project_dir), redact)

    def _clean(self, text: str | None) -> str | None:
        return self.redact(text) if text else text

    def _read(self, row: Any) -> dict[str, Any]:
        """A row of a run or an attempt, redacted again: history written before a secret was
        known as one (or by an older Lagoa) does not show it either."""
        values = _row(row)
        for key in ("error", "log"):
            if key in values:
                values[key] = self._clean(values[key])
        return values

    def close(self) -> None:
        self.engine.dispose()

    # --- runs ----------------------------------------------------------------------------------

    def start_run(
        self,
        run_id: str,
        pipeline: str,
        interval: tuple[datetime, datetime] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        start, end = interval or (None, None)
        with self.engine.begin() as con:
            con.execute(
                RUNS.insert().values(
                    run_id=run_id,
                    pipeline=pipeline,
                    interval_start=start,
                    interval_end=end,
                    state="running",
                    started_at=_now(),
                    details=json.dumps(details or {}),
                )
            )

    def finish_run(self, run_id: str, state: str, error: str | None = None) -> None:
        if state not in RUN_STATES:
            raise ValueError(state)
        with self.engine.begin() as con:
            con.execute(
                RUNS.update()
                .where(RUNS.c.run_id == run_id)
                .values(state=state, ended_at=_now(), error=self._clean(error))
            )

    def reopen_run(self, run_id: str) -> None:
        """A retried run is running again. The time its earlier passes took is kept in its
        details, so that the run's duration is the sum of its passes, not the time from its
        first start to the retry's end."""
        with self.engine.begin() as con:
            row = con.execute(
                sa.select(RUNS.c.started_at, RUNS.c.ended_at, RUNS.c.details).where(RUNS.c.run_id == run_id)
            ).first()
            values: dict[str, Any] = {"state": "running", "ended_at": None, "error": None}
            if row is not None and row.ended_at is not None:
                details: dict[str, Any] = json.loads(row.details or "{}")
                since = datetime.fromisoformat(details[RESUMED]) if RESUMED in details else row.started_at
                earlier = float(details.get(EARLIER, 0.0))
                details[EARLIER] = earlier + (utc(row.ended_at) - utc(since)).total_seconds()
                details[RESUMED] = _now().isoformat()
                values["details"] = json.dumps(details)
            con.execute(RUNS.update().where(RUNS.c.run_id == run_id).values(**values))

    def join_run(
        self,
        run_id: str,
        pipeline: str,
        interval: tuple[datetime, datetime] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """A run whose tasks start one process each (another scheduler runs them): the first
        task starts the run, each later one finds it and marks it running again."""
        try:
            self.start_run(run_id, pipeline, interval, details)
        except sa.exc.IntegrityError:
            with self.engine.begin() as con:
                con.execute(
                    RUNS.update().where(RUNS.c.run_id == run_id).values(state="running", ended_at=None)
                )

    def settle_run(self, run_id: str, tasks: list[str]) -> str:
        """Give a run whose tasks another scheduler runs the state its ``tasks`` add up to: failed
        once one failed for good, succeeded once all did, running otherwise. Returns the state."""
        with self.engine.begin() as con:
            # Writing the run's row first holds it (SQLite: the database) while the attempts are
            # read, so that two tasks ending at once cannot leave a stale state behind.
            con.execute(RUNS.update().where(RUNS.c.run_id == run_id).values(state=RUNS.c.state))
            query = (
                sa.select(ATTEMPTS.c.task, ATTEMPTS.c.state, ATTEMPTS.c.error)
                .where(ATTEMPTS.c.run_id == run_id, ATTEMPTS.c.task.in_(tasks))
                .order_by(ATTEMPTS.c.started_at, ATTEMPTS.c.attempt)
            )
            latest = {str(r.task): (str(r.state), r.error) for r in con.execute(query)}
            failed = [f"{t}: {e}" for t, (s, e) in sorted(latest.items()) if s in ("failed", "timed_out")]
            if failed:
                state, error = "failed", self._clean("; ".join(failed))
            elif all(latest.get(t, ("",))[0] == "succeeded" for t in tasks):
                state, error = "succeeded", None
            else:
                state, error = "running", None
            con.execute(
                RUNS.update()
                .where(RUNS.c.run_id == run_id)
                .values(state=state, error=error, ended_at=None if state == "running" else _now())
            )
        return state

    def last_scheduled(self, pipeline: str) -> datetime | None:
        """The schedule tick of the pipeline's latest scheduled run that was not cancelled (a
        cancelled one runs again)."""
        query = (
            sa.select(RUNS.c.details)
            .where(
                RUNS.c.pipeline == pipeline,
                RUNS.c.details.like('%"tick"%'),
                RUNS.c.state != "cancelled",
            )
            .order_by(RUNS.c.started_at.desc())
        )
        with self.engine.connect() as con:
            ticks = [json.loads(str(details or "{}")).get("tick") for (details,) in con.execute(query)]
        found = [datetime.fromisoformat(t) for t in ticks if t]
        return max(found) if found else None

    def runs(
        self,
        *,
        pipeline: str | None = None,
        state: str | None = None,
        limit: int = 50,
        offset: int = 0,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[RunRecord]:
        """The latest runs, newest first (without their attempts); ``since``/``until`` keep the
        runs whose data interval overlaps [since, until)."""
        query = self._filtered(sa.select(RUNS), pipeline, state, since, until)
        query = query.order_by(RUNS.c.started_at.desc(), RUNS.c.run_id.desc()).limit(limit).offset(offset)
        with self.engine.connect() as con:
            return [RunRecord(**self._read(r)) for r in con.execute(query).mappings()]

    def count_runs(
        self,
        *,
        pipeline: str | None = None,
        state: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """How many runs :meth:`runs` would list without a limit."""
        query = self._filtered(sa.select(sa.func.count()).select_from(RUNS), pipeline, state, since, until)
        with self.engine.connect() as con:
            return int(con.execute(query).scalar_one())

    @staticmethod
    def _filtered(
        query: Any, pipeline: str | None, state: str | None, since: datetime | None, until: datetime | None
    ) -> Any:
        if pipeline:
            query = query.where(RUNS.c.pipeline == pipeline)
        if state:
            query = query.where(RUNS.c.state == state)
        if since is not None:
            query = query.where(RUNS.c.interval_end > since)
        if until is not None:
            query = query.where(RUNS.c.interval_start < until)
        return query

    def run_ids_like(self, fragment: str, limit: int = 10) -> list[str]:
        """Run ids equal to ``fragment``, else ending with ``-<fragment>`` (a short id) or
        starting with it, newest first."""
        with self.engine.connect() as con:
            exact = [
                str(r) for (r,) in con.execute(sa.select(RUNS.c.run_id).where(RUNS.c.run_id == fragment))
            ]
            if exact:
                return exact
            escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = (
                sa.select(RUNS.c.run_id)
                .where(
                    sa.or_(
                        RUNS.c.run_id.like(f"%-{escaped}", escape="\\"),
                        RUNS.c.run_id.like(f"{escaped}%", escape="\\"),
                    )
                )
                .order_by(RUNS.c.started_at.desc())
                .limit(limit)
            )
            return [str(r) for (r,) in con.execute(query)]

    def pipelines(self) -> list[str]:
        """Every pipeline (or other run name: ``ingest``, a domain) the history has runs of."""
        with self.engine.connect() as con:
            return sorted(str(p) for (p,) in con.execute(sa.select(RUNS.c.pipeline).distinct()))

    def rows_per_day(self, since: datetime) -> list[tuple[str, str, int]]:
        """(day, pipeline, rows) of the ingest attempts that succeeded since ``since``: the rows
        landed in bronze each day (UTC), by the day the attempt started."""
        day = sa.func.substr(sa.cast(ATTEMPTS.c.started_at, sa.String), 1, 10)
        query = (
            sa.select(day, RUNS.c.pipeline, sa.func.sum(ATTEMPTS.c.rows_out))
            .select_from(ATTEMPTS.join(RUNS, RUNS.c.run_id == ATTEMPTS.c.run_id))
            .where(
                ATTEMPTS.c.state == "succeeded",
                ATTEMPTS.c.task.like("ingest\\_%", escape="\\"),
                ATTEMPTS.c.started_at >= since,
            )
            .group_by(day, RUNS.c.pipeline)
            .order_by(day)
        )
        with self.engine.connect() as con:
            return [(str(d), str(p), int(str(n or 0))) for d, p, n in con.execute(query)]

    def run(self, run_id: str) -> RunRecord | None:
        """A run with every attempt of its tasks, in the order they started."""
        with self.engine.connect() as con:
            row = con.execute(sa.select(RUNS).where(RUNS.c.run_id == run_id)).mappings().first()
            if row is None:
                return None
            attempts = con.execute(
                sa.select(ATTEMPTS)
                .where(ATTEMPTS.c.run_id == run_id)
                .order_by(ATTEMPTS.c.started_at, ATTEMPTS.c.task, ATTEMPTS.c.attempt)
            ).mappings()
            return RunRecord(
                **self._read(row), attempts=tuple(AttemptRecord(**self._read(a)) for a in attempts)
            )

    # --- task attempts -------------------------------------------------------------------------

    def start_attempt(self, run_id: str, task: str, attempt: int) -> None:
        with self.engine.begin() as con:
            con.execute(
                ATTEMPTS.insert().values(
                    run_id=run_id, task=task, attempt=attempt, state="running", started_at=_now()
                )
            )

    def running_log(self, run_id: str, task: str, attempt: int, log: str | None) -> None:
        """What a running attempt has logged so far; an attempt that ended keeps its final log."""
        with self.engine.begin() as con:
            con.execute(
                ATTEMPTS.update()
                .where(
                    ATTEMPTS.c.run_id == run_id,
                    ATTEMPTS.c.task == task,
                    ATTEMPTS.c.attempt == attempt,
                    ATTEMPTS.c.state == "running",
                )
                .values(log=self._clean(log))
            )

    def record_unstarted(self, run_id: str, task: str, state: str) -> None:
        """A task that never started: ``skipped`` or ``cancelled``, as attempt 0."""
        if state not in ATTEMPT_STATES:
            raise ValueError(state)
        now = _now()
        with self.engine.begin() as con:
            con.execute(
                ATTEMPTS.delete().where(
                    ATTEMPTS.c.run_id == run_id, ATTEMPTS.c.task == task, ATTEMPTS.c.attempt == 0
                )
            )
            con.execute(
                ATTEMPTS.insert().values(
                    run_id=run_id, task=task, attempt=0, state=state, started_at=now, ended_at=now
                )
            )

    def task_states(self, run_id: str) -> dict[str, tuple[str, int]]:
        """Each task's latest state in the run and its highest attempt number."""
        query = (
            sa.select(ATTEMPTS.c.task, ATTEMPTS.c.attempt, ATTEMPTS.c.state)
            .where(ATTEMPTS.c.run_id == run_id)
            .order_by(ATTEMPTS.c.started_at, ATTEMPTS.c.attempt)
        )
        found: dict[str, tuple[str, int]] = {}
        with self.engine.connect() as con:
            for row in con.execute(query).mappings():
                task, attempt = str(row["task"]), int(row["attempt"])
                found[task] = (str(row["state"]), max(attempt, found.get(task, ("", 0))[1]))
        return found

    def finish_attempt(
        self,
        run_id: str,
        task: str,
        attempt: int,
        state: str,
        *,
        error: str | None = None,
        rows_in: int | None = None,
        rows_out: int | None = None,
        log: str | None = None,
        summary: str | None = None,
    ) -> None:
        if state not in ATTEMPT_STATES:
            raise ValueError(state)
        with self.engine.begin() as con:
            con.execute(
                ATTEMPTS.update()
                .where(ATTEMPTS.c.run_id == run_id, ATTEMPTS.c.task == task, ATTEMPTS.c.attempt == attempt)
                .values(
                    state=state,
                    ended_at=_now(),
                    error=self._clean(error),
                    rows_in=rows_in,
                    rows_out=rows_out,
                    log=self._clean(log),
                    summary=self._clean(summary),
                )
            )

    # --- leases --------------------------------------------------------------------------------

    def acquire(
        self, pipeline: str, run_id: str, *, slots: int = 1, stale_after: timedelta = timedelta(minutes=2)
    ) -> Lease | None:
        """Take one of the pipeline's ``slots``; a slot whose holder stopped heartbeating for
        ``stale_after`` is taken over. None when every slot is held by a live run."""
        holder = holder_name()
        for slot in range(slots):
            lease = Lease(pipeline, slot, run_id, holder, stale_after)
            with self.engine.begin() as con:
                stale = _now() - stale_after
                dead = LEASES.c.pipeline == pipeline, LEASES.c.slot == slot, LEASES.c.heartbeat_at < stale
                for (dead_run,) in con.execute(sa.select(LEASES.c.run_id).where(*dead)).all():
                    # Its process died holding the lease: the run did not finish.
                    con.execute(
                        RUNS.update()
                        .where(RUNS.c.run_id == dead_run, RUNS.c.state == "running")
                        .values(
                            state="failed",
                            ended_at=_now(),
                            error="the process running it stopped (lease expired)",
                        )
                    )
                con.execute(LEASES.delete().where(*dead))
            try:
                with self.engine.begin() as con:
                    con.execute(
                        LEASES.insert().values(
                            pipeline=pipeline, slot=slot, run_id=run_id, holder=holder, heartbeat_at=_now()
                        )
                    )
            except sa.exc.IntegrityError:
                continue  # a live run holds this slot
            return lease
        return None

    def heartbeat(self, lease: Lease) -> bool:
        """Keep the lease alive for another ``lease.stale_after``; False when it was lost: taken
        over, or stale (and so free to be taken over at any moment)."""
        now = _now()
        try:
            return self._renew(lease, now)
        except sa.exc.SQLAlchemyError as exc:
            raise StateError(f"cannot renew the lease of run `{lease.run_id}`: {_short(exc)}") from None

    def _renew(self, lease: Lease, now: datetime) -> bool:
        with self.engine.begin() as con:
            result = con.execute(
                LEASES.update()
                .where(
                    LEASES.c.pipeline == lease.pipeline,
                    LEASES.c.slot == lease.slot,
                    LEASES.c.run_id == lease.run_id,
                    LEASES.c.holder == lease.holder,
                    LEASES.c.heartbeat_at >= now - lease.stale_after,
                )
                .values(heartbeat_at=now)
            )
            return bool(result.rowcount)

    def release(self, lease: Lease) -> None:
        with self.engine.begin() as con:
            con.execute(
                LEASES.delete().where(
                    LEASES.c.pipeline == lease.pipeline,
                    LEASES.c.slot == lease.slot,
                    LEASES.c.run_id == lease.run_id,
                    LEASES.c.holder == lease.holder,
                )
            )

    def leases(self, pipeline: str) -> list[LeaseRecord]:
        with self.engine.connect() as con:
            rows = con.execute(sa.select(LEASES).where(LEASES.c.pipeline == pipeline).order_by(LEASES.c.slot))
            return [LeaseRecord(**_row(r)) for r in rows.mappings()]


def _row(row: Any) -> dict[str, Any]:
    return {key: _aware(value) if isinstance(value, datetime) else value for key, value in dict(row).items()}


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0]
