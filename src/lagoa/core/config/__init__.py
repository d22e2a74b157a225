"""The project file, ``lagoa.yml``: its typed model, loading, and ``${env:NAME}`` secrets.

Lookup order for settings: the project file, then environment variables ``LAGOA_<SECTION>_<KEY>``
for the storage, catalog, state and warehouse settings (e.g. ``LAGOA_CATALOG_URI``), then flags
given on the command line. Secrets are written as ``${env:NAME}`` and resolved only when used:
the model keeps the reference, never the value, so printing a config cannot leak a secret.
"""

from __future__ import annotations

import difflib
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from croniter import croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from lagoa.core.errors import ConfigError, SecretError
from lagoa.core.time import parse_duration

PROJECT_FILE = "lagoa.yml"
SECRET_PATTERN = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
TYPE_NAMES = (
    "boolean",
    "int",
    "long",
    "float",
    "double",
    "date",
    "time",
    "timestamp",
    "timestamptz",
    "string",
)
DECIMAL_TYPE = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
PARTITION_FIELD = re.compile(r"^(?:(identity|year|month|day|hour)\((\w+)\)|(\w+))$")


def partition_fields(value: list[str]) -> list[str]:
    """Check partition fields (``column``, ``day(column)``…) and strip them."""
    for field in value:
        if not PARTITION_FIELD.match(field.strip()):
            raise ValueError(
                f"partition field `{field}` is not understood; write `column` or day(column), "
                "month(column), year(column), hour(column)"
            )
    return [field.strip() for field in value]


class Model(BaseModel):
    """Base for every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConfig(Model):
    """Where the lake's files live."""

    root: str = ".lagoa/lake"
    """Folder (relative to the project) or URI holding raw/, bronze/, silver/ and gold/."""


class CatalogConfig(Model):
    """The Iceberg catalog."""

    uri: str = "sqlite:///.lagoa/catalog.db"
    """SQLAlchemy URI of the Iceberg SQL catalog; relative SQLite paths are relative to the project."""
    name: str = "lagoa"
    """Catalog name recorded in the catalog tables."""


class StateConfig(Model):
    """Run history and locks."""

    uri: str = "sqlite:///.lagoa/state.db"
    """SQLAlchemy URI of the state database."""


class CsvOptions(Model):
    """CSV dialect; anything left unset is detected from the file."""

    delimiter: str | None = None
    header: bool | None = None
    quote: str | None = None
    escape: str | None = None
    encoding: Literal["utf-8", "utf-16", "latin-1"] = "utf-8"
    max_line_size: int = 2_097_152
    """Longest line accepted, in bytes; longer lines are quarantined."""


class TableSource(Model):
    """What every source kind shares: how its rows become ``bronze.<source>`` and ``silver.<entity>``."""

    columns: dict[str, str] = Field(default_factory=dict)
    """Declared column types (``long``, ``double``, ``decimal(18,2)``, ``timestamp``…). Columns not
    declared are inferred from the data."""
    primary_key: list[str] = Field(default_factory=list)
    """Columns identifying a row in silver; without one, silver keeps every row."""
    ordering: str | None = None
    """Column deciding which version of a key wins in silver (the greatest)."""
    partition_by: list[str] = Field(default_factory=list)
    """Silver partition fields: ``column`` or ``day(column)``, ``month(…)``, ``year(…)``, ``hour(…)``."""
    entity: str | None = None
    """Silver table name; defaults to the source name."""

    @property
    def cursor(self) -> str | None:
        """The column whose committed maximum is the source's watermark."""
        return None

    @field_validator("columns")
    @classmethod
    def _known_types(cls, value: dict[str, str]) -> dict[str, str]:
        for column, type_name in value.items():
            normalised = type_name.strip().lower()
            if normalised not in TYPE_NAMES and not DECIMAL_TYPE.match(normalised):
                suggestion = did_you_mean(normalised, TYPE_NAMES)
                raise ValueError(
                    f"column `{column}` has unknown type `{type_name}`{suggestion}; "
                    f"use one of {', '.join(TYPE_NAMES)} or decimal(p,s)"
                )
        return {column: type_name.strip().lower() for column, type_name in value.items()}

    @field_validator("partition_by")
    @classmethod
    def _partition_fields(cls, value: list[str]) -> list[str]:
        return partition_fields(value)

    @model_validator(mode="after")
    def _ordering_needs_key(self) -> TableSource:
        if self.ordering and not self.primary_key:
            raise ValueError("`ordering` only applies with a `primary_key`; declare the key columns")
        return self


