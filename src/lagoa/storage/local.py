"""Local-disk storage: atomic writes by write-to-temporary-then-rename."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO


class LocalStorage:
    """A folder on local disk."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def warehouse(self) -> str:
        return str(self.root)

    def local_path(self, key: str) -> Path:
        return self.root / key

    def put_file(self, key: str, source: BinaryIO) -> int:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
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
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())


def replace_text(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (readers never see it half-written); an unchanged file
    is left alone, so tools that watch file times (dbt's partial parsing) see no change."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
