"""What a stage may use of a project, and what it is told about the work at hand.

A :class:`Workspace` is a project's folder and settings with its storage, Iceberg lake and DuckDB
warehouse. A :class:`StageContext` adds one piece of work's run id, data interval, clock and
reporter. The orchestration layer builds both; a stage receives them, never the ``Project``, and
so cannot reach another stage through it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lagoa.core.config import ProjectConfig, Redactor, resolve_secrets
from lagoa.core.report import Reporter, SilentReporter
from lagoa.core.sql import quote_literal
from lagoa.core.time import Interval
from lagoa.engine import Warehouse, connect
from lagoa.lake import Lake
from lagoa.lake.catalog import sqlite_uri
from lagoa.storage import Storage, open_storage

if TYPE_CHECKING:
    import duckdb


class Workspace:
    """A project's folder and settings, wired to its storage, lake and warehouse (each opened on
    first use, so that commands which need none of them stay fast)."""

    def __init__(
        self, root: Path, config: ProjectConfig, views: Callable[[], dict[str, str]] | None = None
    ) -> None:
        self.root = root.resolve()
        self.config = config
        self._views = views
        self._manifest: tuple[tuple[int, int], dict[str, Any]] | None = None
        """Extra warehouse views (``gold.<model>`` → SQL), given by whoever knows of them."""

    @property
    def dbt_manifest(self) -> Path:
        """Where dbt writes the project's manifest (its models, their tags and meta)."""
        return self.root / ".lagoa" / "dbt" / "target" / "manifest.json"

    def dbt_manifest_document(self) -> dict[str, Any]:
        """dbt's manifest, parsed ({} before dbt has parsed the project); parsed again only
        when a dbt invocation has rewritten it. A dbt build of another task may be rewriting it
        in place: a torn read fails to parse, and is read again once that build is done."""
        from lagoa.engine.warehouse import warehouse_lock

        try:
            return self._read_manifest()
        except json.JSONDecodeError:
            with warehouse_lock(self.warehouse.path):
                return self._read_manifest()

    def _read_manifest(self) -> dict[str, Any]:
        try:
            stat = self.dbt_manifest.stat()
        except FileNotFoundError:
            return {}
        version = (stat.st_mtime_ns, stat.st_size)
        cached = self._manifest
        if cached is not None and cached[0] == version:
            return cached[1]
        document: dict[str, Any] = json.loads(self.dbt_manifest.read_text(encoding="utf-8"))
        self._manifest = (version, document)
        return document

    @cached_property
    def redactor(self) -> Redactor:
        """Every form of the project's secrets, resolved when first needed, to keep out of
        messages, logs, the run history and landed pages."""
        return Redactor.of(self.config)

    @cached_property
    def storage(self) -> Storage:
        settings = self.config.storage
        return open_storage(settings.root, self.root, region=settings.region, endpoint=settings.endpoint)

    @cached_property
    def lake(self) -> Lake:
        return Lake(
            sqlite_uri(resolve_secrets(self.config.catalog.uri), self.root),
            self.storage,
            self.config.catalog.name,
        )

    @cached_property
    def warehouse(self) -> Warehouse:
        path = Path(self.config.warehouse)
        return Warehouse(path if path.is_absolute() else self.root / path, self._views, self.storage.s3)

    def engine(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection for loading data: spills to the lake's .tmp folder, and
        drops insertion order (nothing Lagoa writes depends on it, and it costs memory). Loading
        reads files and writes Parquet, so it skips the Iceberg extensions (0.15 s a start)."""
        con = connect(extensions=(), s3=self.storage.s3)
        spill = self.storage.scratch()
        con.execute(f"SET temp_directory = {quote_literal(str(spill))}")
        con.execute("SET preserve_insertion_order = false")
        return con


@dataclass(frozen=True)
class StageContext:
    """One piece of work: where (the workspace), for which run and interval, reporting how."""

    workspace: Workspace
    run_id: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    interval: Interval | None = None
    """The run's data interval, when the run has one (``lagoa ingest`` has none)."""
    reporter: Reporter = field(default_factory=SilentReporter)

    @property
    def lake(self) -> Lake:
        return self.workspace.lake

    @property
    def storage(self) -> Storage:
        return self.workspace.storage