class FileSource(TableSource):
    """Files on disk (a path or glob), landed raw and appended to ``bronze.<source>``."""

    kind: Literal["file"] = "file"
    format: Literal["csv", "json", "jsonl", "parquet"]
    """``json`` is one JSON array per file; ``jsonl`` is one JSON object per line."""
    path: str
    """Path or glob, relative to the project folder (e.g. ``samples/orders_*.csv``)."""
    cursor_column: str | None = Field(default=None, alias="cursor")
    """Column for incremental loads: rows at or below the last committed maximum are skipped."""
    csv: CsvOptions = Field(default_factory=CsvOptions)

    @property
    def cursor(self) -> str | None:
        return self.cursor_column


class Auth(Model):
    """How requests authenticate; every secret is ``${env:NAME}``."""

    type: Literal["bearer", "basic", "api_key", "oauth2"]
    token: str | None = None
    """bearer: the token."""
    username: str | None = None
    password: str | None = None
    name: str | None = None
    """api_key: the header or query parameter name."""
    value: str | None = None
    """api_key: the key."""
    location: Literal["header", "query"] = "header"
    """api_key: where the key goes."""
    token_url: str | None = None
    """oauth2 (client credentials): where tokens are granted."""
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Auth:
        needs = {
            "bearer": ("token",),
            "basic": ("username", "password"),
            "api_key": ("name", "value"),
            "oauth2": ("token_url", "client_id", "client_secret"),
        }[self.type]
        missing = [key for key in needs if getattr(self, key) is None]
        if missing:
            raise ValueError(f"`{self.type}` auth needs {', '.join(f'`{m}`' for m in missing)}")
        return self


class Paginate(Model):
    """How to get the next page."""

    type: Literal["none", "page_number", "offset", "cursor", "next_url", "link_header"] = "none"
    param: str | None = None
    """page_number: the page parameter (default ``page``); offset: the offset parameter (default
    ``offset``); cursor: the parameter carrying the cursor (default ``cursor``)."""
    start: int = 1
    """page_number: the first page's number."""
    size_param: str | None = None
    """page_number / offset: the page-size parameter (``limit``, ``per_page``…), sent with ``size``."""
    size: int | None = None
    path: str | None = None
    """cursor: JSON path of the next cursor in the body; next_url: of the next page's URL."""


class Incremental(Model):
    """An incremental cursor: the greatest value of ``field`` committed is the next watermark."""

    field: str
    """The record field (column) holding the cursor, e.g. ``updated_at``."""
    initial: str | None = None
    """The watermark before the first load."""
    lookback: str | None = None
    """Ask again for this much before the watermark (``2h``, ``1d``): late records are re-read
    and merged in silver by key, not duplicated."""

    @field_validator("lookback")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class HttpSource(TableSource):
    """A REST API endpoint: every page landed raw, its records appended to ``bronze.<source>``."""

    kind: Literal["http"]
    base_url: str
    endpoint: str = ""
    """Path after ``base_url`` (e.g. ``/v1/orders``)."""
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, str] = Field(default_factory=dict)
    """Query parameters; values may use ``{{ interval.start }}``, ``{{ interval.end }}`` and
    ``{{ watermark }}``."""
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | None = None
    """POST: the JSON body (templated like ``params``)."""
    auth: Auth | None = None
    paginate: Paginate = Field(default_factory=Paginate)
    records: str = ""
    """JSON path of the records in a page (``data``, ``results.items``); empty: the page is the list."""
    incremental: Incremental | None = None
    timeout: float = 30.0
    """Seconds to wait for a response."""
    retries: int = Field(default=5, ge=0)
    """Extra attempts for 408, 429, 5xx and connection errors, with backoff (``Retry-After`` wins)."""
    backoff: float = 1.0
    """Seconds before the first retry; doubled each time."""
    rate_limit: float | None = None
    """Requests per second at most."""
    max_pages: int | None = None
    """Stop after this many pages (a safety net for runaway pagination)."""

    @property
    def cursor(self) -> str | None:
        return self.incremental.field if self.incremental else None


class PythonSource(TableSource):
    """A Python generator in the project: yields dicts or Arrow record batches/tables, committed
    to ``bronze.<source>`` like any other batch, with the same watermark semantics."""

    kind: Literal["python"]
    function: str
    """``module:function`` or ``path/to/file.py:function``, relative to the project folder. It is
    called with a ``lagoa.sources.context.SourceContext`` and the ``options``."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for the function."""
    incremental: Incremental | None = None

    @property
    def cursor(self) -> str | None:
        return self.incremental.field if self.incremental else None

    @field_validator("function")
    @classmethod
    def _reference(cls, value: str) -> str:
        if value.count(":") != 1 or not all(value.split(":")):
            raise ValueError(f"`{value}` is not `module:function` or `file.py:function`")
        return value


