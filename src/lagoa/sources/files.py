"""File discovery, content hashing and raw landing for file sources.

A file's batch id is a hash of its bytes, so the same content is ingested once whatever its
name, and a file that changes is a new batch. Raw landing keeps the exact bytes under
``raw/<source>/<ingest date>/<batch id>/<file name>``.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import xxhash

from lagoa.core.errors import SourceError
from lagoa.sources.file_hashes import FileHashes
from lagoa.storage import Storage

HASH_CHUNK = 8 << 20
STALE_COPY = 3600.0
"""Seconds after which an unfinished raw copy is a dead run's leftover: a live copy writes to
its file every few milliseconds, and another ingest of the same source may be landing now."""


@dataclass(frozen=True)
class SourceFile:
    """One file matched by a source's path, with its content hash."""

    path: Path
    relative: str
    size: int
    mtime_ns: int
    batch_id: str

    def unchanged(self) -> bool:
        """True when the file still has the size and modification time it had when hashed."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return False
        return stat.st_size == self.size and stat.st_mtime_ns == self.mtime_ns


def content_hash(path: Path) -> str:
    """A 128-bit xxh3 hash of the file's bytes (several GB/s; a cryptographic hash is not needed
    to recognise files we have seen, and sha256 measured 5× slower here)."""
    digest = xxhash.xxh3_128()
    with path.open("rb") as stream:
        while chunk := stream.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def matching(pattern: str, project_dir: Path) -> list[Path]:
    """The files a source's ``path`` (a path or glob, relative to the project) matches, sorted.
    A relative pattern is matched under ``root_dir``, so that the project folder's own name may
    hold glob characters (``[``, ``*``)."""
    if os.path.isabs(pattern):
        found = [Path(p) for p in glob.glob(pattern, recursive=True)]
    else:
        found = [project_dir / p for p in glob.glob(pattern, root_dir=project_dir, recursive=True)]
    return sorted(p for p in found if p.is_file())


def discover(
    source: str, pattern: str, project_dir: Path, hashes: FileHashes | None = None
) -> list[SourceFile]:
    """The files matching a source's ``path`` (a path or glob), sorted, with their hashes (those
    ``hashes`` remembers for files unchanged since are not computed again)."""
    matches = matching(pattern, project_dir)
    if not matches:
        raise SourceError(
            source,
            f"no file matches `{pattern}` (looked in {project_dir})",
            hint=f"check `sources.{source}.path` in lagoa.yml",
        )
    files = []
    for path in matches:
        stat = path.stat()
        try:
            relative = str(path.resolve().relative_to(project_dir.resolve()))
        except ValueError:
            relative = str(path)
        digest = hashes.hash(path, stat) if hashes is not None else content_hash(path)
        files.append(SourceFile(path, relative, stat.st_size, stat.st_mtime_ns, digest))
    if hashes is not None:
        hashes.save()
    return files


def landed_batches(storage: Storage, source: str) -> dict[str, str]:
    """Batch id → raw key of every file already landed for the source (a copy a killed run left
    unfinished is not one: the batch is landed again)."""
    return {key.rsplit("/", 2)[-2]: key for key in storage.list(f"raw/{source}")}


def remove_unfinished(storage: Storage, source: str) -> int:
    """Delete the unfinished raw copies of killed runs (idle for ``STALE_COPY`` seconds)."""
    return storage.remove_stale(f"raw/{source}", STALE_COPY)


def land(
    storage: Storage, source: str, file: SourceFile, ingested_at: datetime, landed: dict[str, str]
) -> str:
    """Copy the file's exact bytes into the raw zone once; returns the raw key."""
    if file.batch_id in landed:
        return landed[file.batch_id]
    key = f"raw/{source}/{ingested_at:%Y-%m-%d}/{file.batch_id}/{file.path.name}"
    with file.path.open("rb") as stream:
        storage.put_file(key, stream)
    return key
