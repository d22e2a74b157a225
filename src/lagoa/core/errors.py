"""Lagoa's error hierarchy: every exception Lagoa raises on purpose, in one tree.

Every error is a :class:`LagoaError`. Each one says whether retrying can help: ``transient``
errors (a busy catalog, a slot another session is reading) are retried by the orchestrator;
terminal ones (bad configuration, an incompatible schema) fail at once.

    LagoaError
    ├── ConfigError              lagoa.yml is missing, unreadable or invalid
    │   ├── SecretError          a ${env:NAME} secret is not set
    │   └── SuiteError           an expectation suite is invalid or unsupported
    ├── SourceError              a source cannot be read (missing file, malformed beyond repair)
    │   └── SlotBusyError        another session reads the replication slot right now (transient)
    ├── SchemaEvolutionError     new data cannot be reconciled with the table's schema
    ├── LakeError                the catalog or a table cannot be read or written
    │   └── CommitConflictError  another writer committed first (transient)
    ├── EngineError              DuckDB or one of its extensions failed
    ├── QualityError             a `fail` expectation failed; nothing of the batch was published
    ├── CompileError             an expectation cannot apply to a relation (a missing column…)
    │   └── ConditionError       a row_condition Lagoa cannot translate
    ├── TransformError           dbt failed: a compile error, a failing model or test
    ├── StateError               the state database cannot be reached or written (transient)
    ├── LeaseError               another run of the same pipeline holds the lease
    └── TaskTimeoutError         a task attempt ran longer than its timeout
"""

from __future__ import annotations


class LagoaError(Exception):
    """Root of every error Lagoa raises on purpose."""

    transient: bool = False
    """True when retrying the same work may succeed."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ConfigError(LagoaError):
    """The project file is missing, unreadable or invalid."""

    def __init__(
        self, message: str, *, file: str | None = None, key: str | None = None, hint: str | None = None
    ):
        where = ", ".join(part for part in (file, f"key `{key}`" if key else None) if part)
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.file = file
        self.key = key


class SecretError(ConfigError):
    """A ``${env:NAME}`` secret is referenced but not set."""


class SourceError(LagoaError):
    """A source cannot be read."""

    def __init__(self, source: str, message: str, *, hint: str | None = None, transient: bool = False):
        super().__init__(f"source `{source}`: {message}", hint=hint)
        self.source = source
        self.transient = transient


class SchemaEvolutionError(LagoaError):
    """New data cannot be reconciled with a table's existing schema."""

    def __init__(self, table: str, message: str, *, hint: str | None = None):
        super().__init__(f"table `{table}`: {message}", hint=hint)
        self.table = table


class LakeError(LagoaError):
    """The catalog or a table cannot be read or written."""


class CommitConflictError(LakeError):
    """Another writer committed to the table first; the work can be retried."""

    transient = True


class EngineError(LagoaError):
    """DuckDB or one of its extensions failed."""


class SuiteError(ConfigError):
    """An expectation suite is invalid: bad JSON, an unknown expectation, a wrong argument."""

    def __init__(self, suite: str, message: str, *, index: int | None = None, hint: str | None = None):
        super().__init__(
            message, file=suite, key=f"expectations[{index}]" if index is not None else None, hint=hint
        )
        self.index = index


class QualityError(LagoaError):
    """Expectations whose action is ``fail`` did not hold; the batch was not published."""

    def __init__(self, table: str, failed: list[str], *, report: str | None = None):
        shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        super().__init__(
            f"table `{table}`: {len(failed)} expectation(s) with on_fail=fail did not hold: {shown}",
            hint=f"see {report}" if report else "run `lagoa quality report` for the details",
        )
        self.table = table
        self.failed = failed


class SlotBusyError(SourceError):
    """Another session is reading the replication slot right now; the next attempt may get it."""

    def __init__(self, source: str, message: str, *, hint: str | None = None):
        super().__init__(source, message, hint=hint, transient=True)


class CompileError(LagoaError):
    """An expectation cannot apply to this relation (a missing column, a bad regex…)."""


class ConditionError(CompileError, ValueError):
    """A row_condition Lagoa cannot translate."""


class TransformError(LagoaError):
    """dbt failed: a compile error, a failing model or test, a missing source."""

    def __init__(self, message: str, *, failures: list[str] | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.failures = failures or []


class StateError(LagoaError):
    """The state database cannot be reached or written."""

    transient = True


class LeaseError(LagoaError):
    """Another run of the same pipeline holds the lease."""


class TaskTimeoutError(LagoaError):
    """A task attempt ran longer than its timeout."""


class DeployError(LagoaError):
    """The project cannot be made ready to run elsewhere (Airflow's environment, DAG files) or
    put there (MWAA's bucket and environment)."""


class RefusedError(LagoaError):
    """The SQL console does not run this statement (it would write, or read outside the lake)."""


class QueryFailedError(LagoaError):
    """A console statement is allowed but DuckDB could not run it (syntax, binding, a timeout)."""