class PostgresSource(Model):
    """Tables of an operational Postgres database: per table, ``bronze.<table>__changes``
    (append-only change log: ``lagoa_op``, ``lagoa_lsn``, ``lagoa_seq``, ``lagoa_xid``,
    ``lagoa_committed_at`` and the row) and ``silver.<table>`` (the table's current state).
    ``snapshot`` copies every table from one consistent snapshot; ``cdc`` replicates changes
    continuously through a logical replication slot (see ``lagoa cdc``)."""

    kind: Literal["postgres"]
    dsn: str
    """libpq URI, normally ``${env:NAME}`` (``postgresql://user:password@host:5432/db``)."""
    tables: list[str] = Field(default_factory=list)
    """Tables to copy: ``orders`` (in ``schema``) or ``sales.orders``; none listed: every table
    of ``schema`` (found when the source is read)."""
    schema_name: str = Field(default="public", alias="schema")
    """The schema of unqualified table names (and of every table, when none are listed)."""
    mode: Literal["snapshot", "cdc"] = "snapshot"
    """``snapshot``: a consistent copy of every table (one exported snapshot), replacing silver.
    ``cdc``: an initial snapshot, then every insert, update, delete and truncate, applied in
    source-transaction order, exactly once."""
    keys: dict[str, list[str]] = Field(default_factory=dict)
    """Key columns for tables without a primary key (``table: [col, …]``); in ``cdc`` mode such a
    table also needs ``REPLICA IDENTITY FULL``."""
    parallel: int = Field(default=2, ge=1)
    """Tables copied at once."""
    slot: str | None = None
    """``cdc``: the logical replication slot (created if missing); default ``lagoa_<source>``."""
    publication: str | None = None
    """``cdc``: the publication of the tables (created if missing); default ``lagoa_<source>``."""
    flush_interval: float = Field(default=1.0, gt=0)
    """``cdc``: seconds between flushes to the lake while changes arrive."""
    flush_rows: int = Field(default=50_000, ge=1)
    """``cdc``: changes that trigger a flush before the interval is up (whole transactions)."""
    max_retained_wal_mb: int = Field(default=1024, ge=1)
    """``cdc``: warn when the slot makes Postgres keep more WAL than this (MB)."""

    def entities(self) -> list[str]:
        """The lake name of each listed table: its name without the schema."""
        return [table.split(".")[-1] for table in self.tables]

    def slot_name(self, source: str) -> str:
        return self.slot or f"lagoa_{source}"

    def publication_name(self, source: str) -> str:
        return self.publication or f"lagoa_{source}"


Source = Annotated[
    Annotated[FileSource, Tag("file")]
    | Annotated[HttpSource, Tag("http")]
    | Annotated[PythonSource, Tag("python")]
    | Annotated[PostgresSource, Tag("postgres")],
    Discriminator(lambda value: (value.get("kind") if isinstance(value, dict) else value.kind) or "file"),
]


Action = Literal["warn", "drop", "fail"]
ResultFormat = Literal["BOOLEAN_ONLY", "BASIC", "SUMMARY", "COMPLETE"]


class SuiteSettings(Model):
    """Where a suite applies and what its failures do."""

    table: str | None = None
    """Table the suite validates: ``silver.<entity>`` (or just ``<entity>``). Defaults to the suite name."""
    on_fail: Action | None = None
    """Action for this suite's expectations that do not set ``meta.lagoa.on_fail``."""
    expectations: dict[str, Action] = Field(default_factory=dict)
    """Actions per expectation, keyed ``<type>``, ``<type>:<column>`` or ``#<index>``; these win
    over the suite's own ``meta.lagoa.on_fail``."""


class QualityConfig(Model):
    """Expectation suites (Great Expectations' JSON format) run before silver is committed."""

    path: str = "quality"
    """Folder of suite files (``*.json``), relative to the project."""
    on_fail: Action = "warn"
    """Default action: ``warn`` records the failure, ``drop`` quarantines failing rows, ``fail``
    stops the batch before silver is committed."""
    result_format: ResultFormat = "SUMMARY"
    """Detail of stored results, as in Great Expectations."""
    suites: dict[str, SuiteSettings] = Field(default_factory=dict)
    """Settings per suite name."""


