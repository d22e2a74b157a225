"""The ``sources:`` section: files, HTTP APIs, Python generators and Postgres databases, and the
bronze and silver tables each writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, field_validator, model_validator

from lagoa.core.config.base import (
    DECIMAL_TYPE,
    PARTITION_FIELD,
    TYPE_NAMES,
    Model,
    did_you_mean,
    partition_fields,
    table_name,
)
from lagoa.core.errors import ConfigError
from lagoa.core.names import CHANGES_SUFFIX, LINEAGE, SYSTEM_COLUMNS
from lagoa.core.time import parse_duration


class CsvOptions(Model):
    """CSV dialect; anything left unset is detected from the file."""

    delimiter: str | None = None
    header: bool | None = None
    quote: str | None = None
    escape: str | None = None
    encoding: Literal["utf-8", "utf-16", "latin-1"] = "utf-8"
    max_line_size: int = Field(default=2_097_152, ge=1)
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

    @field_validator("entity")
    @classmethod
    def _entity(cls, value: str | None) -> str | None:
        return None if value is None else table_name(value, "entity")

    def check_columns(
        self, source: str, columns: list[str], required: Mapping[str, str] | None = None
    ) -> None:
        """Raise a ConfigError if a setting names a column that is not in ``columns`` (the data's)
        nor one of Lagoa's lineage columns: checked before anything lands, as silver needs them.
        A file source's declared ``columns`` must be there too (a batch of an HTTP or Python source
        may lack an optional field); ``required`` adds columns that others name (a suite's, keyed
        by column, valued by what names it)."""
        known = [*columns, *(name for name, _ in LINEAGE)]
        wanted = [(f"sources.{source}.primary_key", key) for key in self.primary_key]
        if isinstance(self, FileSource):
            wanted += [(f"sources.{source}.columns.{column}", column) for column in self.columns]
        wanted += [(f"sources.{source}.ordering", self.ordering)] if self.ordering else []
        for field in self.partition_by:
            match = PARTITION_FIELD.match(field)
            wanted.append(
                (f"sources.{source}.partition_by", (match.group(2) or match.group(3)) if match else field)
            )
        if self.cursor:
            setting = "cursor" if isinstance(self, FileSource) else "incremental.field"
            wanted.append((f"sources.{source}.{setting}", self.cursor))
        wanted += [(label, column) for column, label in (required or {}).items()]
        shown = [column for column in columns if column not in SYSTEM_COLUMNS]
        for key, column in wanted:
            if column not in known:
                raise ConfigError(
                    f"column `{column}` is not in the data of source `{source}`{did_you_mean(column, shown)}",
                    key=key,
                    hint=f"the data has: {', '.join(shown[:20])}{' …' if len(shown) > 20 else ''}",
                )

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
    """``cdc``: the logical replication slot (created if missing); by default
    ``lagoa_<source>_<lake id>``, unique to the lake. A lake keeps the slot it set up."""
    publication: str | None = None
    """``cdc``: the publication of the tables (created if missing); named like the slot."""
    flush_interval: float = Field(default=1.0, gt=0)
    """``cdc``: seconds between flushes to the lake while changes arrive."""
    flush_rows: int = Field(default=50_000, ge=1)
    """``cdc``: changes that trigger a flush before the interval is up (whole transactions)."""
    max_retained_wal_mb: int = Field(default=1024, ge=1)
    """``cdc``: warn when the slot makes Postgres keep more WAL than this (MB)."""

    def entities(self) -> list[str]:
        """The lake name of each listed table: its name without the schema."""
        return [table.split(".")[-1] for table in self.tables]

    @field_validator("tables")
    @classmethod
    def _table_names(cls, value: list[str]) -> list[str]:
        for table in value:
            if table.count(".") > 1:
                raise ValueError(f"table `{table}` is neither `table` nor `schema.table`")
            table_name(table.split(".")[-1], "table")
        return value


def source_kind(value: Any) -> Any:
    """A source's ``kind`` (``file`` when unset); None for what is no mapping, which pydantic
    reports as such. Named: pydantic's errors name the discriminator ("unknown source kind")."""
    if isinstance(value, dict):
        return value.get("kind") or "file"
    return getattr(value, "kind", None)


Source = Annotated[
    Annotated[FileSource, Tag("file")]
    | Annotated[HttpSource, Tag("http")]
    | Annotated[PythonSource, Tag("python")]
    | Annotated[PostgresSource, Tag("postgres")],
    Discriminator(source_kind),
]


SOURCE_KINDS: dict[str, type[BaseModel]] = {
    "file": FileSource,
    "http": HttpSource,
    "python": PythonSource,
    "postgres": PostgresSource,
}


def source_tables(name: str, source: Source) -> list[tuple[str, str]]:
    """The (bronze table, silver entity) pairs a source writes."""
    if isinstance(source, PostgresSource):
        return [(f"{entity}{CHANGES_SUFFIX}", entity) for entity in source.entities()]
    return [(name, source.entity or name)]
