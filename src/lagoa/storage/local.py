"""Local-disk storage: atomic writes by write-to-temporary-then-rename.

A write in progress is a hidden ``.<name>.<uuid>.tmp`` file beside its key. It is never a key
(``list`` leaves it out), so a writer killed before its rename leaves nothing that reads as
stored; such leftovers are deleted by ``remove_stale`` once nothing has written to them for a
while.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from lagoa.storage.s3 import S3Settings

TEMPORARY = re.compile(r"\..+\.[0-9a-f]{32}\.tmp")


def temporary_for(path: Path) -> Path:
    """A fresh temporary file to write ``path`` through."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def is_temporary(path: Path) -> bool:
    return TEMPORARY.fullmatch(path.name) is not None


class LocalStorage:
    """A folder on local disk."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def warehouse(self) -> str:
        return str(self.root)

    @property
    def s3(self) -> S3Settings | None:
        return None

    def local_path(self, key: str) -> Path:
        return self.root / key

    def location(self, key: str) -> str:
        return str(self.root / key) if key not in ("", ".") else str(self.root)

    def scratch(self) -> Path:
        folder = self.root / ".tmp"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def put_bytes(self, key: str, data: bytes) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = temporary_for(target)
        try:
            temporary.write_bytes(data)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)

    def put_new(self, key: str, data: bytes) -> bool:
        """Linked into place only if nothing is there yet, so two writers at once agree."""
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = temporary_for(target)
        try:
            temporary.write_bytes(data)
            os.link(temporary, target)
            return True
        except FileExistsError:
            return False
        finally:
            temporary.unlink(missing_ok=True)

    def read_bytes(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def modified(self, key: str) -> float:
        return (self.root / key).stat().st_mtime

    def files_under(self, location: str) -> list[tuple[str, float]]:
        found = []
        for path in Path(location).rglob("*"):
            try:
                if path.is_file():
                    found.append((str(path), path.stat().st_mtime))
            except FileNotFoundError:  # moved or removed meanwhile
                continue
        return found

    def remove(self, locations: Iterable[str]) -> None:
        for location in locations:
            Path(location).unlink(missing_ok=True)

    def remove_tree(self, location: str) -> None:
        shutil.rmtree(location, ignore_errors=True)

    def put_file(self, key: str, source: BinaryIO) -> int:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = temporary_for(target)
        try:
            with temporary.open("wb") as out:
                # copyfileobj uses sendfile where the OS allows: no Python loop over the bytes.
                shutil.copyfileobj(source, out, length=4 << 20)
                size = out.tell()
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return size

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.exists():
            return []
        return sorted(
            str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file() and not is_temporary(p)
        )

    def remove_stale(self, prefix: str, idle_seconds: float) -> int:
        """Delete the temporary files under ``prefix`` that nothing has written to for
        ``idle_seconds`` (left by a killed writer; a live one writes to its file continuously).
        Returns how many were deleted."""
        base = self.root / prefix
        if not base.exists():
            return 0
        cutoff = time.time() - idle_seconds
        removed = 0
        for path in base.rglob(".*.tmp"):
            try:
                if is_temporary(path) and path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # renamed or removed meanwhile
                continue
        return removed


def replace_text(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (readers never see it half-written); an unchanged file
    is left alone, so tools that watch file times (dbt's partial parsing) see no change."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_for(path)
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