class Scheduled(Model):
    """When a domain or pipeline runs on its own, and how late it may finish."""

    schedule: str | None = None
    """Cron expression (UTC), e.g. ``0 2 * * *`` to process D-1 at 02:00, ``5 * * * *`` hourly."""
    interval: Literal["daily", "hourly"] | None = None
    """The data interval of each run; default hourly when the schedule fires every hour, daily
    otherwise."""
    catchup: bool = False
    """Run every missed tick since ``start`` (or since the last scheduled run), not just the latest."""
    start: datetime | None = None
    """The first data interval a catch-up runs (UTC)."""
    sla: str | None = None
    """How long after its data interval ends it must be published (``2h``, ``30m``); a miss fires
    the ``sla_miss`` notifications once per run."""

    @field_validator("sla")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)

    @field_validator("start")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


class DomainConfig(Scheduled):
    """A business domain: the sources its ingest task loads and the dbt models it transforms. A
    domain with a ``schedule`` is also a pipeline of its own, named after it."""

    sources: list[str]
    description: str | None = None
    select: str | None = None
    """dbt selector of the domain's models (``tag:orders``, ``path:models/orders``…); default
    ``tag:<domain>``."""


class PipelineConfig(Scheduled):
    """A named set of domains run together: by ``lagoa run <pipeline>`` or on its schedule."""

    domains: list[str]
    description: str | None = None


RESERVED_PIPELINE_NAMES = ("show", "retry", "all")

Event = Literal["failure", "retry", "success", "sla_miss"]
DEFAULT_EVENTS: tuple[Event, ...] = ("failure", "sla_miss")


class Notifier(Model):
    """Where run and task events are sent. Secrets (URLs, tokens, passwords) are ``${env:NAME}``."""

    kind: Literal["slack", "webhook", "email"]
    events: list[Event] = Field(default_factory=lambda: list(DEFAULT_EVENTS))
    """Which events to send: failure, retry, success, sla_miss."""
    url: str | None = None
    """slack: the incoming-webhook URL; webhook: the URL JSON is POSTed to."""
    headers: dict[str, str] = Field(default_factory=dict)
    """webhook: extra HTTP headers (e.g. ``Authorization: Bearer ${env:TOKEN}``)."""
    smtp_host: str | None = None
    smtp_port: int = 25
    sender: str | None = None
    to: list[str] = Field(default_factory=list)
    username: str | None = None
    password: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Notifier:
        if self.kind in ("slack", "webhook") and not self.url:
            raise ValueError(f"a {self.kind} notifier needs a `url`")
        if self.kind == "email" and not (self.smtp_host and self.sender and self.to):
            raise ValueError("an email notifier needs `smtp_host`, `sender` and `to`")
        return self


class PublishSettings(Model):
    """How a dbt model is published to ``gold.<model>``: set in lagoa.yml (``publish:``) or in the
    model's ``config(meta={'lagoa': {'publish': {...}}})``."""

    partition_by: list[str] = Field(default_factory=list)
    """Partition fields: ``column`` or ``day(column)``, ``month(…)``, ``year(…)``, ``hour(…)``."""
    zorder: list[str] = Field(default_factory=list)
    """Columns to Z-order rows by inside each partition (bit-interleaved ranks)."""
    sort_by: list[str] = Field(default_factory=list)
    """Columns to sort rows by inside each partition, when not Z-ordered."""
    rows_per_file: int = Field(default=1_000_000, ge=1)
    """Rows per data file at most; smaller files let point queries skip more."""
    format: Literal["iceberg", "parquet"] = "iceberg"
    """``iceberg``: the table ``gold.<model>``. ``parquet``: a CTAS-style dataset of Hive-partitioned
    Parquet files at ``location``, replaced as a whole on each publish."""
    location: str | None = None
    """For ``parquet``: the dataset's folder, relative to the storage root (e.g. ``exports/orders_summary``)."""

    @field_validator("partition_by")
    @classmethod
    def _partition_fields(cls, value: list[str]) -> list[str]:
        return partition_fields(value)

    @model_validator(mode="after")
    def _one_ordering(self) -> PublishSettings:
        if self.zorder and self.sort_by:
            raise ValueError("set either `zorder` or `sort_by`, not both")
        if self.format == "parquet":
            if not self.location:
                raise ValueError("a `parquet` publish needs a `location` (a folder under the storage root)")
            if any(not IDENTIFIER.match(field) for field in self.partition_by):
                raise ValueError(
                    "a `parquet` publish partitions by plain columns (Hive folders), not transforms"
                )
        return self


