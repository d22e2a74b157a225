"""Whether a run's transform has anything to do: dbt is not started for a domain whose models
were built and published from exactly the inputs they would be built from now.

The inputs are everything a model may read or be shaped by: the lake tables the domain's models
read (each one's current metadata file: a commit makes a new one), as dbt's manifest traces them
after a build through ``source()`` and ``ref()`` (every table but gold before the first build),
the dbt project's files (its installed packages too) and the project's lagoa.yml and .env (by
content), and the data interval the models are given; and the warehouse file the models live in
must be the one they were built into. Not counted: gold (publishing writes it; a model that reads gold is rebuilt only when
something else changed) and the process environment (a model's ``env_var()`` set elsewhere).
Starting dbt costs seconds; these cost milliseconds (one catalog query for a SQL catalog).

A domain is recorded once its publish step succeeds, so a run that failed after building records
nothing and the next run builds again. The record lives beside the warehouse
(``<warehouse>.built.json``): it speaks of the models in that file, on this machine. Rebuilding
models forgets what other runs built from them (by the same lineage), so those build again.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lagoa.core.config import PROJECT_FILE
from lagoa.core.time import Interval

if TYPE_CHECKING:
    from lagoa.workspace import Workspace

SKIPPED_FOLDERS = {"target", "logs", ".lagoa"}
"""dbt's own output: not inputs of a model (its installed packages are: their macros are code)."""


