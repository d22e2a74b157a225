"""The storage interface, and choosing a backend for a ``storage.root`` setting."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import unquote, urlparse

from lagoa.core.errors import ConfigError

if TYPE_CHECKING:
    from lagoa.storage.s3 import S3Settings


class Storage(Protocol):
    """The few operations Lagoa needs from a file store. Keys are relative to the root
    (``raw/orders/…``); locations are what engines open (a plain path, or ``s3://…``)."""

    @property
    def warehouse(self) -> str:
        """Root of the store as the Iceberg catalog's warehouse location: a plain absolute path on
        local disk, ``s3://bucket/prefix`` on S3. pyiceberg and DuckDB take locations literally,
        so a ``file://`` URI's percent-escapes (``my%20project``) would become folder names."""
        ...

    @property
    def s3(self) -> S3Settings | None:
        """How engines reach the store's bucket; None on local disk."""
        ...

    def location(self, key: str) -> str:
        """Where ``key`` is, for engines that read or write files themselves (DuckDB COPY)."""
        ...

    def scratch(self) -> Path:
        """A local folder for spill and temporary files."""
        ...

    def put_file(self, key: str, source: BinaryIO) -> int:
        """Store the stream's bytes under ``key`` atomically; returns the byte count."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically, replacing what was there."""
        ...

    def put_new(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` only if nothing is there; True when this call stored it."""
        ...

    def read_bytes(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or None when there is none."""
        ...

    def modified(self, key: str) -> float:
        """When ``key`` was last written, in seconds since the epoch."""
        ...

    def files_under(self, location: str) -> list[tuple[str, float]]:
        """Every file under ``location`` (a folder's location) with its modification time."""
        ...

    def remove(self, locations: Iterable[str]) -> None:
        """Delete the files at ``locations`` (those already gone are no error)."""
        ...

    def remove_tree(self, location: str) -> None:
        """Delete everything under the folder ``location``."""
        ...

    def remove_stale(self, prefix: str, idle_seconds: float) -> int:
        """Delete what unfinished writes under ``prefix`` left behind, once idle for
        ``idle_seconds``; returns how many were deleted."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted; a write in progress (or one a killed writer left
        unfinished) is never among them."""
        ...


GLOB_CHARACTERS = re.compile(r"[*?\[\]]")


def open_storage(
    root: str, project_dir: Path, *, region: str | None = None, endpoint: str | None = None
) -> Storage:
    """The storage backend for a ``storage.root`` setting (``region`` and ``endpoint`` are S3's)."""
    if root.startswith("s3://"):
        from lagoa.storage.s3 import S3Settings, S3Storage

        if not urlparse(root).netloc:
            raise ConfigError(
                f"`{root}` names no bucket", key="storage.root", hint="write s3://bucket/prefix"
            )
        if GLOB_CHARACTERS.search(root):
            raise ConfigError(
                f"the lake's location `{root}` holds one of * ? [ ], which DuckDB reads as a pattern",
                key="storage.root",
            )
        return S3Storage(root, S3Settings.of(region, endpoint), project_dir / ".lagoa" / "tmp")
    if "://" in root and not root.startswith("file:"):
        raise ConfigError(f"`{root}` is neither a folder nor an s3:// location", key="storage.root")
    from lagoa.storage.local import LocalStorage

    path = Path(unquote(urlparse(root).path)) if root.startswith("file:") else Path(root)
    path = path if path.is_absolute() else project_dir / path
    if GLOB_CHARACTERS.search(str(path.resolve())):
        raise ConfigError(
            f"the lake's folder `{path.resolve()}` holds one of * ? [ ], which DuckDB reads as a "
            "pattern in every path it opens",
            key="storage.root",
            hint="move the project (or set storage.root) to a folder whose path has none of them",
        )
    return LocalStorage(path)