class OrchestrationConfig(Model):
    """How runs execute."""

    max_parallel: int = Field(default=2, ge=1)
    """Tasks run at once within a run."""
    max_active_runs: int = Field(default=1, ge=1)
    """Runs of the same pipeline at once, across processes (held by leases in the state database)."""
    when_busy: Literal["refuse", "wait"] = "refuse"
    """What a run does when every slot is taken: stop with an error, or wait for a slot."""
    lease_timeout: str = "2m"
    """A run's lease is taken over when its heartbeat is this old (its process died)."""
    max_fetches: int = Field(default=4, ge=1)
    """HTTP and Python sources of one ingest fetched at once."""
    task_timeout: str | None = None
    """A task attempt running longer than this fails (``30m``, ``2h``); none by default."""
    run_url: str | None = None
    """Link to a run in notifications, with ``{run_id}`` (e.g. ``http://lagoa.internal:8080/runs/{run_id}``)."""

    @field_validator("lease_timeout", "task_timeout")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class DbtConfig(Model):
    """The dbt project Lagoa runs in process against the warehouse."""

    project: str = "dbt"
    """Folder of the dbt project (holding dbt_project.yml), relative to the project."""
    threads: int = Field(default=2, ge=1)
    """Models dbt builds at once."""


class ProjectConfig(Model):
    """The whole of ``lagoa.yml``."""

    name: str
    """Project name, used in run ids and lineage."""
    storage: StorageConfig = Field(default_factory=StorageConfig)
    catalog: CatalogConfig = Field(default_factory=CatalogConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    warehouse: str = ".lagoa/warehouse.duckdb"
    """DuckDB file holding bronze/silver/gold views over the lake (the local Athena)."""
    sources: dict[str, Source] = Field(default_factory=dict)
    domains: dict[str, DomainConfig] = Field(default_factory=dict)
    pipelines: dict[str, PipelineConfig] = Field(default_factory=dict)
    """Named sets of domains with their schedules; ``lagoa run <pipeline>``."""
    quality: QualityConfig = Field(default_factory=QualityConfig)
    dbt: DbtConfig = Field(default_factory=DbtConfig)
    publish: dict[str, PublishSettings] = Field(default_factory=dict)
    """dbt models published to gold, by model name (models may also say so in their meta)."""
    orchestration: OrchestrationConfig = Field(default_factory=OrchestrationConfig)
    notifications: list[Notifier] = Field(default_factory=list)
    """Slack, webhook or e-mail notifiers for run and task events."""

    @field_validator("sources")
    @classmethod
    def _source_names(cls, value: dict[str, Source]) -> dict[str, Source]:
        for name in value:
            if not IDENTIFIER.match(name):
                raise ValueError(f"source name `{name}` must be lower_snake_case (letters, digits, _)")
        return value

    @model_validator(mode="after")
    def _domains_name_sources(self) -> ProjectConfig:
        for domain, config in self.domains.items():
            for source in config.sources:
                if source not in self.sources:
                    raise ValueError(
                        f"domain `{domain}` lists source `{source}`, which is not defined"
                        f"{did_you_mean(source, self.sources)}"
                    )
        for name, pipeline in self.pipelines.items():
            if name in RESERVED_PIPELINE_NAMES or name in self.domains:
                raise ValueError(
                    f"pipeline name `{name}` is taken (by a domain or a `lagoa run` subcommand); choose another"
                )
            for domain in pipeline.domains:
                if domain not in self.domains:
                    raise ValueError(
                        f"pipeline `{name}` lists domain `{domain}`, which is not defined"
                        f"{did_you_mean(domain, self.domains)}"
                    )
        return self

    def pipeline(self, name: str) -> PipelineConfig:
        """The pipeline ``name``: a configured one, a domain (a pipeline of one), or ``all``."""
        if name in self.pipelines:
            return self.pipelines[name]
        if name in self.domains:
            domain = self.domains[name]
            return PipelineConfig(
                domains=[name],
                schedule=domain.schedule,
                interval=domain.interval,
                catchup=domain.catchup,
                start=domain.start,
            )
        if name == "all":
            return PipelineConfig(domains=list(self.domains))
        known = [*self.pipelines, *self.domains, "all"]
        raise ConfigError(f"no pipeline or domain named `{name}`{did_you_mean(name, known)}")

    def scheduled(self) -> dict[str, PipelineConfig]:
        """Every pipeline with a schedule: configured ones and scheduled domains."""
        found = {name: self.pipeline(name) for name in [*self.pipelines, *self.domains]}
        return {name: pipeline for name, pipeline in found.items() if pipeline.schedule}


def check_cron(schedule: str) -> str:
    """``schedule`` when croniter reads it, else a ValueError saying how to write one."""
    if not croniter.is_valid(schedule):
        raise ValueError(
            f"`{schedule}` is not a cron expression; write five fields, e.g. `0 2 * * *` (02:00 daily) "
            "or `5 * * * *` (hourly), or @daily / @hourly"
        )
    return schedule


def did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


SOURCE_KINDS: dict[str, type[BaseModel]] = {
    "file": FileSource,
    "http": HttpSource,
    "python": PythonSource,
    "postgres": PostgresSource,
}


def source_tables(name: str, source: Source) -> list[tuple[str, str]]:
    """The (bronze table, silver entity) pairs a source writes."""
    if isinstance(source, PostgresSource):
        return [(f"{entity}__changes", entity) for entity in source.entities()]
    return [(name, source.entity or name)]


def _allowed_keys(path: list[str | int]) -> list[str]:
    """Keys valid at ``path`` (a validation error's location, source kind tag included), for "did
    you mean" hints."""
    model: type[BaseModel] = ProjectConfig
    parts = list(path)
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        annotation = field.annotation if field else None
        if get_origin(annotation) is dict:  # sources / domains: skip the user-chosen name
            annotation = get_args(annotation)[1]
            parts = parts[1:]
            if parts and str(parts[0]) in SOURCE_KINDS:
                annotation = SOURCE_KINDS[str(parts.pop(0))]
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return [field.alias or name for name, field in model.model_fields.items()]


def _location(path: list[str | int]) -> list[str | int]:
    """The error's location as the user wrote it: without the source kind tag."""
    if len(path) > 2 and path[0] == "sources" and str(path[2]) in SOURCE_KINDS:
        return [*path[:2], *path[3:]]
    return path


def _format_validation_error(error: ValidationError, file: str) -> ConfigError:
    first = error.errors()[0]
    tagged = list(first["loc"])
    location = _location(tagged)
    key = ".".join(str(part) for part in location)
    if first["type"] == "extra_forbidden":
        bad = str(location[-1])
        suggestion = did_you_mean(bad, _allowed_keys(tagged[:-1]))
        return ConfigError(
            f"unknown key `{bad}`{suggestion}",
            file=file,
            key=key,
            hint="remove it or fix its spelling; `lagoa init` writes a documented example",
        )
    if first["type"] == "missing":
        return ConfigError("is required but missing", file=file, key=key, hint=f"add `{location[-1]}:`")
    message = first["msg"].removeprefix("Value error, ")
    return ConfigError(message, file=file, key=key)


def _apply_environment(data: dict[str, Any]) -> dict[str, Any]:
    """Overlay ``LAGOA_<SECTION>_<KEY>`` environment variables on the file's settings."""
    for section, keys in (("storage", ("root",)), ("catalog", ("uri", "name")), ("state", ("uri",))):
        for key in keys:
            value = os.environ.get(f"LAGOA_{section.upper()}_{key.upper()}")
            if value:
                data.setdefault(section, {})
                if isinstance(data[section], dict):
                    data[section][key] = value
    if warehouse := os.environ.get("LAGOA_WAREHOUSE"):
        data["warehouse"] = warehouse
    return data


def load_config(path: Path) -> ProjectConfig:
    """Read and validate a project file; errors name the file, the key and the fix."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "not found", file=file, hint="run `lagoa init <dir>` to create a project, or pass --project"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot be read ({exc.__class__.__name__}: {exc})", file=file) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"is not valid YAML{where}: {problem}", file=file) from None
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping of settings (name:, sources:, …)", file=file)
    try:
        return ProjectConfig.model_validate(_apply_environment(data))
    except ValidationError as exc:
        raise _format_validation_error(exc, file) from None


def resolve_secrets(value: str) -> str:
    """Replace every ``${env:NAME}`` in ``value`` with the environment's value, at use time."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise SecretError(
                f"secret `{name}` is not set", hint=f"export {name}=… before running, or put it in your .env"
            )
        return os.environ[name]

    return SECRET_PATTERN.sub(lookup, value)


def redact(text: str, values: list[str]) -> str:
    """Remove secret values from text bound for output."""
    for value in values:
        if value:
            text = text.replace(value, "***")
    return text
