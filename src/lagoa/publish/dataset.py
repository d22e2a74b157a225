"""CTAS-style publish: a model written as a Hive-partitioned Parquet dataset at a location, the
whole dataset replaced on each publish (reference architecture C's ``orders_summary``).

Each publish writes a new version folder next to the location, then swaps the location (a
symbolic link on local disk; on S3, the pointer object ``<location>.current`` naming the version)
to it with one atomic rename (or one PUT). A reader therefore sees either the old dataset or
the new one, never a half-written or mixed set of files; the version before the current one is
kept for readers still reading it (readers resolve the link once, as the warehouse view does),
older ones are deleted. Publishing the same run again is a no-op.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from lagoa.core.config import PublishSettings
from lagoa.core.errors import LakeError
from lagoa.core.sql import quote_identifier, quote_literal
from lagoa.engine.warehouse import warehouse_lock

if TYPE_CHECKING:
    from lagoa.workspace import StageContext, Workspace

VERSIONS = ".versions"
POINTER = ".current"


@dataclass(frozen=True)
class DatasetResult:
    location: str
    version: str
    rows: int
    files: int
    skipped: bool = False


def dataset_path(workspace: Workspace, settings: PublishSettings) -> Path:
    """The dataset's location on local disk."""
    assert settings.location is not None
    return Path(workspace.storage.location(settings.location))


def publish_dataset(context: StageContext, model: str, settings: PublishSettings) -> DatasetResult:
    """Write ``main.<model>`` as a new version of the dataset and switch the location to it. One
    publish at a time per location: a lock file keeps two from pruning each other's versions (on
    S3 the lock is on this machine: publish a dataset from one scheduler)."""
    workspace, run_id = context.workspace, context.run_id
    assert settings.location is not None
    on_s3 = workspace.storage.s3 is not None
    location = dataset_path(workspace, settings) if not on_s3 else None
    locks = workspace.root / ".lagoa" / "locks" if on_s3 else dataset_path(workspace, settings).parent
    locks.mkdir(parents=True, exist_ok=True)
    name = settings.location.strip("/").replace("/", "_") if on_s3 else dataset_path(workspace, settings).name
    with (
        (locks / f".{name}.lock").open("w") as lock,
        warehouse_lock(workspace.warehouse.path),
    ):
        fcntl.flock(lock, fcntl.LOCK_EX)
        if location is None:
            return _publish_object_store(workspace, model, settings, run_id)
        return _publish(workspace, model, settings, location, run_id)


def _copy(workspace: Workspace, model: str, settings: PublishSettings, target: str) -> int:
    """Write the model into the folder ``target``; returns the rows."""
    con = workspace.warehouse.memory()
    try:
        con.execute(f"ATTACH {quote_literal(str(workspace.warehouse.path))} AS warehouse (READ_ONLY)")
        options = ["FORMAT parquet", "COMPRESSION zstd"]
        if settings.partition_by:
            columns = ", ".join(quote_identifier(c) for c in settings.partition_by)
            options += [f"PARTITION_BY ({columns})", "FILENAME_PATTERN 'part-{uuid}'"]
        order = (
            f" ORDER BY {', '.join(quote_identifier(c) for c in settings.sort_by)}"
            if settings.sort_by
            else ""
        )
        # Without partitions, COPY writes one file: give it a name inside the version folder.
        where = target if settings.partition_by else f"{target}/part-0.parquet"
        (rows,) = con.execute(
            f"COPY (SELECT * FROM warehouse.main.{quote_identifier(model)}{order}) "
            f"TO {quote_literal(where)} ({', '.join(options)})"
        ).fetchone() or (0,)
        return int(rows)
    finally:
        con.close()


