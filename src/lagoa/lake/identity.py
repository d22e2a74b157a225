"""The lake's own id: made once, at random, and kept in its storage, so that what a lake names on
a server it shares with other lakes (a CDC source's replication slot) is its own."""

from __future__ import annotations

import uuid

from lagoa.storage import Storage

LAKE_ID = "lake-id"
"""The storage key of the lake's id (32 hex digits)."""


def lake_id(storage: Storage) -> str:
    """The lake's id, made on first use. Two processes making it at once agree: it is stored only
    if none is there yet, and both then read the one that is."""
    stored = storage.read_bytes(LAKE_ID)
    if stored is None:
        storage.put_new(LAKE_ID, (uuid.uuid4().hex + "\n").encode())
        stored = storage.read_bytes(LAKE_ID) or b""
    return stored.decode().strip()
