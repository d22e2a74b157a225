"""The lake: an Iceberg catalog (SQL catalog on SQLite by default) over Lagoa's storage.

Every change to a table is one Iceberg commit. The commit's snapshot summary carries Lagoa's
bookkeeping (run id, the batches it contains, source positions), so the lake itself, not a side
database, says what has been loaded: a crash before a commit leaves the previous snapshot intact,
and a re-run finds its work either fully committed or not at all.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lagoa.core.errors import CommitConflictError, LakeError, LeaseError
from lagoa.core.names import BATCHES
from lagoa.lake.catalogs import Names, Opened, is_sql, open_catalog, sqlite_locations
from lagoa.lake.commits import record
from lagoa.lake.datafiles import data_file, forget, take
from lagoa.lake.fence import check_fence, guard

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.manifest import DataFile
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table
    from pyiceberg.table.metadata import TableMetadata
    from pyiceberg.types import IcebergType

    from lagoa.storage import Storage

NAMESPACES = ("raw", "bronze", "silver", "gold")
NO_COMMIT_RETRIES = "commit.retry.num-retries"
"""Set to 0 on every table: pyiceberg would otherwise re-apply a conflicting append on top of the
other writer's snapshot, committing a batch twice. Lagoa retries the whole step instead, which
reads the ledger again."""
COMPRESSION = "write.parquet.compression-codec"
COMPRESSION_LEVEL = "write.parquet.compression-level"


@dataclass
class StagedCommit:
    """The files one :meth:`Lake.write` block stages, and the table as its commit left it."""

    table: Table
    folder: str
    """The staging folder's location (a path, or ``s3://…``)."""
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    """The snapshot summary; the block may add what it learns while writing (a watermark)."""
    committed: Table | None = None


@dataclass(frozen=True)
class TableInfo:
    """What ``lagoa tables`` shows about a table."""

    identifier: str
    rows: int
    files: int
    snapshots: int
    metadata_location: str | None


def sqlite_uri(uri: str, project_dir: Path) -> str:
    """Make a relative ``sqlite:///path`` absolute against the project folder, and let a writer
    wait for another (tasks commit to the catalog in parallel) rather than fail at once."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/") and uri != prefix + ":memory:":
        path = project_dir / uri.removeprefix(prefix)
        path.parent.mkdir(parents=True, exist_ok=True)
        uri = prefix + str(path.resolve())
    if uri.startswith(prefix) and "timeout=" not in uri:
        uri += ("&" if "?" in uri else "?") + "timeout=30"
    return uri


def local_path(location: str) -> str:
    """A table file's location as engines open it: a plain path (a ``file://`` URI from an older
    Lagoa taken literally, as pyiceberg takes it), or an ``s3://`` URL as it is."""
    return location.removeprefix("file://")


def _data_file(table: Table, metadata: TableMetadata, path: str) -> DataFile:
    """A new file's manifest entry: from DuckDB's statistics of the file when it wrote it,
    else from the file's footer (pyiceberg's reader)."""
    stats = take(path)
    entry = data_file(metadata, path, stats) if stats is not None else None
    if entry is None:
        from pyiceberg.io.pyarrow import parquet_file_to_data_file

        entry = parquet_file_to_data_file(table.io, metadata, path)
    return entry


def _create_namespace(opened: Opened, namespace: str, location: str) -> None:
    """Create ``namespace`` unless it exists, also when another process creates it at the
    same moment: pyiceberg checks, then inserts, and the loser's insert breaks a unique key."""
    remote = opened.names.remote(namespace)
    try:
        own = not (opened.sql or opened.places_tables)
        opened.catalog.create_namespace_if_not_exists(remote, {"location": location} if own else {})
    except Exception as exc:
        if (remote,) not in opened.catalog.list_namespaces():
            raise LakeError(
                f"cannot create the namespace `{remote}` in the Iceberg catalog: {exc}",
                hint="create it (Glue: the database) beforehand, or let Lagoa's role create it",
            ) from None