def inputs(
    workspace: Workspace,
    interval: Interval | None,
    locations: dict[str, str | None],
    tables: list[str] | None = None,
) -> str:
    """A digest of everything the project's models are built from, as it is now (``locations``:
    the lake's tables' metadata files, ``Lake.metadata_locations()``); of the lake, only
    ``tables`` when given (what a domain's models read, see :func:`reads`)."""
    from lagoa.transform.profiles import dbt_project_dir
    from lagoa.transform.sources import SOURCES_FILE

    digest = hashlib.sha256()
    counted = sorted(locations) if tables is None else sorted(tables)
    for identifier in counted:
        if not identifier.startswith("gold."):  # gold is what publishing writes, not a model's input
            digest.update(f"table {identifier} {locations.get(identifier)}\n".encode())
    dbt_dir = dbt_project_dir(workspace)
    for path in _dbt_files(dbt_dir):
        if path.name == SOURCES_FILE:  # Lagoa writes it from the lake's tables, counted above
            continue
        digest.update(f"file {path} ".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for settings in (workspace.root / PROJECT_FILE, workspace.root / ".env"):  # .env: a model's env_var()
        if settings.is_file():
            digest.update(f"settings {settings.name} ".encode())
            digest.update(hashlib.sha256(settings.read_bytes()).digest())
    if interval is not None:
        digest.update(f"interval {interval.start.isoformat()} {interval.end.isoformat()}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Reads:
    """What some dbt nodes read, directly or through the models they read: lake tables
    (``silver.orders``) and models (dbt's ids, the nodes' own among them)."""

    tables: list[str]
    models: list[str]


def reads(workspace: Workspace, nodes: list[str]) -> Reads | None:
    """What the dbt ``nodes`` (ids) read, from the manifest the build just wrote: dbt's own
    lineage (``ref``, ``source``), so a model that names a lake table in plain SQL is not seen
    (its domain is then rebuilt only when something it refs or sources changes). None without
    a manifest that knows the nodes."""
    from lagoa.lake.catalog import NAMESPACES

    manifest = workspace.dbt_manifest_document()
    known = {**manifest.get("nodes", {}), **manifest.get("sources", {})}
    if not nodes or any(node not in known for node in nodes):
        return None
    tables: set[str] = set()
    models: set[str] = set()
    pending, seen = list(nodes), set(nodes)
    while pending:
        entry = known.get(pending.pop())
        if not isinstance(entry, dict):
            return None  # a node the manifest does not describe: its lineage is unknown
        if entry.get("resource_type") == "source":
            table = f"{entry.get('schema')}.{entry.get('identifier') or entry.get('name')}".lower()
            if table.split(".")[0] in NAMESPACES:
                tables.add(table)
            continue
        if entry.get("resource_type") == "model":
            models.add(str(entry.get("unique_id")))
        for upstream in entry.get("depends_on", {}).get("nodes", []):
            if upstream not in seen:
                seen.add(upstream)
                pending.append(upstream)
    return Reads(sorted(tables), sorted(models))


PATH_SETTINGS = ("model-paths", "macro-paths", "seed-paths", "snapshot-paths", "test-paths", "analysis-paths")
"""The settings of dbt_project.yml naming folders of the project's code and data."""


def _dbt_files(dbt_dir: Path) -> list[Path]:
    """Every file of the dbt project (dbt's own output at its top left out), and of the folders
    dbt_project.yml names outside it; symbolic links followed."""
    import yaml

    folders = [dbt_dir]
    try:
        settings = yaml.safe_load((dbt_dir / "dbt_project.yml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        settings = {}
    for name in PATH_SETTINGS:
        given = settings.get(name) if isinstance(settings, dict) else None
        for folder in given if isinstance(given, list) else []:
            resolved = (dbt_dir / str(folder)).resolve()
            if not resolved.is_relative_to(dbt_dir.resolve()):
                folders.append(resolved)
    found: dict[Path, None] = {}
    for folder in folders:
        for path in _files(folder, top=folder):
            found.setdefault(path, None)
    return list(found)


def _files(folder: Path, *, top: Path) -> list[Path]:
    found: list[Path] = []
    seen: set[Path] = set()
    for directory, folders, files in os.walk(folder, followlinks=True):
        here = Path(directory)
        real = here.resolve()
        if real in seen:  # a link back up the tree
            folders[:] = []
            continue
        seen.add(real)
        skipped = SKIPPED_FOLDERS if here == top else set()  # dbt's target/ and logs/ sit at the top
        folders[:] = sorted(f for f in folders if f not in skipped and not f.startswith("."))
        found.extend(here / name for name in sorted(files) if not name.startswith("."))
    return found


class Built:
    """What each domain's models were last built and published from, by which run, and the gold
    tables they were published to. Read and written whole, atomically; two processes writing at
    once may lose a record, which costs a rebuild, never a wrong skip."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.path = Path(f"{workspace.warehouse.path}.built.json")

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, Any]) -> None:
        temporary = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex}.tmp")
        temporary.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        temporary.replace(self.path)  # atomic: a reader sees the old record or the new one

    def unchanged(self, domain: str, interval: Interval | None, locations: dict[str, str | None]) -> bool:
        """Whether ``domain`` was built and published from the inputs it would be built from now
        (the lake's tables its models read, when known), into this warehouse file, and its gold
        tables are as it published them (``locations``: as now)."""
        record = self._read().get("domains", {}).get(domain)
        if not isinstance(record, dict):
            return False
        tables = record.get("tables")
        counted = [str(t) for t in tables] if isinstance(tables, list) else None
        if record.get("inputs") != inputs(self.workspace, interval, locations, counted):
            return False
        if record.get("warehouse") != self.workspace.warehouse.generation():
            return False
        gold = record.get("gold")
        return isinstance(gold, dict) and all(locations.get(table) == at for table, at in gold.items())

    def building(self, domain: str, run_id: str) -> None:
        """``domain`` builds in ``run_id``: only this run may record it (another run building it
        since would have replaced its models)."""
        with _LOCK:
            data = self._read()
            domains = {d: r for d, r in data.get("domains", {}).items() if d != domain}
            self._write({"domains": domains, "building": {**data.get("building", {}), domain: run_id}})

    def rebuilt(self, run_id: str, models: list[str] | None) -> None:
        """``models`` (dbt ids; None: unknown) were rebuilt in ``run_id``: what other runs built
        from them is forgotten (those of this run already saw them), and what they built from
        unknown models too."""
        with _LOCK:
            data = self._read()
            changed = set(models or [])

            def stands(record: dict[str, Any]) -> bool:
                read = record.get("models")
                if record.get("run") == run_id:
                    return True
                return models is not None and isinstance(read, list) and not changed & set(read)

            domains = {d: r for d, r in data.get("domains", {}).items() if stands(r)}
            self._write({**data, "domains": domains})

    def published(
        self, domain: str, digest: str, run_id: str, gold: list[str], read: Reads | None = None
    ) -> None:
        """``domain`` was built from ``digest`` in ``run_id`` and published to ``gold``; ``read``:
        what its models read (None: unknown, so every lake table counts for it)."""
        now = self.workspace.lake.metadata_locations()  # gold as this publish left it
        with _LOCK:
            data = self._read()
            if data.get("building", {}).get(domain) != run_id:
                return  # another run built the domain's models since: they are not these
            record = {
                "inputs": digest,
                "run": run_id,
                "warehouse": self.workspace.warehouse.generation(),
                "gold": {table: now.get(table) for table in gold},
                "tables": read.tables if read is not None else None,
                "models": read.models if read is not None else None,
            }
            self._write({**data, "domains": {**data.get("domains", {}), domain: record}})

    def forget(self) -> None:
        """Models or gold were built or published by hand (`lagoa transform`, `dbt`, `publish`):
        the next run builds every domain."""
        with _LOCK:
            self.path.unlink(missing_ok=True)


_LOCK = threading.Lock()
