"""CTAS-style publish: a model written as a Hive-partitioned Parquet dataset at a location, the
whole dataset replaced on each publish (reference architecture C's ``orders_summary``).

Each publish writes a new version folder next to the location, then swaps the location (a
symbolic link) to it with one atomic rename. A reader therefore sees either the old dataset or
the new one, never a half-written or mixed set of files; the version before the current one is
kept for readers still reading it (readers resolve the link once, as the warehouse view does),
older ones are deleted. Publishing the same run again is a no-op.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from lagoa.core.config import PublishSettings
from lagoa.core.errors import LakeError
from lagoa.core.sql import quote_identifier, quote_literal
from lagoa.engine.connection import connect
from lagoa.engine.warehouse import warehouse_lock

if TYPE_CHECKING:
    from lagoa.workspace import StageContext, Workspace

VERSIONS = ".versions"


@dataclass(frozen=True)
class DatasetResult:
    location: str
    version: str
    rows: int
    files: int
    skipped: bool = False


def dataset_path(workspace: Workspace, settings: PublishSettings) -> Path:
    assert settings.location is not None
    return workspace.storage.local_path(settings.location)


def publish_dataset(context: StageContext, model: str, settings: PublishSettings) -> DatasetResult:
    """Write ``main.<model>`` as a new version of the dataset and switch the location to it. One
    publish at a time per location: a lock file keeps two from pruning each other's versions."""
    workspace, run_id = context.workspace, context.run_id
    location = dataset_path(workspace, settings)
    location.parent.mkdir(parents=True, exist_ok=True)
    with (
        (location.parent / f".{location.name}.lock").open("w") as lock,
        warehouse_lock(workspace.warehouse.path),
    ):
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _publish(workspace, model, settings, location, run_id)


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
    con = connect()
    try:
        con.execute(f"ATTACH {quote_literal(str(workspace.warehouse.path))} AS warehouse (READ_ONLY)")
        options = ["FORMAT parquet", "COMPRESSION zstd"]
        if settings.partition_by:
            columns = ", ".join(quote_identifier(c) for c in settings.partition_by)
            options += [f"PARTITION_BY ({columns})", "FILENAME_PATTERN 'part-{uuid}'"]
        else:  # without partitions, COPY writes one file: give it a name inside the version folder
            target.mkdir(parents=True)
        order = (
            f" ORDER BY {', '.join(quote_identifier(c) for c in settings.sort_by)}"
            if settings.sort_by
            else ""
        )
        (rows,) = con.execute(
            f"COPY (SELECT * FROM warehouse.main.{quote_identifier(model)}{order}) "
            f"TO {quote_literal(str(target if settings.partition_by else target / 'part-0.parquet'))} "
            f"({', '.join(options)})"
        ).fetchone() or (0,)
    except duckdb.Error as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise LakeError(f"cannot publish `{model}` to {location}: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
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
    location = dataset_path(workspace, settings)
    if not location.exists() or not any(location.resolve().rglob("*.parquet")):
        return None  # not published yet, or the model had no rows
    # The version the location points at now: a query keeps reading it even if a publish swaps
    # the location meanwhile (that version is kept until the next swap after).
    pattern = str(location.resolve() / "**" / "*.parquet")
    return f"SELECT * FROM read_parquet({quote_literal(pattern)}, hive_partitioning=true)"