def _publish_object_store(
    workspace: Workspace, model: str, settings: PublishSettings, run_id: str
) -> DatasetResult:
    """The publish on S3: the version under ``<location>.versions/<run id>/``, then the pointer
    object ``<location>.current`` swapped to it in one PUT; older versions deleted after."""
    storage = workspace.storage
    assert settings.location is not None
    key = settings.location.strip("/")
    versions = f"{key}{VERSIONS}"
    pointer = _pointer(workspace, settings)
    if pointer is not None and pointer["version"] == run_id:
        return DatasetResult(storage.location(key), run_id, 0, 0, skipped=True)
    target = storage.location(f"{versions}/{run_id}")
    storage.remove_tree(target)  # a version left half-written by a killed run
    try:
        rows = _copy(workspace, model, settings, target)
    except duckdb.Error as exc:
        storage.remove_tree(target)
        raise LakeError(
            f"cannot publish `{model}` to {storage.location(key)}: {str(exc).splitlines()[0]}"
        ) from None
    files = [loc for loc, _ in storage.files_under(target) if loc.endswith(".parquet")]
    record = {"version": run_id, "location": target, "rows": rows, "files": len(files)}
    storage.put_bytes(f"{key}{POINTER}", (json.dumps(record, indent=2) + "\n").encode())
    keep = {target, pointer["location"] if pointer else None}
    stale = [
        loc for loc, _ in storage.files_under(storage.location(versions)) if loc.rsplit("/", 1)[0] not in keep
    ]
    storage.remove(loc for loc in stale if not any(loc.startswith(f"{k}/") for k in keep if k))
    return DatasetResult(storage.location(key), run_id, rows, len(files))


def _pointer(workspace: Workspace, settings: PublishSettings) -> dict[str, str] | None:
    assert settings.location is not None
    stored = workspace.storage.read_bytes(f"{settings.location.strip('/')}{POINTER}")
    return dict(json.loads(stored)) if stored else None


def _publish(
    workspace: Workspace, model: str, settings: PublishSettings, location: Path, run_id: str
) -> DatasetResult:
    versions = location.parent / f"{location.name}{VERSIONS}"
    target = versions / run_id
    if location.is_symlink() and Path(os.readlink(location)).name == run_id:
        return DatasetResult(str(location), run_id, 0, 0, skipped=True)
    if location.exists() and not location.is_symlink():
        raise LakeError(
            f"{location} exists and is not a dataset Lagoa published",
            hint="move it away, or publish to another location",
        )
    shutil.rmtree(target, ignore_errors=True)  # a version left half-written by a killed run
    versions.mkdir(parents=True, exist_ok=True)
    if not settings.partition_by:
        target.mkdir(parents=True)
    try:
        rows = _copy(workspace, model, settings, str(target))
    except duckdb.Error as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise LakeError(f"cannot publish `{model}` to {location}: {str(exc).splitlines()[0]}") from None
    files = len(list(target.rglob("*.parquet")))
    previous = Path(os.readlink(location)).name if location.is_symlink() else None
    _switch(location, target)
    for old in versions.iterdir():  # older versions, and any a killed publish left half-written
        if old.name not in (target.name, previous):
            shutil.rmtree(old, ignore_errors=True)
    return DatasetResult(str(location), run_id, int(rows), files)


def _switch(location: Path, target: Path) -> None:
    """Point ``location`` at ``target`` in one atomic rename of a fresh link over the old one."""
    link = location.parent / f".{location.name}.{target.name}.link"
    link.unlink(missing_ok=True)
    link.symlink_to(os.path.relpath(target, location.parent), target_is_directory=True)
    os.replace(link, location)


def dataset_view(workspace: Workspace, settings: PublishSettings) -> str | None:
    """SQL reading the dataset (for the warehouse's ``gold`` view), or None before the first publish."""
    if workspace.storage.s3 is not None:
        pointer = _pointer(workspace, settings)
        if pointer is None or not int(pointer.get("files", 0)):
            return None
        pattern = f"{pointer['location']}/**/*.parquet"
        return f"SELECT * FROM read_parquet({quote_literal(pattern)}, hive_partitioning=true)"
    location = dataset_path(workspace, settings)
    if not location.exists() or not any(location.resolve().rglob("*.parquet")):
        return None  # not published yet, or the model had no rows
    # The version the location points at now: a query keeps reading it even if a publish swaps
    # the location meanwhile (that version is kept until the next swap after).
    pattern = str(location.resolve() / "**" / "*.parquet")
    return f"SELECT * FROM read_parquet({quote_literal(pattern)}, hive_partitioning=true)"