class Lake:
    """The Iceberg tables of one project."""

    def __init__(self, catalog_uri: str, storage: Storage, name: str = "lagoa") -> None:
        self.storage = storage
        self._uri = catalog_uri
        self._catalog_name = name
        self._sql = is_sql(catalog_uri)

    @cached_property
    def _opened(self) -> Opened:
        """The catalog, opened on first use: a reader that only lists metadata locations of a
        SQLite catalog never imports pyiceberg (see :meth:`metadata_locations`)."""
        opened = open_catalog(self._uri, self.storage.warehouse, self._catalog_name, self.storage.s3)
        if opened.sql:
            guard(opened.catalog.engine)  # type: ignore[attr-defined]  # a run that lost its lease commits nothing
        existing = {".".join(namespace) for namespace in opened.catalog.list_namespaces()}
        for namespace in NAMESPACES:
            if opened.names.remote(namespace) not in existing:
                _create_namespace(opened, namespace, self._location(namespace))
        return opened

    @property
    def catalog(self) -> Catalog:
        return self._opened.catalog

    @property
    def _names(self) -> Names:
        return self._opened.names

    @property
    def _places_tables(self) -> bool:
        return self._opened.places_tables

    def close(self) -> None:
        """Close the catalog's database connections (a server's are worth giving back)."""
        if self._sql and "_opened" in self.__dict__:
            self.catalog.engine.dispose()  # type: ignore[attr-defined]

    def _location(self, identifier: str) -> str:
        """Where a namespace's or a table's files go: ``<root>/<namespace>[/<table>]``, whatever
        the catalog, so a lake has the same layout on every catalog."""
        return f"{self.storage.warehouse.rstrip('/')}/{identifier.replace('.', '/')}"

    def name(self, table: Table) -> str:
        """The table's identifier as Lagoa names it (``bronze.orders``), whatever the catalog's."""
        return self._names.local(".".join(table.name()))

    def table(self, identifier: str) -> Table | None:
        from pyiceberg.exceptions import NoSuchTableError

        try:
            return self.catalog.load_table(self._names.remote(identifier))
        except NoSuchTableError:
            return None
        except ValueError:  # not `namespace.name` (no namespace, an empty part): no such table
            return None

    def key(self, location: str) -> str:
        """The storage key of a location under the lake's root."""
        root = self.storage.warehouse.rstrip("/") + "/"
        if not location.startswith(root):
            raise LakeError(f"{location} is outside the lake ({root})")
        return location[len(root) :]

    def drop_table(self, identifier: str) -> None:
        self.catalog.drop_table(self._names.remote(identifier))

    def create_table(
        self,
        identifier: str,
        schema: Schema,
        spec: PartitionSpec | None = None,
        compression: str = "zstd",
        level: int = 1,
    ) -> Table:
        """Create a table; ``compression`` and ``level`` are the Parquet codec of its data files.

        zstd level 1 measured here: files 11% larger than level 3, written in 2/3 of the time.
        """
        from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC

        return self.catalog.create_table_if_not_exists(
            self._names.remote(identifier),
            schema=schema,
            location=None if self._places_tables else self._location(identifier),
            partition_spec=spec or UNPARTITIONED_PARTITION_SPEC,
            properties={
                "format-version": "2",
                COMPRESSION: compression,
                COMPRESSION_LEVEL: str(level),
                NO_COMMIT_RETRIES: "0",
            },
        )

    def identifiers(self) -> list[str]:
        listed = self._listed()
        if listed is not None:
            return sorted(listed)
        names: list[str] = []
        for namespace in NAMESPACES:
            remote = self.catalog.list_tables(self._names.remote(namespace))
            names.extend(f"{namespace}.{ident[-1]}" for ident in remote)
        return sorted(names)

    @property
    def lists_locations(self) -> bool:
        """Whether :meth:`metadata_locations` is one query (a SQL catalog), not a load of each table."""
        return self._sql

    def metadata_locations(self) -> dict[str, str | None]:
        """Every table's current metadata file, by identifier: one query of a SQL catalog's
        database, a load of each table for the others. A table whose location is unchanged is
        unchanged, so readers can keep what they read of it."""
        listed = self._listed()
        if listed is not None:
            return listed
        if not self._sql:
            found = {identifier: self.table(identifier) for identifier in self.identifiers()}
            return {identifier: t.metadata_location for identifier, t in found.items() if t is not None}
        import sqlalchemy as sa
        from pyiceberg.catalog.sql import IcebergTables

        wanted = {self._names.remote(namespace): namespace for namespace in NAMESPACES}
        query = sa.select(
            IcebergTables.table_namespace, IcebergTables.table_name, IcebergTables.metadata_location
        ).where(IcebergTables.catalog_name == self.catalog.name)
        with self.catalog.engine.connect() as con:  # type: ignore[attr-defined]
            rows = con.execute(query).all()
        return {
            f"{wanted[namespace]}.{name}": location
            for namespace, name, location in rows
            if namespace in wanted
        }

    def evolve(self, table: Table, columns: Iterable[tuple[str, IcebergType]]) -> Table:
        """Add the columns the table lacks and widen those whose type changed.

        A schema change alone adds no snapshot, so it is harmless if the data commit then fails;
        callers evolve first so that the files they write carry the final field ids.
        """
        current = {f.name: f.field_type for f in table.schema().fields}
        changes = [(name, t) for name, t in columns if current.get(name) != t]
        if not changes:
            return table
        with table.update_schema() as update:
            for name, field_type in changes:
                if name in current:
                    update.update_column(name, field_type=field_type)
                else:
                    update.add_column(name, field_type)
        return table.refresh()

    def describe(self, table: Table) -> TableInfo:
        snapshot = table.current_snapshot()
        summary = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
        return TableInfo(
            identifier=self.name(table),
            rows=int(summary.get("total-records", 0)),
            files=int(summary.get("total-data-files", 0)),
            snapshots=len(table.metadata.snapshots),
            metadata_location=table.metadata_location if snapshot else None,
        )

    def staging_folder(self, table: Table) -> str:
        """A fresh folder under the table's data location for one commit's files."""
        folder = f"{local_path(table.location()).rstrip('/')}/data/commit-{uuid.uuid4().hex}"
        if self.storage.s3 is None:
            Path(folder).mkdir(parents=True, exist_ok=True)
        return folder

    @contextmanager
    def write(
        self, table: Table, *, properties: dict[str, Any], carry_forward: bool = False
    ) -> Iterator[StagedCommit]:
        """One commit to ``table``: the block writes data files under ``staged.folder`` and lists
        them in ``staged.add`` (and files to drop in ``staged.remove``); when it exits cleanly they
        are committed at once, with ``staged.properties`` (``properties`` and what the block
        added) in the snapshot summary (see :meth:`commit`).

        If the block fails, or the commit is refused (another writer came first, or the run lost
        its lease), the staged folder is deleted. A failure of unknown outcome leaves it: files nothing references are
        removed by ``lagoa expire``, whereas deleting committed files would break the table.
        """
        staged = StagedCommit(table, self.staging_folder(table), properties=dict(properties))
        try:
            yield staged
        except BaseException:
            forget(staged.add)
            self.storage.remove_tree(staged.folder)
            raise
        try:
            staged.committed = self.commit(
                table,
                add=staged.add,
                remove=staged.remove,
                properties=staged.properties,
                carry_forward=carry_forward,
            )
        except (CommitConflictError, LeaseError):  # refused: nothing of it was committed
            self.storage.remove_tree(staged.folder)
            raise

    def commit(
        self,
        table: Table,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        properties: dict[str, Any],
        carry_forward: bool = False,
    ) -> Table:
        """Add and remove data files in one Iceberg commit.

        ``properties`` go into the snapshot summary (values are JSON-encoded unless strings). The
        commit is optimistic on ``table`` as loaded: if another writer committed since, it fails
        with a (transient) CommitConflictError, and so does a batch the table already holds
        (unless the commit only ``carry_forward``s the ledger before old snapshots expire).
        """
        from pyiceberg.exceptions import CommitFailedException

        name = self.name(table)
        if table.metadata.properties.get(NO_COMMIT_RETRIES) != "0":  # a table from an older Lagoa
            try:
                table = table.transaction().set_properties({NO_COMMIT_RETRIES: "0"}).commit_transaction()
            except CommitFailedException as exc:
                raise CommitConflictError(f"commit to `{name}` failed: {exc}") from None
        batches = properties.get(BATCHES)
        if batches and not carry_forward and set(batches) & self.committed(table):
            raise CommitConflictError(f"another writer committed the same batches to `{name}` first")

        summary = {
            key: value if isinstance(value, str) else json.dumps(value) for key, value in properties.items()
        }
        remove_paths = set(remove)
        try:
            with table.transaction() as tx:
                producer: Any
                if remove_paths:
                    doomed = [
                        task.file for task in table.scan().plan_files() if task.file.file_path in remove_paths
                    ]
                    if len(doomed) != len(remove_paths):
                        raise CommitConflictError(f"table `{name}` changed while Lagoa was rewriting it")
                    producer = tx.update_snapshot(snapshot_properties=summary).overwrite()
                else:
                    producer = tx.update_snapshot(snapshot_properties=summary).fast_append()
                    doomed = []
                # Read once: pyiceberg rebuilds and deep-copies the metadata on each read.
                metadata = tx.table_metadata
                with producer as update_files:
                    for data_file in doomed:
                        update_files.delete_data_file(data_file)
                    for path in add:
                        update_files.append_data_file(_data_file(table, metadata, path))
                if not self._sql:
                    # A SQL catalog checks the fence inside its own transaction (lake/fence.py);
                    # another catalog's swap is one request, so the check comes just before it.
                    check_fence()
        except CommitFailedException as exc:
            raise CommitConflictError(f"commit to `{name}` failed: {exc}") from None
        table = table.refresh()
        snapshot = table.current_snapshot()
        added = (
            snapshot.summary.additional_properties.get("added-records")
            if snapshot and snapshot.summary
            else None
        )
        record(name, int(added or 0))
        return table

    def committed(self, table: Table | None, key: str = BATCHES) -> set[str]:
        """Every value Lagoa recorded under ``key`` in the table's snapshot summaries."""
        values: set[str] = set()
        if table is None:
            return values
        for snapshot in table.metadata.snapshots:
            raw = snapshot.summary.additional_properties.get(key) if snapshot.summary else None
            if raw:
                values.update(json.loads(raw))
        return values

    def _listed(self) -> dict[str, str | None] | None:
        """Every table's metadata location from a SQLite catalog's database, read with sqlite3
        while the catalog is not open (None otherwise, or when it is not SQLite)."""
        if "_opened" in self.__dict__:
            return None
        listed = sqlite_locations(self._uri, self._catalog_name)
        if listed is None:
            return None
        return {f"{ns}.{name}": location for ns, name, location in listed if ns in NAMESPACES}

    def _document(self, identifier: str) -> dict[str, Any] | None:
        """The table's current metadata, read straight from its file when the catalog lists
        locations without pyiceberg (SQLite, a lake on local disk): ``{}`` when there is no such
        table, None when it cannot be read so (then pyiceberg loads the table). A step with
        nothing new to do then never imports pyiceberg (~0.5 s)."""
        listed = self._listed() if self.storage.s3 is None else None
        if listed is None:
            return None
        location = listed.get(identifier)
        if location is None:
            return {}
        try:
            document = json.loads(Path(local_path(location)).read_bytes())
        except (OSError, ValueError):  # compressed, or not readable here
            return None
        return document if isinstance(document, dict) and document else None

    def ledger(self, identifier: str, key: str = BATCHES) -> set[str]:
        """:meth:`committed` of the table as it is now, without loading it when it can."""
        document = self._document(identifier)
        if document is None:
            return self.committed(self.table(identifier), key)
        values: set[str] = set()
        for snapshot in document.get("snapshots") or []:
            raw = (snapshot.get("summary") or {}).get(key)
            if raw:
                values.update(json.loads(raw))
        return values

    def columns(self, identifier: str) -> list[str] | None:
        """The table's column names now (None: no such table), without loading it when it can."""
        document = self._document(identifier)
        if document is None:
            table = self.table(identifier)
            return None if table is None else [f.name for f in table.schema().fields]
        if not document:
            return None
        schemas = {s.get("schema-id"): s for s in document.get("schemas") or []}
        schema = schemas.get(document.get("current-schema-id"), {})
        return [str(f.get("name")) for f in schema.get("fields") or []]

    def rows(self, identifier: str) -> int:
        """The table's rows now (0: no such table), without loading it when it can."""
        document = self._document(identifier)
        if document is None:
            table = self.table(identifier)
            return self.describe(table).rows if table is not None else 0
        current = document.get("current-snapshot-id")
        snapshots: list[dict[str, Any]] = document.get("snapshots") or []
        snapshot = next((s for s in snapshots if s.get("snapshot-id") == current), {})
        return int((snapshot.get("summary") or {}).get("total-records", 0))

    def newest(self, identifier: str, key: str) -> str | None:
        """:meth:`latest` of the table as it is now (None: no such table), without loading it
        when it can."""
        document = self._document(identifier)
        if document is None:
            return self.latest(self.table(identifier), key)
        snapshots: list[dict[str, Any]] = document.get("snapshots") or []
        for snapshot in sorted(snapshots, key=lambda s: s.get("sequence-number") or 0, reverse=True):
            summary = snapshot.get("summary") or {}
            if key in summary:
                return str(summary[key])
        return None

    def latest(self, table: Table | None, key: str) -> str | None:
        """The value of ``key`` in the newest snapshot summary that has it."""
        if table is None:
            return None
        for snapshot in sorted(table.metadata.snapshots, key=lambda s: s.sequence_number or 0, reverse=True):
            if snapshot.summary and key in snapshot.summary.additional_properties:
                return snapshot.summary.additional_properties[key]
        return None

    def data_files(self, table: Table | None, row_filter: Any = None) -> list[str]:
        """Local paths of the table's live data files (optionally pruned by a filter)."""
        if table is None or table.current_snapshot() is None:
            return []
        scan = table.scan(row_filter=row_filter) if row_filter is not None else table.scan()
        return [local_path(task.file.file_path) for task in scan.plan_files()]
