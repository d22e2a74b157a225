"""The lake's own id: made once, at random, and kept in its storage, so that what a lake names on
a server it shares with other lakes (a CDC source's replication slot) is its own."""

from __future__ import annotations

import os
import uuid

from lagoa.storage import Storage

LAKE_ID = "lake-id"
"""The storage key of the lake's id (32 hex digits)."""


def lake_id(storage: Storage) -> str:
    """The lake's id, made on first use. Two processes making it at once agree: the file is
    linked into place only if none is there yet, and both then read the one that is."""
    path = storage.local_path(LAKE_ID)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            temporary.write_text(uuid.uuid4().hex + "\n", encoding="utf-8")
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first
        finally:
            temporary.unlink(missing_ok=True)
    return path.read_text(encoding="utf-8").strip()
