"""The storage interface, and choosing a backend for a ``storage.root`` setting."""

from __future__ import annotations

import re
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import unquote, urlparse

from lagoa.core.errors import ConfigError


class Storage(Protocol):
    """The few operations Lagoa needs from a file store."""

    @property
    def warehouse(self) -> str:
        """Root of the store as the Iceberg catalog's warehouse location: a plain absolute path on
        local disk (``s3://…`` later). pyiceberg and DuckDB take locations literally, so a
        ``file://`` URI's percent-escapes (``my%20project``) would become folder names."""
        ...

    def local_path(self, key: str) -> Path:
        """A local path for ``key``, for engines that write files themselves (DuckDB COPY)."""
        ...

    def put_file(self, key: str, source: BinaryIO) -> int:
        """Store the stream's bytes under ``key`` atomically; returns the byte count."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted; a write in progress (or one a killed writer left
        unfinished) is never among them."""
        ...

    def remove_stale(self, prefix: str, idle_seconds: float) -> int:
        """Delete what unfinished writes under ``prefix`` left behind, once idle for
        ``idle_seconds``; returns how many were deleted."""
        ...


GLOB_CHARACTERS = re.compile(r"[*?\[\]]")


def open_storage(root: str, project_dir: Path) -> Storage:
    """The storage backend for a ``storage.root`` setting."""
    if root.startswith("s3://"):
        raise ConfigError(
            "S3 storage is not available in this version of Lagoa",
            key="storage.root",
            hint="use a local folder for now (the default is .lagoa/lake)",
        )
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
